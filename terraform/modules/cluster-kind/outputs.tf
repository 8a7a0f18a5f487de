output "name" {
  description = "Cluster name."
  value       = kind_cluster.this.name
}

output "kubeconfig" {
  description = "Kubeconfig of the new cluster."
  value       = kind_cluster.this.kubeconfig
  sensitive   = true
}

output "endpoint" {
  description = "API server URL."
  value       = kind_cluster.this.endpoint
}

output "client_certificate" {
  description = "Client certificate (PEM) of the cluster admin."
  value       = kind_cluster.this.client_certificate
  sensitive   = true
}

output "client_key" {
  description = "Client key (PEM) of the cluster admin."
  value       = kind_cluster.this.client_key
  sensitive   = true
}

output "cluster_ca_certificate" {
  description = "CA certificate (PEM) of the API server."
  value       = kind_cluster.this.cluster_ca_certificate
}

output "images_loaded" {
  description = "Ids of the image-loading step, for ordering the app after it."
  value       = terraform_data.load_images[*].id
}
