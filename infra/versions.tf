terraform {
  required_version = ">= 1.10.0" # the S3 backend's lock file (use_lockfile)

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({
      Project   = var.name
      ManagedBy = "terraform"
    }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  staging_bucket_name = coalesce(var.staging_bucket_name, "${var.name}-staging-${local.account_id}-${var.region}")
  archive_bucket_name = coalesce(var.archive_bucket_name, "${var.name}-archive-${local.account_id}-${var.region}")

  # Nothing runs until the deploy workflow has pushed an image and passed its tag (see docs/deploy.md).
  deployed = var.image_tag != ""
  image    = "${aws_ecr_repository.app.repository_url}:${local.deployed ? var.image_tag : "not-deployed-yet"}"
}
