# The three services and the one-off migration task, all from the same image (docker/Dockerfile), on Fargate.
#
# The services' task definitions are updated by the deploy workflow, not by Terraform: Terraform registers a
# new revision of each family (with the image tag it is given), the workflow runs the migration task, then
# points each service at its family's newest revision and waits until it is stable. That is why the services
# ignore changes to task_definition (and desired_count, which autoscaling owns).

resource "aws_ecs_cluster" "main" {
  # checkov:skip=CKV_AWS_65: Container Insights is billed as custom metrics per task and service; the container_insights variable turns it on, the free service CPU/memory metrics and our own queue metrics are enough
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "service" {
  for_each          = toset(["transcoder", "archiver", "status-server", "migrate"])
  name              = "/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

locals {
  common_environment = [
    { name = "BACKUP_STAGING_URL", value = "s3://${aws_s3_bucket.staging.bucket}/" },
    { name = "BACKUP_ARCHIVE_URL", value = "s3://${aws_s3_bucket.archive.bucket}/" },
    { name = "BACKUP_ARCHIVE_STORAGE_CLASS", value = var.archive_storage_class },
    { name = "BACKUP_WARM_STORAGE_CLASS", value = var.warm_storage_class },
    { name = "AWS_REGION", value = var.region },
    { name = "BACKUP_LOG_FORMAT", value = "json" },
    { name = "BACKUP_DATA_DIR", value = "/var/lib/personal-backup" },
  ]

  # The root filesystem is read-only; the work directory on the task's ephemeral storage is the only writable
  # place (temporary files too: the image sets TMPDIR to it). The container test runs the image the same way.
  writable_mounts = [
    { sourceVolume = "data", containerPath = "/var/lib/personal-backup", readOnly = false },
  ]

  roles = {
    transcoder = {
      command   = ["transcoder", "run"]
      cpu       = var.transcoder_cpu
      memory    = var.transcoder_memory
      disk      = var.transcoder_ephemeral_storage_gib
      task_role = aws_iam_role.transcoder.arn
      secrets   = local.worker_secrets
    }
    archiver = {
      command   = ["archiver", "run"]
      cpu       = var.archiver_cpu
      memory    = var.archiver_memory
      disk      = var.archiver_ephemeral_storage_gib
      task_role = aws_iam_role.archiver.arn
      secrets   = local.worker_secrets
    }
    status-server = {
      command   = ["status-server"]
      cpu       = var.status_server_cpu
      memory    = var.status_server_memory
      disk      = 21
      task_role = aws_iam_role.status_server.arn
      secrets   = local.status_secrets
    }
    # Applies the catalog migrations; run by the deploy workflow before the services are updated.
    migrate = {
      command   = ["archiver", "migrate"]
      cpu       = 256
      memory    = 512
      disk      = 21
      task_role = aws_iam_role.migrate.arn
      secrets   = [{ name = "DATABASE_URL", valueFrom = aws_secretsmanager_secret.database_url.arn }]
    }
  }
}

resource "aws_ecs_task_definition" "role" {
  for_each = local.roles

  family                   = "${var.name}-${each.key}"
  skip_destroy             = true # older revisions stay registered: the running tasks, rollbacks and the circuit breaker use them
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = each.value.task_role

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = each.value.disk
  }

  volume {
    name = "data"
  }

  container_definitions = jsonencode([{
    name                   = each.key
    image                  = local.image
    command                = each.value.command
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    stopTimeout            = 30 # the workers finish or hand back their batch within 25 s of SIGTERM
    environment = concat(local.common_environment, each.key == "status-server" ? [
      { name = "BACKUP_STATUS_HOST", value = "0.0.0.0" },
      { name = "BACKUP_STATUS_PORT", value = "8080" },
      # Reached only through API Gateway (HTTPS): Secure cookies, and the client address from the gateway's header.
      { name = "BACKUP_STATUS_BEHIND_TLS_PROXY", value = "true" },
      { name = "BACKUP_STATUS_CLIENT_IP_HEADER", value = "X-Backup-Client-Ip" },
      # API Gateway refuses request bodies over 10 MB, so the upload page sends 8 MiB chunks (the default is 64).
      { name = "BACKUP_UPLOAD_CHUNK_MIB", value = "8" },
    ] : [])
    secrets     = each.value.secrets
    mountPoints = local.writable_mounts
    portMappings = each.key == "status-server" ? [{
      containerPort = 8080
      protocol      = "tcp"
      name          = "http"
    }] : []
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/healthcheck"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    linuxParameters = {
      initProcessEnabled = false
      capabilities       = { drop = ["ALL"] }
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

locals {
  worker_capacity = var.workers_use_fargate_spot ? "FARGATE_SPOT" : "FARGATE"
  services = {
    transcoder    = { capacity = local.worker_capacity, security_group = aws_security_group.workers.id }
    archiver      = { capacity = local.worker_capacity, security_group = aws_security_group.workers.id }
    status-server = { capacity = "FARGATE", security_group = aws_security_group.status.id }
  }
}

resource "aws_ecs_service" "role" {
  # checkov:skip=CKV_AWS_333: tasks get a public IP for OUTBOUND traffic only (S3, ECR, AWS APIs, webhooks) instead of a NAT gateway ($33/month + $0.045/GB); their security groups admit nothing from the internet, and the status page is reached through API Gateway
  for_each = local.services

  name                   = each.key
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.role[each.key].arn
  desired_count          = 0 # then autoscaling's minimum (scaling.tf), once an image is deployed
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  # One task at a time for the status server is enough; workers may overlap during a deploy (leases keep them
  # from processing the same file twice).
  deployment_minimum_healthy_percent = each.key == "status-server" ? 100 : 0
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  capacity_provider_strategy {
    capacity_provider = each.value.capacity
    weight            = 1
  }

  network_configuration {
    subnets          = aws_subnet.public[*].id
    security_groups  = [each.value.security_group]
    assign_public_ip = true
  }

  dynamic "service_registries" {
    for_each = each.key == "status-server" ? [1] : []
    content {
      registry_arn   = aws_service_discovery_service.status.arn
      container_name = "status-server"
      container_port = 8080
    }
  }

  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.main]
}
