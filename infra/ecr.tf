resource "aws_ecr_repository" "app" {
  # checkov:skip=CKV_AWS_136: ECR encrypts images at rest with AES-256 already; the image holds the project's public code and no secrets, so a KMS key adds cost and a key grant to every pull for nothing
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

# Keep the last 30 images (rollbacks), drop older ones.
resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last 30 images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}
