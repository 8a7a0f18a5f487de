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
    jsonencode([for resource in kustomization_resource.rabbitmq_topology_operator_p1 : resource.id]),
    jsonencode([for resource in kustomization_resource.rabbitmq_topology_operator_p2 : resource.id]),
    jsonencode(helm_release.redis_ha[*].id),
  ]
}

output "redis_passwords" {
  description = "Password of each Redis ACL user (`inventory`, `gateway`), for the services' Secrets."
  value       = { for user, password in random_password.redis : user => password.result }
  sensitive   = true
}

output "redis_acl_users" {
  description = "The ACL file lines of the Redis users (`user <name> on #<sha256> <rules>`), without `default`."
  value       = local.redis_acl_users
  sensitive   = true
}
