terraform {
  required_version = ">= 1.7.0"

  required_providers {
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
  }
}
