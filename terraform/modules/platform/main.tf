# What the application needs from the cluster before it can be applied: the CloudNativePG
# operator (CRD `Cluster`, one PostgreSQL cluster per service), the Prometheus operator stack
# (CRDs `PodMonitor`/`PrometheusRule`, Prometheus, Alertmanager, Grafana with its dashboard
# sidecar), an OpenTelemetry collector acting as the cluster's trace gateway, metrics-server,
# which the services' HorizontalPodAutoscalers read CPU from (without it they never scale), and
# cert-manager (CRDs `Issuer`/`Certificate`), which issues and rotates each service's identity
# certificate for mutual TLS (k8s/base/identity).
#
# Every release waits until it is ready, so CRDs exist before terraform/modules/app applies
# resources that use them.

resource "helm_release" "cloudnative_pg" {
  name             = "cnpg"
  repository       = "https://cloudnative-pg.github.io/charts"
  chart            = "cloudnative-pg"
  version          = var.cloudnative_pg_chart_version
  namespace        = "cnpg-system"
  create_namespace = true
  wait             = true
  timeout          = 600

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
      }
    }
  })]
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
