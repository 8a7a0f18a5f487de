variable "cluster_name" {
  description = "Name of the kind cluster (kubectl context kind-<name>)."
  type        = string
  default     = "ferroshop"
}

variable "image_tag" {
  description = "Tag of the locally built images ferroshop/<service>:<tag> to load and run."
  type        = string
  default     = "dev"
}

variable "observability" {
  description = "Apply the observability component (collector, PodMonitors, alerts, dashboard)."
  type        = bool
  default     = true
}
