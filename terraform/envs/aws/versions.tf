terraform {
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "3.0.2"
    }
    kustomization = {
      source  = "kbst/kustomization"
      version = "0.9.6"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "4.1.0"
    }
  }

  # State holds generated credentials: use an encrypted remote backend for anything shared, e.g.
  #   backend "s3" { bucket = "…" key = "ferroshop/terraform.tfstate" region = "…" encrypt = true use_lockfile = true }
}
