# A tiny instance with no inbound port at all, reached through AWS Systems Manager Session Manager, so that the
# uploader (or psql) on the user's machine can reach the private database through a forwarded local port:
#
#   aws ssm start-session --target <bastion_instance_id> --document-name AWS-StartPortForwardingSessionToRemoteHost \
#       --parameters host=<database_address>,portNumber=5432,localPortNumber=15432
#
# t4g.nano: ~$3/month. Stop it (or set enable_bastion = false) when no disc is being uploaded.

data "aws_ssm_parameter" "al2023_arm64" {
  count = var.enable_bastion ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

resource "aws_iam_role" "bastion" {
  count = var.enable_bastion ? 1 : 0
  name  = "${var.name}-bastion"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "bastion_ssm" {
  count      = var.enable_bastion ? 1 : 0
  role       = aws_iam_role.bastion[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "bastion" {
  count = var.enable_bastion ? 1 : 0
  name  = "${var.name}-bastion"
  role  = aws_iam_role.bastion[0].name
}

resource "aws_instance" "bastion" {
  # checkov:skip=CKV_AWS_88: the public IP is for outbound HTTPS to Systems Manager only (no NAT gateway); the security group has no inbound rule
  # checkov:skip=CKV_AWS_126: detailed monitoring (1-minute metrics) costs more than the instance itself and tells nothing for a port forwarder
  count                       = var.enable_bastion ? 1 : 0
  ami                         = data.aws_ssm_parameter.al2023_arm64[0].value
  instance_type               = "t4g.nano"
  subnet_id                   = aws_subnet.public[0].id
  vpc_security_group_ids      = [aws_security_group.bastion.id]
  associate_public_ip_address = true
  iam_instance_profile        = aws_iam_instance_profile.bastion[0].name
  ebs_optimized               = true
  monitoring                  = false

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    encrypted   = true
    volume_type = "gp3"
    volume_size = 8
  }

  tags = { Name = "${var.name}-bastion" }

  lifecycle {
    ignore_changes = [ami]
  }
}
