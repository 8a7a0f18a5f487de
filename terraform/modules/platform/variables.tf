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

variable "prerequisites" {
  description = "Ids of what must exist before anything is installed (the cluster's nodes, DNS, storage). Pass them here instead of a module-level depends_on, which would defer the operator manifest's data source to apply time (see main.tf)."
  type        = list(string)
  default     = []
}

variable "rabbitmq_cluster_operator_version" {
  description = "Release of the RabbitMQ Cluster Operator whose manifest (CRD `RabbitmqCluster`, operator Deployment) is applied; it has no Helm chart. Bump together with the vendored schema in xtask/schemas/."
  type        = string
  default     = "2.17.0"
}

variable "rabbitmq_topology_operator_version" {
  description = "Release of the RabbitMQ Messaging Topology Operator whose manifest (CRDs `User`, `Permission`, operator Deployment, webhook certificate from cert-manager) is applied; it has no Helm chart. Bump together with the vendored schemas in xtask/schemas/."
  type        = string
  default     = "1.17.4"
}

variable "keda_chart_version" {
  description = "Version of the keda chart (KEDA, CRDs `ScaledObject`/`TriggerAuthentication`: the consumers scale on their queue backlog)."
  type        = string
  default     = "2.16.0"
}

variable "redis_ha" {
  description = "Install Redis with replication and Sentinel failover (the redis-ha chart, namespace `redis`), which the cloud overlay's services use. Off: the overlay's own single Redis (local)."
  type        = bool
  default     = false
}

variable "redis_ha_chart_version" {
  description = "Version of the redis-ha chart (three Redis pods with Sentinel, HAProxy in front of the master)."
  type        = string
  default     = "4.27.7"
}

variable "redis_ha_storage_size" {
  description = "Persistent volume size of each Redis pod of the redis-ha release."
  type        = string
  default     = "2Gi"
}

variable "loki_chart_version" {
  description = "Version of the loki chart (single-binary Loki, the services' logs over OTLP)."
  type        = string
  default     = "6.29.0"
}

variable "loki_storage_size" {
  description = "Persistent volume size of Loki's single binary (chunks and index on its filesystem)."
  type        = string
  default     = "10Gi"
}

variable "traces_query_url" {
  description = "Query URL of the trace backend behind traces_otlp_endpoint (e.g. Jaeger's http://jaeger-query.tracing:16686), added to Grafana as datasource uid `jaeger` so log lines link to their traces. Empty: no trace datasource (the links have nowhere to go)."
  type        = string
  default     = ""
}
