# Ferroshop on Amazon EKS, in one `terraform apply`: cluster (VPC, EKS, ECR) → platform → app.
# See README.md for the commands (images must be pushed to ECR before the app becomes ready).

locals {
  registry = var.image_registry != "" ? var.image_registry : module.cluster.registry
  services = sort([for manifest in fileset("${path.root}/../../../services", "*/Cargo.toml") : dirname(manifest)])
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "ferroshop"
      ManagedBy = "terraform"
    }
  }
}

module "cluster" {
  source = "../../modules/cluster-eks"

  name                    = var.cluster_name
  api_public_access_cidrs = var.api_public_access_cidrs
  services                = local.services
}

# Authentication runs `aws eks get-token` on demand (the identity running terraform created the
# cluster and is its administrator), so long applies never outlive a token.
locals {
  eks_token_command = ["eks", "get-token", "--cluster-name", module.cluster.name, "--region", var.region]

  kubeconfig = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = "ferroshop"
    clusters = [{
      name    = "ferroshop"
      cluster = { server = module.cluster.endpoint, certificate-authority-data = module.cluster.certificate_authority_data }
    }]
    users = [{
      name = "terraform"
      user = {
        exec = {
          apiVersion = "client.authentication.k8s.io/v1beta1"
          command    = "aws"
          args       = local.eks_token_command
        }
      }
    }]
    contexts = [{ name = "ferroshop", context = { cluster = "ferroshop", user = "terraform" } }]
  })
}

provider "helm" {
  kubernetes = {
    host                   = module.cluster.endpoint
    cluster_ca_certificate = base64decode(module.cluster.certificate_authority_data)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = local.eks_token_command
    }
  }
}

provider "kustomization" {
  kubeconfig_raw = local.kubeconfig
}

module "platform" {
  source = "../../modules/platform"

  prometheus_storage_size = "20Gi"
  prometheus_retention    = "15d"
  traces_otlp_endpoint    = var.traces_otlp_endpoint
  traces_query_url        = var.traces_query_url

  # The cloud overlay's services use Redis through Sentinel (k8s/overlays/cloud).
  redis_ha = true

  # After the cluster, by value: a module-level depends_on would defer the platform's data
  # source (the RabbitMQ operator manifest) to apply time (see modules/platform/main.tf).
  prerequisites = module.cluster.ready
}

module "app" {
  source = "../../modules/app"

  overlay       = "cloud"
  observability = var.observability
  images = {
    for service in local.services : service => {
      name = "${local.registry}/ferroshop/${service}"
      tag  = var.image_tag
    }
  }

  # After the platform (CRDs, operators), by value: a module-level depends_on here would defer
  # the app's kustomization data source to apply time and fail the plan with "Invalid for_each
  # argument", also on the second step of the README's `-target` flow (see modules/app/main.tf).
  prerequisites = module.platform.ready
}
