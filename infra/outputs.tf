output "status_url" {
  description = "The status page (HTTPS). Log in with the token from status_token_secret_arn."
  value       = aws_apigatewayv2_api.status.api_endpoint
}

output "status_token_secret_arn" {
  description = "Secrets Manager secret holding BACKUP_STATUS_TOKEN: aws secretsmanager get-secret-value --secret-id <arn> --query SecretString --output text"
  value       = aws_secretsmanager_secret.status_token.arn
}

output "image_tag" {
  description = "The image tag Terraform last registered (the deployed commit). Pass it back on a manual apply: -var image_tag=$(terraform output -raw image_tag)."
  value       = var.image_tag
}

output "ecr_repository_url" {
  description = "Where the deploy workflow pushes the image (tagged with the commit SHA)."
  value       = aws_ecr_repository.app.repository_url
}

output "staging_url" {
  description = "BACKUP_STAGING_URL for the uploader."
  value       = "s3://${aws_s3_bucket.staging.bucket}/"
}

output "archive_url" {
  description = "BACKUP_ARCHIVE_URL (the workers use it; restores will too)."
  value       = "s3://${aws_s3_bucket.archive.bucket}/"
}

output "database_address" {
  description = "Host name of the RDS PostgreSQL instance (private; reach it through the bastion)."
  value       = aws_db_instance.main.address
}

output "database_url_secret_arn" {
  description = "Secrets Manager secret holding the workers' DATABASE_URL (master user)."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "bastion_instance_id" {
  description = "SSM target for port forwarding to the database (empty when enable_bastion = false)."
  value       = var.enable_bastion ? aws_instance.bastion[0].id : ""
}

output "uploader_iam_user" {
  description = "IAM user for the uploader; create its access key with: aws iam create-access-key --user-name <this>"
  value       = aws_iam_user.uploader.name
}

output "github_deploy_role_arn" {
  description = "Set as the AWS_DEPLOY_ROLE_ARN variable of the GitHub repository."
  value       = aws_iam_role.github_deploy.arn
}

output "ecs_cluster" {
  description = "ECS cluster name (the deploy workflow reads it)."
  value       = aws_ecs_cluster.main.name
}

output "ecs_services" {
  description = "ECS service names, space-separated (the deploy workflow reads it)."
  value       = join(" ", [for service in aws_ecs_service.role : service.name])
}

output "migrate_task_family" {
  description = "Task definition family of the migration task."
  value       = aws_ecs_task_definition.role["migrate"].family
}

output "task_network_configuration" {
  description = "awsvpcConfiguration for `aws ecs run-task` (the migration task)."
  value = jsonencode({
    awsvpcConfiguration = {
      subnets        = aws_subnet.public[*].id
      securityGroups = [aws_security_group.workers.id]
      assignPublicIp = "ENABLED"
    }
  })
}

output "task_families" {
  description = "Task definition family of each service, as JSON {service: family}."
  value       = jsonencode({ for name, definition in aws_ecs_task_definition.role : name => definition.family if name != "migrate" })
}
