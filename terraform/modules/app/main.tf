# Applies Ferroshop's Kubernetes manifests: the k8s/ overlay (plus the observability component)
# is built by the kustomization provider exactly as `kubectl kustomize` builds it, and each
# resulting object is applied in priority order: namespaces and CRDs first, then everything
# else, then admission webhooks. No manifest is written in HCL here: k8s/ stays the single
# source of workload manifests.
#
# The two Secrets the manifests expect but do not contain are generated here and added to the
# same kustomize build (so their hash-suffixed names are wired into the pods):
#   rabbitmq-credentials  the broker's application user, with a random password
#   users-jwt             the Ed25519 key that signs access tokens
# They live in the Terraform state: keep the state private (an encrypted remote backend).

resource "random_password" "rabbitmq" {
  length  = 32
  special = false # it is embedded in an amqp:// URL
}

resource "tls_private_key" "users_jwt" {
  algorithm = "ED25519"
}

locals {
  k8s_dir = "${path.module}/../../../k8s"
}

data "kustomization_overlay" "ferroshop" {
  resources  = ["${local.k8s_dir}/overlays/${var.overlay}"]
  components = var.observability ? ["${local.k8s_dir}/components/observability"] : []

  dynamic "images" {
    for_each = var.images
    content {
      name     = "ferroshop/${images.key}"
      new_name = images.value.name
      new_tag  = images.value.tag
      digest   = images.value.digest
    }
  }

  secret_generator {
    name      = "rabbitmq-credentials"
    namespace = "ferroshop"
    type      = "Opaque"
    literals = [
      "username=ferroshop",
      "password=${random_password.rabbitmq.result}",
    ]
  }

  secret_generator {
    name      = "users-jwt"
    namespace = "ferroshop"
    type      = "Opaque"
    literals = [
      "private-key.pem=${tls_private_key.users_jwt.private_key_pem_pkcs8}",
    ]
  }
}

locals {
  manifests = data.kustomization_overlay.ferroshop.manifests
  # Secret manifests are marked sensitive so their values never show in a plan.
  secret_ids = [for id in data.kustomization_overlay.ferroshop.ids : id if startswith(id, "_/Secret/")]
}

# 1. Namespaces and CustomResourceDefinitions.
resource "kustomization_resource" "p0" {
  for_each = data.kustomization_overlay.ferroshop.ids_prio[0]

  manifest = contains(local.secret_ids, each.value) ? sensitive(local.manifests[each.value]) : local.manifests[each.value]
}

# 2. Everything else; waits for Deployments and StatefulSets to become ready.
resource "kustomization_resource" "p1" {
  for_each = data.kustomization_overlay.ferroshop.ids_prio[1]

  manifest = contains(local.secret_ids, each.value) ? sensitive(local.manifests[each.value]) : local.manifests[each.value]
  wait     = true

  timeouts {
    create = "15m"
    update = "15m"
  }

  depends_on = [kustomization_resource.p0]
}

# 3. Admission webhooks last, so they never block the objects above.
resource "kustomization_resource" "p2" {
  for_each = data.kustomization_overlay.ferroshop.ids_prio[2]

  manifest = contains(local.secret_ids, each.value) ? sensitive(local.manifests[each.value]) : local.manifests[each.value]

  depends_on = [kustomization_resource.p1]
}
