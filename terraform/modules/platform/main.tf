# What the application needs from the cluster before it can be applied: the CloudNativePG
# operator (CRD `Cluster`, one PostgreSQL cluster per service), the RabbitMQ Cluster Operator
# (CRD `RabbitmqCluster`, the broker), the Prometheus operator stack (CRDs
# `PodMonitor`/`PrometheusRule`, Prometheus, Alertmanager, Grafana with its dashboard and
# datasource sidecars), an OpenTelemetry collector acting as the cluster's trace gateway, Loki
# (the services' logs), metrics-server, which the gateway's HorizontalPodAutoscaler and KEDA's
# cpu triggers read CPU from (without it they never scale), KEDA (CRDs
# `ScaledObject`/`TriggerAuthentication`), which scales the consumers on their queue backlog,
# cert-manager (CRDs `Issuer`/`Certificate`), which issues and rotates each service's identity
# certificate for mutual TLS (k8s/base/identity), the RabbitMQ Messaging Topology Operator
# (CRDs `User`/`Permission`: one broker user per service), the Redis ACL users' passwords, and,
# with `redis_ha`, Redis with Sentinel failover (the cloud overlay's cache).
#
# Every release waits until it is ready, so CRDs exist before terraform/modules/app applies
# resources that use them. Everything waits for `var.prerequisites` (the cluster), passed by
# value: a module-level depends_on on the call of this module would defer the operator
# manifest's data source below to apply time and fail the first plan.

# What must exist first (the cluster's nodes and DNS). A value, not a module-level depends_on.
resource "terraform_data" "prerequisites" {
  input = var.prerequisites
}

# The RabbitMQ Cluster Operator has no Helm chart of its own: its release manifest (namespace
# rabbitmq-system, CRD, RBAC, Deployment), pinned by version, built by the kustomization provider
# exactly as `kubectl kustomize` would build a kustomization listing it, and applied in priority
# order (namespace and CRD first, then the rest, then webhooks), as terraform/modules/app does.
data "kustomization_overlay" "rabbitmq_cluster_operator" {
  resources = ["https://github.com/rabbitmq/cluster-operator/releases/download/v${var.rabbitmq_cluster_operator_version}/cluster-operator.yml"]
}

resource "kustomization_resource" "rabbitmq_cluster_operator_p0" {
  for_each = data.kustomization_overlay.rabbitmq_cluster_operator.ids_prio[0]
  manifest = data.kustomization_overlay.rabbitmq_cluster_operator.manifests[each.value]

  depends_on = [terraform_data.prerequisites]
}

resource "kustomization_resource" "rabbitmq_cluster_operator_p1" {
  for_each = data.kustomization_overlay.rabbitmq_cluster_operator.ids_prio[1]
  manifest = data.kustomization_overlay.rabbitmq_cluster_operator.manifests[each.value]
  wait     = true

  depends_on = [kustomization_resource.rabbitmq_cluster_operator_p0]
}

resource "kustomization_resource" "rabbitmq_cluster_operator_p2" {
  for_each = data.kustomization_overlay.rabbitmq_cluster_operator.ids_prio[2]
  manifest = data.kustomization_overlay.rabbitmq_cluster_operator.manifests[each.value]

  depends_on = [kustomization_resource.rabbitmq_cluster_operator_p1]
}

# The Messaging Topology Operator (CRDs `User`, `Permission`, …): one broker user per service
# and one for KEDA, with the permissions k8s/base/broker-permissions.yaml states, each user's
# generated credentials in a Secret `<user>-user-credentials`. No Helm chart either: its release
# manifest, in the variant whose webhook certificate cert-manager issues, applied like the
# Cluster Operator's above, after cert-manager and the Cluster Operator (it reconciles against
# their RabbitmqClusters).
data "kustomization_overlay" "rabbitmq_topology_operator" {
  resources = ["https://github.com/rabbitmq/messaging-topology-operator/releases/download/v${var.rabbitmq_topology_operator_version}/messaging-topology-operator-with-certmanager.yaml"]
}

resource "kustomization_resource" "rabbitmq_topology_operator_p0" {
  for_each = data.kustomization_overlay.rabbitmq_topology_operator.ids_prio[0]
  manifest = data.kustomization_overlay.rabbitmq_topology_operator.manifests[each.value]

  depends_on = [helm_release.cert_manager, kustomization_resource.rabbitmq_cluster_operator_p2]
}

resource "kustomization_resource" "rabbitmq_topology_operator_p1" {
  for_each = data.kustomization_overlay.rabbitmq_topology_operator.ids_prio[1]
  manifest = data.kustomization_overlay.rabbitmq_topology_operator.manifests[each.value]
  wait     = true

  depends_on = [kustomization_resource.rabbitmq_topology_operator_p0]
}

resource "kustomization_resource" "rabbitmq_topology_operator_p2" {
  for_each = data.kustomization_overlay.rabbitmq_topology_operator.ids_prio[2]
  manifest = data.kustomization_overlay.rabbitmq_topology_operator.manifests[each.value]

  depends_on = [kustomization_resource.rabbitmq_topology_operator_p1]
}

resource "helm_release" "cloudnative_pg" {
  name             = "cnpg"
  repository       = "https://cloudnative-pg.github.io/charts"
  chart            = "cloudnative-pg"
  version          = var.cloudnative_pg_chart_version
  namespace        = "cnpg-system"
  create_namespace = true
  wait             = true
  timeout          = 600

  depends_on = [terraform_data.prerequisites]

  values = [yamlencode({
    # The database NetworkPolicies in k8s/base/data/postgres admit the operator from this
    # namespace.
    fullnameOverride = "cnpg"
  })]
}

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_chart_version
  namespace        = "cert-manager"
  create_namespace = true
  wait             = true
  timeout          = 600

  values = [yamlencode({
    # The chart installs and upgrades its CRDs with the release.
    crds = { enabled = true }
  })]

  depends_on = [terraform_data.prerequisites]
}

resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  repository = "https://kubernetes-sigs.github.io/metrics-server/"
  chart      = "metrics-server"
  version    = var.metrics_server_chart_version
  namespace  = "kube-system"
  wait       = true
  timeout    = 600

  values = [yamlencode({
    # kind's kubelets serve self-signed certificates; EKS's are signed by the cluster CA.
    args = var.metrics_server_insecure_kubelet_tls ? ["--kubelet-insecure-tls"] : []
  })]

  depends_on = [terraform_data.prerequisites]
}

# KEDA: the ScaledObjects of k8s/base (queue backlog and CPU of the consumers). Its operator
# reads the broker from this namespace (the broker's NetworkPolicy admits `keda`).
resource "helm_release" "keda" {
  name             = "keda"
  repository       = "https://kedacore.github.io/charts"
  chart            = "keda"
  version          = var.keda_chart_version
  namespace        = "keda"
  create_namespace = true
  wait             = true
  timeout          = 600

  depends_on = [terraform_data.prerequisites]
}

# The Redis ACL users: inventory's catalog cache and the gateway's rate limiter, each limited to
# its key prefix and commands (redis-acl.json, written by `cargo xtask grants` from
# redis_guard::acl), each with a generated password. The ACL file holds the password's SHA-256
# only; the plain passwords go to the services' Secrets (terraform/modules/app, from the
# `redis_passwords` output). The file's lines for these users are shared by both Redis
# deployments: the base's single Redis (the app module's Secret `redis-acl`) and redis-ha below.
locals {
  redis_grants = jsondecode(file("${path.module}/redis-acl.json")).users
}

resource "random_password" "redis" {
  for_each = local.redis_grants

  length  = 32
  special = false
}

locals {
  redis_acl_users = join("\n", [
    for user, grant in local.redis_grants :
    "user ${user} on #${sha256(random_password.redis[user].result)} ${join(" ", grant.rules)}"
  ])
}

# redis-ha's ACL file. Its `default` user stays unrestricted: the chart's replication, Sentinel
# and HAProxy checks use it, and so do the services that find the primary through Sentinel,
# which connects to the primary without credentials (libs/redis-guard, target.rs). The
# inventory and gateway users limit every client that connects with REDIS_URL.
resource "kustomization_resource" "redis_namespace" {
  count = var.redis_ha ? 1 : 0

  manifest = jsonencode({
    apiVersion = "v1"
    kind       = "Namespace"
    metadata   = { name = "redis" }
  })

  depends_on = [terraform_data.prerequisites]
}

resource "kustomization_resource" "redis_acl" {
  count = var.redis_ha ? 1 : 0

  manifest = sensitive(jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    type       = "Opaque"
    metadata   = { name = "redis-acl", namespace = "redis" }
    data = {
      "users.acl" = base64encode("user default on nopass ~* &* +@all\n${local.redis_acl_users}\n")
    }
  }))

  depends_on = [kustomization_resource.redis_namespace]
}

# Redis with replication and Sentinel failover, for the cloud overlay (whose services read
# <SVC>_REDIS_SENTINELS=redis-ha.redis.svc:26379 and <SVC>_REDIS_MASTER=ferroshop): three
# Redis pods, a Sentinel beside each, HAProxy in front of the master, at most one pod down
# during a drain. The local overlay keeps the base's single StatefulSet (`redis_ha = false`).
resource "helm_release" "redis_ha" {
  count = var.redis_ha ? 1 : 0

  name             = "redis-ha"
  repository       = "https://dandydeveloper.github.io/charts"
  chart            = "redis-ha"
  version          = var.redis_ha_chart_version
  namespace        = "redis"
  create_namespace = false
  wait             = true
  timeout          = 900

  values = [yamlencode({
    replicas = 3
    redis = {
      masterGroupName = "ferroshop"
      # The ACL file of the Secret above (`redis.config` entries become redis.conf lines).
      config = { aclfile = "/etc/redis-acl/users.acl" }
      extraVolumeMounts = [
        { name = "acl", mountPath = "/etc/redis-acl", readOnly = true },
      ]
    }
    extraVolumes = [
      { name = "acl", secret = { secretName = "redis-acl", defaultMode = 288 } }, # 0440
    ]
    sentinel = {
      quorum = 2
    }
    haproxy = {
      enabled  = true
      replicas = 2
    }
    hardAntiAffinity    = false
    podDisruptionBudget = { maxUnavailable = 1 }
    persistentVolume    = { enabled = true, size = var.redis_ha_storage_size }
  })]

  depends_on = [kustomization_resource.redis_acl]
}

resource "random_password" "grafana_admin" {
  length  = 24
  special = false
}

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.kube_prometheus_stack_chart_version
  namespace        = var.monitoring_namespace
  create_namespace = true
  wait             = true
  timeout          = 900

  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        # Pick up the PodMonitors and PrometheusRules of every namespace, not only those
        # labelled for this Helm release.
        podMonitorSelectorNilUsesHelmValues     = false
        serviceMonitorSelectorNilUsesHelmValues = false
        ruleSelectorNilUsesHelmValues           = false
        retention                               = var.prometheus_retention
        storageSpec = var.prometheus_storage_size == "" ? {} : {
          volumeClaimTemplate = {
            spec = {
              accessModes = ["ReadWriteOnce"]
              resources   = { requests = { storage = var.prometheus_storage_size } }
            }
          }
        }
      }
    }
    grafana = {
      adminPassword = random_password.grafana_admin.result
      sidecar = {
        dashboards = {
          enabled         = true
          label           = "grafana_dashboard"
          labelValue      = "1"
          searchNamespace = "ALL"
        }
        # The Loki datasource of k8s/components/observability lives in the app's namespace.
        datasources = {
          enabled         = true
          label           = "grafana_datasource"
          labelValue      = "1"
          searchNamespace = "ALL"
        }
      }
      # The trace backend's query API, uid `jaeger`: what the Loki datasource's trace links open.
      additionalDataSources = var.traces_query_url == "" ? [] : [{
        name   = "Jaeger"
        uid    = "jaeger"
        type   = "jaeger"
        access = "proxy"
        url    = var.traces_query_url
      }]
    }
  })]

  depends_on = [terraform_data.prerequisites]
}

# Loki, single binary, for the services' logs: the namespace collector of
# k8s/components/observability sends OTLP to http://loki.monitoring.svc:3100/otlp. Its data is
# on a volume of `loki_storage_size` (filesystem storage: one replica, no object store).
resource "helm_release" "loki" {
  name             = "loki"
  repository       = "https://grafana.github.io/helm-charts"
  chart            = "loki"
  version          = var.loki_chart_version
  namespace        = var.monitoring_namespace
  create_namespace = true
  wait             = true
  timeout          = 600

  values = [yamlencode({
    deploymentMode = "SingleBinary"
    loki = {
      auth_enabled = false
      commonConfig = { replication_factor = 1 }
      storage      = { type = "filesystem" }
      schemaConfig = {
        configs = [{
          from         = "2024-04-01"
          store        = "tsdb"
          object_store = "filesystem"
          schema       = "v13"
          index        = { prefix = "loki_index_", period = "24h" }
        }]
      }
      # OTLP ingestion keeps trace_id/span_id as structured metadata (needs schema v13).
      limits_config = { allow_structured_metadata = true }
    }
    singleBinary = {
      replicas    = 1
      persistence = { size = var.loki_storage_size }
    }
    # Monolithic: no read/write/backend targets, no gateway, no bundled object store or caches.
    read         = { replicas = 0 }
    write        = { replicas = 0 }
    backend      = { replicas = 0 }
    gateway      = { enabled = false }
    minio        = { enabled = false }
    chunksCache  = { enabled = false }
    resultsCache = { enabled = false }
    lokiCanary   = { enabled = false }
    test         = { enabled = false }
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

locals {
  trace_exporters = var.traces_otlp_endpoint == "" ? ["debug"] : ["otlp/backend"]
  backend_exporter = var.traces_otlp_endpoint == "" ? {} : {
    "otlp/backend" = {
      endpoint = var.traces_otlp_endpoint
      tls      = { insecure = true }
    }
  }
}

resource "helm_release" "otel_gateway" {
  name             = "otel-gateway"
  repository       = "https://open-telemetry.github.io/opentelemetry-helm-charts"
  chart            = "opentelemetry-collector"
  version          = var.opentelemetry_collector_chart_version
  namespace        = var.monitoring_namespace
  create_namespace = true
  wait             = true
  timeout          = 600

  values = [yamlencode({
    mode             = "deployment"
    nameOverride     = "otel-gateway"
    fullnameOverride = "otel-gateway"
    image = {
      repository = "otel/opentelemetry-collector-contrib"
    }
    config = {
      exporters = merge({ debug = { verbosity = "basic" } }, local.backend_exporter)
      service = {
        pipelines = {
          traces = {
            receivers  = ["otlp"]
            processors = ["memory_limiter", "batch"]
            exporters  = local.trace_exporters
          }
        }
      }
    }
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}
