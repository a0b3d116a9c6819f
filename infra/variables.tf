variable "name" {
  description = "Prefix of every resource name (and the Project tag)."
  type        = string
  default     = "personal-backup"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: lower-case letters, digits and dashes, 2 to 31 characters, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of everything (buckets, database, containers)."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "image_tag" {
  description = "Tag of the image in ECR to run (the deploy workflow passes the commit SHA). Empty: nothing is deployed yet, every service stays at 0 tasks. For a manual apply pass the deployed one: -var image_tag=$(terraform output -raw image_tag)."
  type        = string
  default     = ""
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose pushes to main may deploy (OIDC trust)."
  type        = string
}

variable "github_deploy_branch" {
  description = "The branch whose pushes deploy."
  type        = string
  default     = "main"
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub Actions OIDC provider. Set false if the account already has one (there can be only one per URL)."
  type        = bool
  default     = true
}

variable "github_deploy_policy_arns" {
  description = "Managed policies of the GitHub deploy role. Terraform runs under it and manages IAM roles, so it needs wide rights; narrow this if you split infra applies from code deploys."
  type        = list(string)
  default     = ["arn:aws:iam::aws:policy/AdministratorAccess"]
}

# --- network -----------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC (two public subnets for the tasks, two private ones for the database)."
  type        = string
  default     = "10.42.0.0/16"
}

variable "availability_zones" {
  description = "The two availability zones to use (default: the region's a and b zones)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "availability_zones: give exactly two zones, or none for the default."
  }
}

# --- buckets -----------------------------------------------------------------------------------------------

variable "staging_bucket_name" {
  description = "Name of the staging bucket (default: <name>-staging-<account>-<region>)."
  type        = string
  default     = null
}

variable "archive_bucket_name" {
  description = "Name of the archive bucket (default: <name>-archive-<account>-<region>)."
  type        = string
  default     = null
}

variable "multipart_abort_days" {
  description = "Unfinished multipart uploads (an uploader that never came back) are aborted after this many days, in both buckets. The uploader resumes an interrupted upload only within this window."
  type        = number
  default     = 7
}

variable "archive_storage_class" {
  description = "Storage class the archiver writes data in (BACKUP_ARCHIVE_STORAGE_CLASS)."
  type        = string
  default     = "DEEP_ARCHIVE"
}

variable "warm_storage_class" {
  description = "Storage class of the data of warm sources (uploader --tier warm): one that reads back at once, GLACIER_IR or STANDARD_IA (BACKUP_WARM_STORAGE_CLASS)."
  type        = string
  default     = "GLACIER_IR"
}

variable "archive_noncurrent_days" {
  description = "Overwritten or deleted data in the versioned archive bucket is kept this long, then removed. 180 days matches Deep Archive's minimum storage charge, so shorter saves nothing."
  type        = number
  default     = 180
}

variable "catalog_noncurrent_days" {
  description = "Old versions of the catalog export (catalog/, rewritten about once a minute while busy, STANDARD class) are kept this long."
  type        = number
  default     = 7
}

variable "archive_object_lock_days" {
  description = "0: no Object Lock. Otherwise the archive bucket is created with Object Lock and a default GOVERNANCE retention of this many days, so no one (not even the archiver) can remove a version before then. Can only be turned on when the bucket is created. Deletes requested through ObjectStorageDeleteLog then only hide data until the retention ends."
  type        = number
  default     = 0
}

# --- database ----------------------------------------------------------------------------------------------

variable "postgres_version" {
  description = "PostgreSQL major version on RDS."
  type        = string
  default     = "17"
}

variable "db_instance_class" {
  description = "RDS instance class. db.t4g.micro (2 vCPU burstable, 1 GiB) carries millions of catalog rows for this workload."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_allocated_storage_gib" {
  description = "Initial gp3 storage of the database (it grows automatically up to db_max_allocated_storage_gib)."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gib" {
  description = "Storage autoscaling limit of the database."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Run a standby database in a second zone (doubles its price)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups (point-in-time recovery)."
  type        = number
  default     = 14
}

variable "enable_bastion" {
  description = "A t4g.nano instance without inbound ports, reached through SSM Session Manager, to forward a local port to the database (for the uploader and psql)."
  type        = bool
  default     = true
}

# --- containers --------------------------------------------------------------------------------------------

variable "transcoder_cpu" {
  description = "vCPU units of a transcoder task (1024 = 1 vCPU). libx265 preset medium uses every core it gets."
  type        = number
  default     = 4096
}

variable "transcoder_memory" {
  description = "Memory (MiB) of a transcoder task."
  type        = number
  default     = 8192
}

variable "transcoder_ephemeral_storage_gib" {
  description = "Local disk of a transcoder task: room for one raw video and its result (an hour of DV is 13 GB). 21 to 200."
  type        = number
  default     = 100
}

variable "transcoder_max_count" {
  description = "Most transcoder tasks at once. They scale from 0 when videos wait and back to 0 when idle."
  type        = number
  default     = 2
}

variable "archiver_cpu" {
  description = "vCPU units of an archiver task."
  type        = number
  default     = 1024
}

variable "archiver_memory" {
  description = "Memory (MiB) of an archiver task."
  type        = number
  default     = 2048
}

variable "archiver_ephemeral_storage_gib" {
  description = "Local disk of an archiver task (bundles being assembled, large files in transit). 21 to 200."
  type        = number
  default     = 50
}

variable "archiver_min_count" {
  description = "Fewest archiver tasks. 1 keeps delete requests and sweeps running while nothing is uploaded; 0 saves its cost when idle."
  type        = number
  default     = 1
}

variable "archiver_max_count" {
  description = "Most archiver tasks at once."
  type        = number
  default     = 3
}

variable "archiver_files_per_task" {
  description = "Waiting files per archiver task above which another task is started."
  type        = number
  default     = 2000
}

variable "workers_use_fargate_spot" {
  description = "Run transcoder and archiver tasks on Fargate Spot (about 70% cheaper). They hand their work back on the 2-minute interruption notice (SIGTERM) and any task picks it up again."
  type        = bool
  default     = true
}

variable "status_server_cpu" {
  description = "vCPU units of the status server task."
  type        = number
  default     = 256
}

variable "status_server_memory" {
  description = "Memory (MiB) of the status server task."
  type        = number
  default     = 512
}

variable "container_insights" {
  description = "ECS Container Insights (per-task metrics; billed as custom CloudWatch metrics)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group."
  type        = number
  default     = 365
}

# --- status and alerts -------------------------------------------------------------------------------------

variable "alert_webhook_url" {
  description = "Where alerts go (Slack, Discord, ntfy or any JSON receiver; https). Used by the status server's watchdog and by the EventBridge rule on tasks that stop with an error. Empty: alerts stay in the status page only."
  type        = string
  default     = ""
  sensitive   = true
}

variable "status_rate_limit_per_second" {
  description = "Steady request rate the status API accepts (API Gateway throttling; protects the bill)."
  type        = number
  default     = 20
}
