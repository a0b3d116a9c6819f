# GitHub Actions deploys without long-lived keys: the workflow gets an OIDC token from GitHub, and AWS trusts it
# for one role, and only for pushes to the deploy branch of one repository (not pull requests, not forks, not
# other branches).

resource "aws_iam_openid_connect_provider" "github" {
  count          = var.create_github_oidc_provider ? 1 : 0
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 0 : 1
  url   = "https://token.actions.githubusercontent.com"
}

locals {
  github_oidc_provider_arn = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
}

data "aws_iam_policy_document" "github_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:ref:refs/heads/${var.github_deploy_branch}"]
    }
  }
}

resource "aws_iam_role" "github_deploy" {
  name                 = "${var.name}-github-deploy"
  description          = "Assumed by GitHub Actions on pushes to ${var.github_repository}@${var.github_deploy_branch}: terraform apply, image push, ECS deploy"
  assume_role_policy   = data.aws_iam_policy_document.github_trust.json
  max_session_duration = 3600
}

# Terraform runs under this role and manages IAM roles, buckets, the database and the network, so it needs wide
# rights; who can use them is limited by the trust policy above (pushes to one branch of one repository).
resource "aws_iam_role_policy_attachment" "github_deploy" {
  # checkov:skip=CKV_AWS_274: the deploy role runs terraform apply, which creates IAM roles and policies, so it is effectively administrator whatever policy it has; the trust policy limits it to pushes to the deploy branch of one repository; narrow github_deploy_policy_arns if infra applies are split off
  for_each   = toset(var.github_deploy_policy_arns)
  role       = aws_iam_role.github_deploy.name
  policy_arn = each.value
}
