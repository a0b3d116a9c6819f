# The catalog: PostgreSQL on RDS, encrypted, in private subnets without a route to the internet, TLS required.
# The programs use the master user (they apply migrations at start); the uploader gets its own, narrower role
# (sql/uploader-role.sql, docs/deploy.md).

resource "aws_db_subnet_group" "main" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "main" {
  name   = "${var.name}-postgres${var.postgres_version}"
  family = "postgres${var.postgres_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Statements slower than a second are logged (to CloudWatch, see enabled_cloudwatch_logs_exports).
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "random_password" "database" {
  length  = 40
  special = false # it goes into a URL unescaped
}

resource "aws_db_instance" "main" {
  # checkov:skip=CKV_AWS_161: the programs authenticate with a password from Secrets Manager; RDS IAM tokens (15-minute passwords) are not supported by the client yet
  # checkov:skip=CKV_AWS_118: enhanced monitoring costs a CloudWatch Logs stream per instance; the free RDS metrics are enough for a db.t4g.micro
  # checkov:skip=CKV_AWS_353: Performance Insights is optional for this workload (a few indexed queries); turn it on in the console when tuning
  # checkov:skip=CKV_AWS_157: a Multi-AZ standby doubles the database price; it is the db_multi_az variable (backups and point-in-time recovery are on)
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.postgres_version
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage_gib
  max_allocated_storage = var.db_max_allocated_storage_gib
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  db_name  = "backup"
  username = "backup_admin"
  password = random_password.database.result
  port     = 5432

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.main.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  backup_retention_period         = var.db_backup_retention_days
  copy_tags_to_snapshot           = true
  deletion_protection             = true
  skip_final_snapshot             = false
  final_snapshot_identifier       = "${var.name}-final"
  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  apply_immediately               = false
}

locals {
  # verify-full against the RDS CA bundle baked into the image (docker/Dockerfile).
  database_url = format(
    "postgres://%s:%s@%s:%d/%s?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem",
    aws_db_instance.main.username, random_password.database.result, aws_db_instance.main.address,
    aws_db_instance.main.port, aws_db_instance.main.db_name,
  )
}
