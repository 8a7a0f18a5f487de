# A local Kubernetes cluster in Docker containers (kind): one control plane, a few workers.
# kind's default CNI (kindnet) enforces NetworkPolicy, so the default-deny policies of k8s/ hold
# locally as they do in the cloud.

resource "kind_cluster" "this" {
  name           = var.name
  node_image     = var.node_image
  wait_for_ready = true
  # Always set: without it the provider writes an admin kubeconfig (<name>-config) into the
  # directory terraform runs in, i.e. into the checkout. ~/.kube/config is where kind itself
  # writes and where `kubectl --context kind-<name>` finds it; destroy removes the context.
  kubeconfig_path = var.kubeconfig_path != "" ? var.kubeconfig_path : pathexpand("~/.kube/config")

  kind_config {
    kind        = "Cluster"
    api_version = "kind.x-k8s.io/v1alpha4"

    node {
      role = "control-plane"
    }

    dynamic "node" {
      for_each = range(var.workers)
      content {
        role = "worker"
      }
    }
  }
}

# Images built on this machine (docker build, see terraform/envs/local/README.md) are copied
# into the nodes, so pods start without a registry. Runs again whenever the list changes.
resource "terraform_data" "load_images" {
  count = length(var.images) > 0 ? 1 : 0

  triggers_replace = [kind_cluster.this.id, var.images]

  provisioner "local-exec" {
    command = "kind load docker-image --name ${var.name} ${join(" ", var.images)}"
  }
}
