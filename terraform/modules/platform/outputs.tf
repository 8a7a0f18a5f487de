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
    helm_release.metrics_server.id,
    helm_release.keda.id,
    helm_release.loki.id,
    # The operator's Deployment (p1, waited for) and its webhooks.
    jsonencode([for resource in kustomization_resource.rabbitmq_cluster_operator_p1 : resource.id]),
    jsonencode([for resource in kustomization_resource.rabbitmq_cluster_operator_p2 : resource.id]),
    jsonencode(helm_release.redis_ha[*].id),
  ]
}
