# Ferroshop on a local kind cluster, in one `terraform apply`: cluster → platform → app.
# See README.md for the commands.

locals {
  # Every service of the repository (a directory of services/ with a Cargo.toml).
  services = sort([for manifest in fileset("${path.root}/../../../services", "*/Cargo.toml") : dirname(manifest)])
}

provider "kind" {}

provider "helm" {
  kubernetes = {
    host                   = module.cluster.endpoint
    client_certificate     = module.cluster.client_certificate
    client_key             = module.cluster.client_key
    cluster_ca_certificate = module.cluster.cluster_ca_certificate
  }
}

provider "kustomization" {
  kubeconfig_raw = module.cluster.kubeconfig
}

module "cluster" {
  source = "../../modules/cluster-kind"

  name   = var.cluster_name
  images = [for service in local.services : "ferroshop/${service}:${var.image_tag}"]
}

module "platform" {
  source = "../../modules/platform"

  # kind's kubelets serve self-signed certificates.
  metrics_server_insecure_kubelet_tls = true

  # After the cluster, by value: a module-level depends_on would defer the platform's data
  # source (the RabbitMQ operator manifest) to apply time (see modules/platform/main.tf).
  prerequisites = [module.cluster.endpoint]
}

module "app" {
  source = "../../modules/app"

  overlay       = "local"
  observability = var.observability
  images        = { for service in local.services : service => { name = "ferroshop/${service}", tag = var.image_tag } }

  # After the platform (CRDs, operators) and the image loading, by value: a module-level
  # depends_on here would defer the app's kustomization data source to apply time and fail the
  # plan with "Invalid for_each argument" (see modules/app/main.tf).
  prerequisites = concat(module.platform.ready, module.cluster.images_loaded)
}
