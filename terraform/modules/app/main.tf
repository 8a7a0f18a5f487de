# Applies Ferroshop's Kubernetes manifests: the k8s/ overlay (plus the observability component)
# is built by the kustomization provider exactly as `kubectl kustomize` builds it, and each
# resulting object is applied in priority order: namespaces and CRDs first, then everything
# else, then admission webhooks. No workload manifest is written in HCL here: k8s/ stays their
# single source.
#
# Known at plan, or the first `terraform plan` fails with "Invalid for_each argument":
# the `for_each` of p0/p1/p2 is the kustomization data source's `ids_prio`, so Terraform must
# be able to read that data source while planning. It can as long as
#   * every argument of the data source is known at plan (the overlay, the component, the image
#     names and tags). Generated credentials are not: random_password and tls_private_key are
#     unknown until apply, so the two Secrets are separate resources below, never
#     `secret_generator`s of the overlay;
#   * nothing defers the data source to apply time: no `depends_on` on it, and no
#     module-level `depends_on` on a call of this module (that defers every data source inside
#     while the dependency has pending changes, i.e. on every first apply). Callers order this
#     module after the platform through `var.prerequisites` instead.
# `cargo xtask deploy-check` fails when either rule is broken.
#
# The three Secrets the manifests expect but do not contain are generated here:
#   rabbitmq-credentials   the broker's application user, with a random password
#   users-jwt              the Ed25519 key that signs access tokens
#   gateway-stream-ticket  the key every gateway replica signs order-stream tickets with
# They live in the Terraform state: keep the state private (an encrypted remote backend).
# Their names carry no content hash, so replacing one (`terraform apply -replace=…`) does not
# roll the pods by itself: `kubectl -n ferroshop rollout restart deployment,statefulset` after.

resource "random_password" "rabbitmq" {
  length  = 32
  special = false # it is embedded in an amqp:// URL
}

resource "tls_private_key" "users_jwt" {
  algorithm = "ED25519"
}

resource "random_password" "gateway_stream_ticket" {
  length  = 64
  special = false
}

locals {
  k8s_dir   = "${path.module}/../../../k8s"
  namespace = "ferroshop"
  labels    = { "app.kubernetes.io/part-of" = "ferroshop", "app.kubernetes.io/managed-by" = "terraform" }
}

# What must exist before anything is applied (the platform's releases and CRDs, the images in
# the cluster). A value, not a module-level depends_on: see the top of this file.
resource "terraform_data" "prerequisites" {
  input = var.prerequisites
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

  depends_on = [terraform_data.prerequisites]
}

# The generated Secrets, in the namespace p0 created. Static resource addresses: their values
# are unknown until apply, which is fine outside a for_each.
resource "kustomization_resource" "rabbitmq_credentials" {
  manifest = sensitive(jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    type       = "Opaque"
    metadata   = { name = "rabbitmq-credentials", namespace = local.namespace, labels = local.labels }
    data = {
      username = base64encode("ferroshop")
      password = base64encode(random_password.rabbitmq.result)
    }
  }))

  depends_on = [kustomization_resource.p0]
}

resource "kustomization_resource" "users_jwt" {
  manifest = sensitive(jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    type       = "Opaque"
    metadata   = { name = "users-jwt", namespace = local.namespace, labels = local.labels }
    data = {
      "private-key.pem" = base64encode(tls_private_key.users_jwt.private_key_pem_pkcs8)
    }
  }))

  depends_on = [kustomization_resource.p0]
}

resource "kustomization_resource" "gateway_stream_ticket" {
  manifest = sensitive(jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    type       = "Opaque"
    metadata   = { name = "gateway-stream-ticket", namespace = local.namespace, labels = local.labels }
    data = {
      key = base64encode(random_password.gateway_stream_ticket.result)
    }
  }))

  depends_on = [kustomization_resource.p0]
}

# 2. Everything else. `wait` makes the provider wait until each Deployment is available, and
# only Deployments: the provider does not wait for StatefulSets (RabbitMQ, Redis) or
# CloudNativePG Clusters. Every service's readiness needs its database and the broker, so the
# Deployments are ready only once those are; `cargo xtask kind-smoke` still checks every
# workload itself (kubectl rollout status / wait).
resource "kustomization_resource" "p1" {
  for_each = data.kustomization_overlay.ferroshop.ids_prio[1]

  manifest = contains(local.secret_ids, each.value) ? sensitive(local.manifests[each.value]) : local.manifests[each.value]
  wait     = true

  timeouts {
    create = "15m"
    update = "15m"
  }

  depends_on = [
    kustomization_resource.p0,
    kustomization_resource.rabbitmq_credentials,
    kustomization_resource.users_jwt,
    kustomization_resource.gateway_stream_ticket,
  ]
}

# 3. Admission webhooks last, so they never block the objects above.
resource "kustomization_resource" "p2" {
  for_each = data.kustomization_overlay.ferroshop.ids_prio[2]

  manifest = contains(local.secret_ids, each.value) ? sensitive(local.manifests[each.value]) : local.manifests[each.value]

  depends_on = [kustomization_resource.p1]
}
