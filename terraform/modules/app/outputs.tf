output "namespace" {
  description = "Namespace of the application."
  value       = "ferroshop"
}

output "resources" {
  description = "Number of Kubernetes objects applied."
  value       = length(data.kustomization_overlay.ferroshop.ids) + 2 # and the two generated Secrets
}
