# Secrets the tasks receive as environment variables (ECS injects them at start; they never appear in the task
# definition). Their values are also in the Terraform state: keep the state bucket private and encrypted.

resource "aws_secretsmanager_secret" "database_url" {
  # checkov:skip=CKV2_AWS_57: rotation would need a Lambda that rewrites the whole URL; rotate with `terraform apply -replace=random_password.database`, which updates RDS and the secret together, then a deploy
  name                    = "${var.name}/database-url"
  description             = "DATABASE_URL of the workers and the status server (RDS master user, TLS verify-full)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = local.database_url
}

resource "random_password" "status_token" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "status_token" {
  # checkov:skip=CKV2_AWS_57: the token is a bearer password for one person; rotate with `terraform apply -replace=random_password.status_token` and a deploy
  name                    = "${var.name}/status-token"
  description             = "BACKUP_STATUS_TOKEN: bearer token of the status page"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "status_token" {
  secret_id     = aws_secretsmanager_secret.status_token.id
  secret_string = random_password.status_token.result
}

resource "aws_secretsmanager_secret" "alert_webhook" {
  # checkov:skip=CKV2_AWS_57: the webhook URL is issued by Slack/Discord/ntfy; rotate it there and change the variable
  count                   = var.alert_webhook_url == "" ? 0 : 1
  name                    = "${var.name}/alert-webhook-url"
  description             = "BACKUP_ALERT_WEBHOOK_URL"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "alert_webhook" {
  count         = var.alert_webhook_url == "" ? 0 : 1
  secret_id     = aws_secretsmanager_secret.alert_webhook[0].id
  secret_string = var.alert_webhook_url
}

locals {
  secret_arns = concat(
    [aws_secretsmanager_secret.database_url.arn, aws_secretsmanager_secret.status_token.arn],
    aws_secretsmanager_secret.alert_webhook[*].arn,
  )

  worker_secrets = concat(
    [{ name = "DATABASE_URL", valueFrom = aws_secretsmanager_secret.database_url.arn }],
    [for arn in aws_secretsmanager_secret.alert_webhook[*].arn : { name = "BACKUP_ALERT_WEBHOOK_URL", valueFrom = arn }],
  )

  status_secrets = concat(local.worker_secrets, [
    { name = "BACKUP_STATUS_TOKEN", valueFrom = aws_secretsmanager_secret.status_token.arn },
  ])
}
