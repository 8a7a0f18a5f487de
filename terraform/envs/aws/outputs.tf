output "cluster_name" {
  description = "EKS cluster name."
  value       = module.cluster.name
}

output "kubeconfig_command" {
  description = "Adds the cluster to your kubeconfig."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.cluster.name}"
}

output "registry" {
  description = "ECR registry: push ferroshop/<service>:<image_tag> here."
  value       = module.cluster.registry
}

output "repository_urls" {
  description = "ECR repository per service."
  value       = module.cluster.repository_urls
}

output "grafana_admin_password" {
  description = "Password of Grafana's admin user."
  value       = module.platform.grafana_admin_password
  sensitive   = true
}
