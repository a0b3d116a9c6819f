# Remote state in S3 (partial configuration): the bucket, key and region come from `terraform init
# -backend-config=backend.hcl` on a workstation (copy backend.hcl.example) and from repository variables in
# .github/workflows/deploy.yml. Terraform >= 1.10 locks the state with a lock file next to it (use_lockfile), so
# no DynamoDB table is needed.
terraform {
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
