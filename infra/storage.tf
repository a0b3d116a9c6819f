# The staging bucket (raw uploads, transcoded results; emptied by the workers) and the archive bucket (bundles
# and single files in DEEP_ARCHIVE, manifests and the catalog export in STANDARD).
#
# Both use SSE-S3 (AES-256) on purpose rather than a KMS key: the workers and the user's uploader key then need
# no KMS rights, the client is tested against servers that behave like SSE-S3, and SSE-KMS would add a KMS
# request per object (millions of small uploads) for no gain in this single-owner account.

# --- staging -----------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "staging" {
  # checkov:skip=CKV_AWS_18: access logs would record every upload and worker read of transient data; CloudTrail data events can be enabled instead when needed
  # checkov:skip=CKV_AWS_144: staging data is transient (deleted once archived) and the originals are still on the user's media; replication would double the transfer cost
  # checkov:skip=CKV_AWS_145: SSE-S3 (AES-256) on purpose, see the comment at the top of this file
  # checkov:skip=CKV_AWS_21: no versioning on purpose: objects are deleted once archived, versions would keep every raw video (tens of GB each) billed in STANDARD
  # checkov:skip=CKV2_AWS_62: the workers poll PostgreSQL (the only queue); nothing consumes S3 events
  bucket = local.staging_bucket_name
}

resource "aws_s3_bucket_public_access_block" "staging" {
  bucket                  = aws_s3_bucket.staging.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "staging" {
  bucket = aws_s3_bucket.staging.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "staging" {
  bucket = aws_s3_bucket.staging.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "staging" {
  bucket = aws_s3_bucket.staging.id

  rule {
    id     = "abort-unfinished-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.multipart_abort_days
    }
  }

  # Browser restores' copies (cache/restore-N/…) are never the only copy of anything (the archive holds it) and
  # live at most 30 days; the archiver deletes them when their restore ends. This catches any it never could.
  rule {
    id     = "expire-browser-restore-copies"
    status = "Enabled"
    filter {
      prefix = "cache/"
    }
    expiration {
      days = 32
    }
  }

  # No other expiration rule: a staging object may be the only copy of a file that waits (a failed row a person has
  # not looked at yet, an archiver that was down for weeks). The archiver removes staging copies itself once their
  # content is archived; nothing here may delete bytes a row still needs.
}

resource "aws_s3_bucket_policy" "staging" {
  bucket     = aws_s3_bucket.staging.id
  policy     = data.aws_iam_policy_document.tls_only["staging"].json
  depends_on = [aws_s3_bucket_public_access_block.staging]
}

# --- archive -----------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "archive" {
  # checkov:skip=CKV_AWS_18: access logs of an archive that is written once and read on restore only; CloudTrail data events can be enabled instead when needed
  # checkov:skip=CKV_AWS_144: a second region doubles the Deep Archive bill; the catalog export makes the archive self-describing, replicate by hand if you want two regions
  # checkov:skip=CKV_AWS_145: SSE-S3 (AES-256) on purpose, see the comment at the top of this file
  # checkov:skip=CKV2_AWS_62: the workers poll PostgreSQL (the only queue); nothing consumes S3 events
  bucket              = local.archive_bucket_name
  object_lock_enabled = var.archive_object_lock_days > 0
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "archive" {
  count  = var.archive_object_lock_days > 0 ? 1 : 0
  bucket = aws_s3_bucket.archive.id
  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = var.archive_object_lock_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.archive]
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket     = aws_s3_bucket.archive.id
  depends_on = [aws_s3_bucket_versioning.archive]

  rule {
    id     = "abort-unfinished-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.multipart_abort_days
    }
  }

  # The catalog export is rewritten about once a minute while the archiver is busy: keep a few days of it.
  rule {
    id     = "expire-old-catalog-exports"
    status = "Enabled"
    filter {
      prefix = "catalog/"
    }
    noncurrent_version_expiration {
      noncurrent_days           = var.catalog_noncurrent_days
      newer_noncurrent_versions = 10
    }
  }

  # Deleted or rewritten data (deletes after their grace period, rewritten bundles) stays recoverable for a
  # while, then stops being billed. Delete markers without data behind them are cleaned up.
  rule {
    id     = "expire-deleted-data"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.archive_noncurrent_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  bucket     = aws_s3_bucket.archive.id
  policy     = data.aws_iam_policy_document.tls_only["archive"].json
  depends_on = [aws_s3_bucket_public_access_block.archive]
}

# --- both: refuse plain HTTP ---------------------------------------------------------------------------------

data "aws_iam_policy_document" "tls_only" {
  for_each = {
    staging = aws_s3_bucket.staging.arn
    archive = aws_s3_bucket.archive.arn
  }

  statement {
    sid     = "DenyPlainHTTP"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      each.value,
      "${each.value}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
