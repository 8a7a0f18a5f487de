variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string
  default     = "ferroshop"
}

variable "api_public_access_cidrs" {
  description = "Your public address(es) in CIDR form, so terraform and kubectl can reach the API (e.g. [\"203.0.113.7/32\"])."
  type        = list(string)
}

variable "image_registry" {
  description = "Registry the images are pulled from (<registry>/ferroshop/<service>:<tag>). Empty: the ECR registry this configuration creates."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag of the images pushed to ECR (ferroshop/<service>:<tag>)."
  type        = string
}

variable "observability" {
  description = "Apply the observability component (collector, PodMonitors, alerts, dashboard)."
  type        = bool
  default     = true
}

variable "traces_otlp_endpoint" {
  description = "OTLP/gRPC host:port of a trace backend for the collector gateway; empty logs spans only."
  type        = string
  default     = ""
}

variable "traces_query_url" {
  description = "Query URL of that trace backend (e.g. Jaeger's), for Grafana's trace links from log lines; empty adds no trace datasource."
  type        = string
  default     = ""
}

variable "edge_certificate_arn" {
  description = "ARN of the ACM certificate for the shop's public name, which the gateway's Network Load Balancer terminates TLS with. Request or import it in ACM (DNS-validated) in the same region before applying."

  type = string

  validation {
    condition     = startswith(var.edge_certificate_arn, "arn:aws:acm:")
    error_message = "edge_certificate_arn must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)."
  }
}
