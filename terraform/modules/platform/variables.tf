# Chart versions are pinned here, in one place; bump them deliberately (and read the charts'
# upgrade notes: CRDs of the operators change with them). Every pin must appear in
# terraform/chart-versions.json, the dated list of versions each chart repository serves (see
# terraform/README.md for refreshing it).

variable "cloudnative_pg_chart_version" {
  description = "Version of the cloudnative-pg chart (the CloudNativePG operator and its CRDs)."
  type        = string
  default     = "0.26.1"
}

variable "cert_manager_chart_version" {
  description = "Version of the cert-manager chart (issues and rotates the services' identity certificates)."
  type        = string
  default     = "v1.19.1"
}

variable "metrics_server_chart_version" {
  description = "Version of the metrics-server chart (resource metrics for the HorizontalPodAutoscalers)."
  type        = string
  default     = "3.13.0"
}

variable "metrics_server_insecure_kubelet_tls" {
  description = "Skip verifying kubelet serving certificates (kind's are self-signed; keep false on EKS)."
  type        = bool
  default     = false
}

variable "kube_prometheus_stack_chart_version" {
  description = "Version of the kube-prometheus-stack chart (Prometheus operator, Prometheus, Alertmanager, Grafana)."
  type        = string
  default     = "82.6.0"
}

variable "opentelemetry_collector_chart_version" {
  description = "Version of the opentelemetry-collector chart (the cluster's trace gateway)."
  type        = string
  # Must be a version the chart repository serves (terraform/chart-versions.json; the deploy
  # check fails otherwise): a pin that was never released fails `helm_release` at apply time.
  default = "0.158.2"
}

variable "monitoring_namespace" {
  description = "Namespace of Prometheus, Grafana and the collector gateway (k8s/components/observability expects `monitoring`)."
  type        = string
  default     = "monitoring"
}

variable "traces_otlp_endpoint" {
  description = "Where the collector gateway sends spans (OTLP/gRPC host:port of Jaeger, Tempo or a vendor). Empty: spans are only logged by the gateway."
  type        = string
  default     = ""
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples."
  type        = string
  default     = "7d"
}

variable "prometheus_storage_size" {
  description = "Persistent volume size for Prometheus; empty keeps its data on an emptyDir (fine for kind)."
  type        = string
  default     = ""
}
