variable "overlay" {
  description = "Which overlay of k8s/overlays to apply: `local` (kind) or `cloud`."
  type        = string

  validation {
    condition     = contains(["local", "cloud"], var.overlay)
    error_message = "overlay must be local or cloud (a directory of k8s/overlays)."
  }
}

variable "observability" {
  description = "Add the k8s/components/observability component (collector, PodMonitors, alert rules, dashboard). Needs the platform module's CRDs."
  type        = bool
  default     = true
}

variable "images" {
  description = "Image per service, replacing ferroshop/<service> of the manifests: name (repository), tag and, for releases, digest."
  type = map(object({
    name   = string
    tag    = string
    digest = optional(string)
  }))
  default = {}
}

variable "prerequisites" {
  description = "Ids of what must exist before the manifests are applied (the platform's releases, the images loaded into the cluster). Pass them here instead of a module-level depends_on, which would defer the kustomization data source to apply time (see main.tf)."
  type        = list(string)
  default     = []
}

variable "redis_passwords" {
  description = "Password of each Redis ACL user (`inventory`, `gateway`): the platform module's `redis_passwords` output. Each goes into the Secret `<user>-redis` its service reads."
  type        = map(string)
  sensitive   = true
}

variable "redis_acl_users" {
  description = "The ACL file lines of the Redis users: the platform module's `redis_acl_users` output. With a `default` user that may only PING, they make the Secret `redis-acl` that the base's single Redis loads."
  type        = string
  sensitive   = true
}

variable "edge_certificate_arn" {
  description = "ARN of the ACM certificate the cloud overlay's Network Load Balancer terminates TLS with (port 443). Required with overlay `cloud`; ignored with `local`."
  type        = string
  default     = ""

  validation {
    condition     = var.edge_certificate_arn == "" || startswith(var.edge_certificate_arn, "arn:")
    error_message = "edge_certificate_arn must be an ACM certificate ARN (arn:aws:acm:…)."
  }
}
