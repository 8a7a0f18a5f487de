variable "name" {
  description = "Name of the kind cluster (also the kubectl context, kind-<name>)."
  type        = string
  default     = "ferroshop"
}

variable "node_image" {
  description = "kindest/node image: fixes the Kubernetes version (the manifests are validated against 1.32)."
  type        = string
  default     = "kindest/node:v1.32.2"
}

variable "workers" {
  description = "Number of worker nodes besides the control plane."
  type        = number
  default     = 2

  validation {
    condition     = var.workers >= 0 && var.workers <= 5
    error_message = "Between 0 and 5 workers: this is a laptop cluster."
  }
}

variable "images" {
  description = "Locally built images to load into the nodes after creation (`kind load docker-image`), e.g. ferroshop/users:dev. Empty to skip."
  type        = list(string)
  default     = []
}
