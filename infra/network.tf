# Two public subnets for the tasks (each task gets a public IP for outbound traffic only: no NAT gateway at
# $0.045/h + $0.045/GB, and no inbound rule lets anything in), two private subnets without any route to the
# internet for the database. S3 traffic goes through a free gateway endpoint, never over the internet.

# Two zones, named explicitly (default: the region's "a" and "b"), so the network never changes shape when AWS
# adds a zone; the data source fails the plan if one of them is not available.
locals {
  wanted_zones = length(var.availability_zones) > 0 ? var.availability_zones : ["${var.region}a", "${var.region}b"]
}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.wanted_zones
  }
}

locals {
  zones = data.aws_availability_zones.available.names
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

# The default security group of the VPC allows nothing (nothing uses it).
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count                   = length(local.zones)
  vpc_id                  = aws_vpc.main.id
  availability_zone       = local.zones[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-public-${local.zones[count.index]}" }
}

resource "aws_subnet" "private" {
  count             = length(local.zones)
  vpc_id            = aws_vpc.main.id
  availability_zone = local.zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index + 8)

  tags = { Name = "${var.name}-private-${local.zones[count.index]}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}

resource "aws_route_table_association" "public" {
  count          = length(aws_subnet.public)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-private" }
}

resource "aws_route_table_association" "private" {
  count          = length(aws_subnet.private)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.public.id, aws_route_table.private.id]

  tags = { Name = "${var.name}-s3" }
}

# Flow logs of rejected traffic only: what was refused is what matters here, and it keeps the log volume small.
resource "aws_flow_log" "main" {
  vpc_id               = aws_vpc.main.id
  traffic_type         = "REJECT"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow.arn
  iam_role_arn         = aws_iam_role.flow_logs.arn
}

resource "aws_cloudwatch_log_group" "flow" {
  name              = "/${var.name}/vpc-flow-rejects"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_iam_role" "flow_logs" {
  name = "${var.name}-flow-logs"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "flow_logs" {
  name = "write-flow-logs"
  role = aws_iam_role.flow_logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = "${aws_cloudwatch_log_group.flow.arn}:*"
    }]
  })
}

# --- security groups: no inbound rule anywhere except the status server from the API's VPC link, and the
# database from the tasks and the bastion. Outbound: HTTPS (S3, ECR, Secrets Manager, CloudWatch, STS,
# webhooks) and PostgreSQL to the database only.

resource "aws_security_group" "workers" {
  name        = "${var.name}-workers"
  description = "Transcoder, archiver and migration tasks: no inbound; HTTPS and PostgreSQL outbound"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "status" {
  name        = "${var.name}-status"
  description = "Status server: port 8080 from the API Gateway VPC link only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "vpc_link" {
  name        = "${var.name}-vpc-link"
  description = "API Gateway VPC link: to the status server only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "database" {
  name        = "${var.name}-database"
  description = "PostgreSQL: from the tasks and the bastion only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "bastion" {
  name        = "${var.name}-bastion"
  description = "SSM bastion: no inbound; HTTPS to SSM and PostgreSQL to the database"
  vpc_id      = aws_vpc.main.id
}

locals {
  database_clients = {
    workers = aws_security_group.workers.id
    status  = aws_security_group.status.id
    bastion = aws_security_group.bastion.id
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = local.database_clients
  security_group_id = each.value
  description       = "HTTPS to AWS APIs, S3 and the alert webhook"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "postgres" {
  for_each                     = local.database_clients
  security_group_id            = each.value
  description                  = "PostgreSQL to the catalog database"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_ingress_rule" "database" {
  for_each                     = local.database_clients
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "status_from_vpc_link" {
  security_group_id            = aws_security_group.status.id
  description                  = "Status page from the API Gateway VPC link"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.vpc_link.id
}

resource "aws_vpc_security_group_egress_rule" "vpc_link_to_status" {
  security_group_id            = aws_security_group.vpc_link.id
  description                  = "To the status server"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.status.id
}
