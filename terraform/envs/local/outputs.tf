output "kubectl_context" {
  description = "kubectl context of the cluster."
  value       = "kind-${module.cluster.name}"
}

output "grafana" {
  description = "How to open Grafana (user admin, password: terraform output -raw grafana_admin_password)."
  value       = "kubectl --context kind-${module.cluster.name} -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80"
}

output "grafana_admin_password" {
  description = "Password of Grafana's admin user."
  value       = module.platform.grafana_admin_password
  sensitive   = true
}

output "kubernetes_objects" {
  description = "Number of Ferroshop objects applied."
  value       = module.app.resources
}
