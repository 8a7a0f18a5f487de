variable "name" {
  description = "Name of the kind cluster (also the kubectl context, kind-<name>)."
  type        = string
  default     = "ferroshop"
}

variable "node_image" {
  description = "kindest/node image: fixes the Kubernetes version (the deploy check validates the manifests against 1.32 and the EKS version)."
  type        = string
  # Tag and digest: a tag alone can be re-pushed, and kind supports a node image only with the
  # kind release it was published with. This is the v1.32.2 image published with kind v0.27.0;
  # when the kind provider moves to another kind release, take the digest from that release's
  # notes (https://github.com/kubernetes-sigs/kind/releases).
  default = "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f"

  validation {
    condition     = can(regex("^kindest/node:v[0-9.]+@sha256:[0-9a-f]{64}$", var.node_image))
    error_message = "Pin the node image by tag and digest (kindest/node:vX.Y.Z@sha256:…), from the kind release notes."
  }
}

variable "kubeconfig_path" {
  description = "Kubeconfig file the cluster's admin credentials are merged into (context kind-<name>). Empty: ~/.kube/config, where kubectl looks by default."
  type        = string
  default     = ""
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
