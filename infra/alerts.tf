# An ECS task of this cluster that stops with an error (a container exit code other than 0, or a task that
# could not start: image missing, secret unreadable, out of memory) is sent to the alert webhook through an
# EventBridge API destination. A worker stopped by a deploy or by scale-in exits 0 on SIGTERM and is not
# reported. The watchdog inside the status server covers the rest (stale heartbeats, failed files).

locals {
  alerts_enabled = var.alert_webhook_url != ""
}

resource "aws_cloudwatch_event_rule" "task_failed" {
  name        = "${var.name}-task-failed"
  description = "ECS tasks of ${var.name} that stop with an error"
  state       = local.alerts_enabled ? "ENABLED" : "DISABLED"

  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [aws_ecs_cluster.main.arn]
      lastStatus = ["STOPPED"]
      "$or" = [
        { containers = { exitCode = [{ "anything-but" = 0 }] } },
        { stopCode = ["TaskFailedToStart"] },
      ]
    }
  })
}

# Webhook receivers (Slack, Discord, ntfy, generic) authenticate through the secret in their URL; EventBridge
# connections still need an authorization scheme, so a harmless fixed header is sent.
resource "aws_cloudwatch_event_connection" "webhook" {
  count              = local.alerts_enabled ? 1 : 0
  name               = "${var.name}-alert-webhook"
  description        = "The alert webhook (authenticated by its URL)"
  authorization_type = "API_KEY"

  auth_parameters {
    api_key {
      key   = "X-Personal-Backup-Alert"
      value = "ecs-task-failed"
    }
  }
}

resource "aws_cloudwatch_event_api_destination" "webhook" {
  count                            = local.alerts_enabled ? 1 : 0
  name                             = "${var.name}-alert-webhook"
  description                      = "The alert webhook"
  invocation_endpoint              = var.alert_webhook_url
  http_method                      = "POST"
  invocation_rate_limit_per_second = 1
  connection_arn                   = aws_cloudwatch_event_connection.webhook[0].arn
}

resource "aws_sqs_queue" "alert_dead_letters" {
  count                     = local.alerts_enabled ? 1 : 0
  name                      = "${var.name}-alert-dead-letters"
  message_retention_seconds = 1209600
  kms_master_key_id         = aws_kms_key.main.arn
}

resource "aws_sqs_queue_policy" "alert_dead_letters" {
  count     = local.alerts_enabled ? 1 : 0
  queue_url = aws_sqs_queue.alert_dead_letters[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.alert_dead_letters[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.task_failed.arn } }
    }]
  })
}

resource "aws_cloudwatch_event_target" "webhook" {
  count    = local.alerts_enabled ? 1 : 0
  rule     = aws_cloudwatch_event_rule.task_failed.name
  arn      = aws_cloudwatch_event_api_destination.webhook[0].arn
  role_arn = aws_iam_role.events_alerts[0].arn

  # One JSON body that Slack ("text"), Discord ("content"), ntfy (JSON publishing: "topic"-less bodies are read
  # as text) and generic receivers all show.
  input_transformer {
    input_paths = {
      group  = "$.detail.group"
      reason = "$.detail.stoppedReason"
      code   = "$.detail.stopCode"
      exit   = "$.detail.containers[0].exitCode"
      task   = "$.detail.taskArn"
      time   = "$.time"
    }
    input_template = <<-EOT
      {"text": "personal-backup (${var.name}): task <group> stopped with an error at <time>: <reason> (stop code <code>, exit code <exit>). Task <task>.", "content": "personal-backup (${var.name}): task <group> stopped with an error at <time>: <reason> (stop code <code>, exit code <exit>).", "source": "aws.ecs", "stack": "${var.name}", "task": "<task>"}
    EOT
  }

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }

  dead_letter_config {
    arn = aws_sqs_queue.alert_dead_letters[0].arn
  }
}

resource "aws_iam_role" "events_alerts" {
  count = local.alerts_enabled ? 1 : 0
  name  = "${var.name}-events-alerts"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "events_alerts" {
  count = local.alerts_enabled ? 1 : 0
  name  = "invoke-alert-webhook"
  role  = aws_iam_role.events_alerts[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "events:InvokeApiDestination"
      Resource = aws_cloudwatch_event_api_destination.webhook[0].arn
    }]
  })
}
