# The status URL: an API Gateway HTTP API (HTTPS with AWS's certificate on *.execute-api.<region>.amazonaws.com,
# so no domain or certificate is needed) forwarding through a VPC link to the status server, found through
# Cloud Map. Cheaper than an ALB ($1 per million requests instead of ~$16/month + LCUs) for a page one person
# looks at. The status server itself requires BACKUP_STATUS_TOKEN on every route but /healthz.

resource "aws_service_discovery_private_dns_namespace" "main" {
  name        = "${var.name}.internal"
  description = "Service discovery of the status server for the API Gateway VPC link"
  vpc         = aws_vpc.main.id
}

resource "aws_service_discovery_service" "status" {
  name = "status"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.main.id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "SRV"
      ttl  = 10
    }
  }

  health_check_custom_config {}
}

resource "aws_apigatewayv2_vpc_link" "status" {
  name               = "${var.name}-status"
  subnet_ids         = aws_subnet.public[*].id
  security_group_ids = [aws_security_group.vpc_link.id]
}

resource "aws_apigatewayv2_api" "status" {
  name          = "${var.name}-status"
  protocol_type = "HTTP"
  description   = "Status page of ${var.name}"
}

resource "aws_apigatewayv2_integration" "status" {
  api_id               = aws_apigatewayv2_api.status.id
  integration_type     = "HTTP_PROXY"
  integration_method   = "ANY"
  integration_uri      = aws_service_discovery_service.status.arn
  connection_type      = "VPC_LINK"
  connection_id        = aws_apigatewayv2_vpc_link.status.id
  timeout_milliseconds = 29000

  # The client's address for the login rate limit, in a header the gateway overwrites on every request, so a client
  # cannot choose it (an X-Forwarded-For it sends could reach the server as it wrote it). The status server reads it
  # through BACKUP_STATUS_CLIENT_IP_HEADER (ecs.tf).
  request_parameters = {
    "overwrite:header.x-backup-client-ip" = "$context.identity.sourceIp"
  }
}

resource "aws_apigatewayv2_route" "status" {
  # checkov:skip=CKV_AWS_309: the status server authenticates every request itself (bearer token or the login cookie; only /healthz is open), so the gateway passes requests through
  api_id    = aws_apigatewayv2_api.status.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.status.id}"
}

resource "aws_cloudwatch_log_group" "status_api" {
  name              = "/${var.name}/status-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_apigatewayv2_stage" "status" {
  api_id      = aws_apigatewayv2_api.status.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.status_rate_limit_per_second
    throttling_burst_limit = var.status_rate_limit_per_second * 2
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.status_api.arn
    format = jsonencode({
      requestId = "$context.requestId"
      ip        = "$context.identity.sourceIp"
      time      = "$context.requestTime"
      method    = "$context.httpMethod"
      path      = "$context.path"
      status    = "$context.status"
      latency   = "$context.responseLatency"
      error     = "$context.integrationErrorMessage"
    })
  }
}
