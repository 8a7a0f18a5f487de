variable "name" {
  description = "Name of the EKS cluster; prefixes every resource of this module."
  type        = string
  default     = "ferroshop"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "Lower-case letters, digits and dashes, 2 to 31 characters, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  # A version in EKS standard support (14 months from its EKS release): past that, EKS bills
  # extended support for the control plane every hour (1.32 left standard support in March
  # 2026). Raise it one minor at a time, with the add-ons (their default versions follow it).
  default = "1.35"
}

variable "vpc_cidr" {
  description = "CIDR block of the cluster's VPC; split into three public and three private subnets."
  type        = string
  default     = "10.40.0.0/16"
}

variable "api_public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint (where `terraform apply` and kubectl run). Empty: the endpoint is private only."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.api_public_access_cidrs, "0.0.0.0/0")
    error_message = "Do not open the Kubernetes API to the whole internet; list your own addresses."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 3
}

variable "node_desired_size" {
  description = "Initial number of nodes."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 6
}

variable "services" {
  description = "Services that get an ECR repository (ferroshop/<service>)."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Retention of the control plane and VPC flow logs."
  type        = number
  default     = 365
}
