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
