# Scaling on queue depth. The queue is the catalog in PostgreSQL, so a small Lambda (lambda/queue_metrics.py)
# reads the counts from the status server's /metrics once a minute and publishes, per worker role, Backlog,
# Running and WantMore to CloudWatch (namespace PersonalBackup). Then, per worker service:
#   - scale out: WantMore = 1 for 1 minute -> one more task (until the maximum);
#   - scale in:  Backlog = 0 for 15 minutes -> back to the minimum (0 for the transcoder).
# Workers are never scaled in while their role has work, so a long transcode is not cut off half-way.

locals {
  metrics_namespace = "PersonalBackup"

  scaling = {
    transcoder = {
      min            = 0
      max            = var.transcoder_max_count
      files_per_task = 1 # one video at a time per task
    }
    archiver = {
      min            = var.archiver_min_count
      max            = var.archiver_max_count
      files_per_task = var.archiver_files_per_task
    }
  }
}

data "archive_file" "queue_metrics" {
  type        = "zip"
  source_file = "${path.module}/lambda/queue_metrics.py"
  output_path = "${path.module}/.terraform/queue_metrics.zip"
}

resource "aws_cloudwatch_log_group" "queue_metrics" {
  name              = "/aws/lambda/${var.name}-queue-metrics"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_lambda_function" "queue_metrics" {
  # checkov:skip=CKV_AWS_117: it only calls the public status URL and AWS APIs; inside the VPC it would need a NAT gateway or four interface endpoints
  # checkov:skip=CKV_AWS_116: it runs every minute and a failed run is simply replaced by the next one; a dead-letter queue would only collect stale runs
  # checkov:skip=CKV_AWS_115: no reserved concurrency on purpose: a new account's limit is 10 and AWS refuses a reservation that leaves fewer than 10 unreserved; one run a minute of a 1-second function never overlaps anyway
  # checkov:skip=CKV_AWS_272: one file of this repository, deployed by Terraform from the reviewed commit; code signing needs a signing profile and a separate upload step
  function_name    = "${var.name}-queue-metrics"
  description      = "Publishes the pipeline's queue depth for ECS autoscaling"
  role             = aws_iam_role.queue_metrics.arn
  runtime          = "python3.13"
  handler          = "queue_metrics.handler"
  filename         = data.archive_file.queue_metrics.output_path
  source_code_hash = data.archive_file.queue_metrics.output_base64sha256
  timeout          = 30
  memory_size      = 128
  kms_key_arn      = aws_kms_key.main.arn

  tracing_config {
    mode = "Active"
  }

  environment {
    variables = {
      STATUS_URL                = aws_apigatewayv2_api.status.api_endpoint
      TOKEN_SECRET_ARN          = aws_secretsmanager_secret.status_token.arn
      CLUSTER                   = aws_ecs_cluster.main.name
      NAMESPACE                 = local.metrics_namespace
      STACK                     = var.name
      TRANSCODER_FILES_PER_TASK = tostring(local.scaling.transcoder.files_per_task)
      TRANSCODER_MAX            = tostring(local.scaling.transcoder.max)
      ARCHIVER_FILES_PER_TASK   = tostring(local.scaling.archiver.files_per_task)
      ARCHIVER_MAX              = tostring(local.scaling.archiver.max)
    }
  }

  depends_on = [aws_cloudwatch_log_group.queue_metrics]
}

resource "aws_cloudwatch_event_rule" "queue_metrics" {
  name                = "${var.name}-queue-metrics"
  description         = "Every minute: publish the queue depth"
  schedule_expression = "rate(1 minute)"
  state               = local.deployed ? "ENABLED" : "DISABLED"
}

resource "aws_cloudwatch_event_target" "queue_metrics" {
  rule = aws_cloudwatch_event_rule.queue_metrics.name
  arn  = aws_lambda_function.queue_metrics.arn
}

resource "aws_lambda_permission" "queue_metrics" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.queue_metrics.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.queue_metrics.arn
}

# --- scalable targets: every service; the status server is pinned to one task once deployed ---------------

resource "aws_appautoscaling_target" "service" {
  for_each = {
    transcoder      = local.scaling.transcoder
    archiver        = local.scaling.archiver
    "status-server" = { min = 1, max = 1, files_per_task = 0 }
  }

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.role[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = local.deployed ? each.value.min : 0
  max_capacity       = local.deployed ? each.value.max : 0
}

resource "aws_appautoscaling_policy" "scale_out" {
  for_each = local.scaling

  name               = "${var.name}-${each.key}-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.service[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.service[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.service[each.key].scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 180 # a new task needs ~1-2 minutes to pull the image and start claiming
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

resource "aws_appautoscaling_policy" "scale_in" {
  for_each = local.scaling

  name               = "${var.name}-${each.key}-scale-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.service[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.service[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.service[each.key].scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = 300
    metric_aggregation_type = "Maximum"

    # Exactly 0 tasks, raised to the target's minimum capacity by Application Auto Scaling.
    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "want_more" {
  for_each = local.scaling

  alarm_name          = "${var.name}-${each.key}-want-more"
  alarm_description   = "Work waits for ${each.key} and there are too few tasks: start one more"
  namespace           = local.metrics_namespace
  metric_name         = "WantMore"
  dimensions          = { Stack = var.name, Role = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.scale_out[each.key].arn]
}

resource "aws_cloudwatch_metric_alarm" "idle" {
  for_each = local.scaling

  alarm_name          = "${var.name}-${each.key}-idle"
  alarm_description   = "No work for ${each.key} for 15 minutes: back to the minimum"
  namespace           = local.metrics_namespace
  metric_name         = "Backlog"
  dimensions          = { Stack = var.name, Role = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 15
  datapoints_to_alarm = 15
  comparison_operator = "LessThanOrEqualToThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.scale_in[each.key].arn]
}
