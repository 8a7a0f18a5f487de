output "monitoring_namespace" {
  description = "Namespace of Prometheus, Grafana and the collector gateway."
  value       = var.monitoring_namespace
}

output "grafana_admin_password" {
  description = "Password of Grafana's `admin` user."
  value       = random_password.grafana_admin.result
  sensitive   = true
}

output "ready" {
  description = "Release ids; depend on this to order the app after the platform (CRDs installed)."
  value = [
    helm_release.cloudnative_pg.id,
    helm_release.cert_manager.id,
    helm_release.kube_prometheus_stack.id,
    helm_release.otel_gateway.id,
  ]
}
