# One role per program, each allowed only what that program does (read from the sources under Sources/Workers):
#   transcoder: staging get/put/delete (raw video in, transcoded result out);
#   archiver:   staging get/put/delete/list, archive get/put/delete/list/restore, multipart cleanup;
#   status:     staging get/put/delete (the family's downloads of staged files, and browser uploads stored
#               into staging as the uploader stores them);
#   migrate:    nothing in AWS (database only).
# The execution role (used by ECS, not by the programs) pulls the image, writes logs and reads the secrets.
# The uploader, on the user's machine, is an IAM user in a group that may only write the staging bucket.

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- execution role ------------------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.app.arn]
  }
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.service : "${group.arn}:*"]
  }
  statement {
    sid       = "ReadTheSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }
  statement {
    sid       = "DecryptTheSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- task roles ----------------------------------------------------------------------------------------------

locals {
  staging_arn = aws_s3_bucket.staging.arn
  archive_arn = aws_s3_bucket.archive.arn
}

resource "aws_iam_role" "transcoder" {
  name               = "${var.name}-transcoder"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

# Staging objects read, written and deleted, multipart uploads included: the transcoder's whole policy, the status
# server's (below), and the first part of the archiver's.
data "aws_iam_policy_document" "staging_read_write" {
  statement {
    sid = "StagingObjects"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.staging_arn}/*"]
  }
}

resource "aws_iam_role_policy" "transcoder" {
  name   = "staging-read-write"
  role   = aws_iam_role.transcoder.id
  policy = data.aws_iam_policy_document.staging_read_write.json
}

resource "aws_iam_role" "archiver" {
  name               = "${var.name}-archiver"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

data "aws_iam_policy_document" "archiver" {
  source_policy_documents = [data.aws_iam_policy_document.staging_read_write.json]
  statement {
    sid = "ArchiveObjects"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:RestoreObject",
      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.archive_arn}/*"]
  }
  statement {
    sid       = "ListBothBuckets"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [local.staging_arn, local.archive_arn]
  }
}

resource "aws_iam_role_policy" "archiver" {
  name   = "staging-and-archive"
  role   = aws_iam_role.archiver.id
  policy = data.aws_iam_policy_document.archiver.json
}

resource "aws_iam_role" "status_server" {
  name               = "${var.name}-status-server"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

# The status server streams staged files to their owners (GET /files/{id}/download) and stores browser uploads
# (tus, /api/uploads) into staging exactly as the uploader does: single puts and resumable multipart uploads, and a
# staged copy dropped when its content turned out to be stored already.
resource "aws_iam_role_policy" "status_server" {
  name   = "staging-read-write"
  role   = aws_iam_role.status_server.id
  policy = data.aws_iam_policy_document.staging_read_write.json
}

# The migration task calls no AWS API: its role exists so that a task never falls back to another identity, and
# carries no policy.

resource "aws_iam_role" "migrate" {
  name               = "${var.name}-migrate"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

# --- the queue-metrics Lambda --------------------------------------------------------------------------------

resource "aws_iam_role" "queue_metrics" {
  name = "${var.name}-queue-metrics"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

data "aws_iam_policy_document" "queue_metrics" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.queue_metrics.arn}:*"]
  }
  statement {
    sid       = "ReadTheStatusToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.status_token.arn]
  }
  statement {
    sid       = "DecryptTokenAndEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
  statement {
    sid       = "CountRunningTasks"
    actions   = ["ecs:DescribeServices"]
    resources = [for name in ["transcoder", "archiver"] : "arn:${local.partition}:ecs:${var.region}:${local.account_id}:service/${aws_ecs_cluster.main.name}/${name}"]
  }
  statement {
    sid       = "PublishQueueMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource-level permissions; limited to our namespace below
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metrics_namespace]
    }
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "queue_metrics" {
  name   = "queue-metrics"
  role   = aws_iam_role.queue_metrics.id
  policy = data.aws_iam_policy_document.queue_metrics.json
}

# --- the uploader (on the user's machine) --------------------------------------------------------------------
# It may write to the staging bucket and nothing else: put objects (single and multipart), abort its own
# unfinished uploads, and delete what it wrote when an upload is given up (staging is transient; the archive is
# out of its reach). No read, no list, no archive access. Its access key is created by the user (docs/deploy.md)
# so that the secret never enters the Terraform state. Its database role is in sql/uploader-role.sql.

resource "aws_iam_group" "uploaders" {
  name = "${var.name}-uploaders"
}

data "aws_iam_policy_document" "uploader" {
  statement {
    sid = "WriteStagingOnly"
    actions = [
      "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:DeleteObject",
    ]
    resources = ["${local.staging_arn}/*"]
  }
}

resource "aws_iam_group_policy" "uploader" {
  name   = "write-staging"
  group  = aws_iam_group.uploaders.name
  policy = data.aws_iam_policy_document.uploader.json
}

resource "aws_iam_user" "uploader" {
  # checkov:skip=CKV_AWS_273: the uploader is a program on the user's own machine or NAS, not a person at a console; it needs a long-lived key, whose only right is writing the staging bucket (through the group). People should use IAM Identity Center
  name = "${var.name}-uploader"
}

resource "aws_iam_user_group_membership" "uploader" {
  user   = aws_iam_user.uploader.name
  groups = [aws_iam_group.uploaders.name]
}
