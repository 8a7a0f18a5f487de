output "name" {
  description = "Cluster name."
  value       = aws_eks_cluster.this.name
}

output "endpoint" {
  description = "API server URL."
  value       = aws_eks_cluster.this.endpoint
}

output "certificate_authority_data" {
  description = "Base64 CA certificate of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "registry" {
  description = "ECR registry host: images are <registry>/ferroshop/<service>:<tag>."
  value       = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.name}.amazonaws.com"
}

output "repository_urls" {
  description = "Repository URL per service."
  value       = { for service, repository in aws_ecr_repository.service : service => repository.repository_url }
}

output "ready" {
  description = "Ids to depend on: the cluster has nodes, DNS and a default StorageClass."
  value       = [aws_eks_node_group.default.id, aws_eks_addon.coredns.id, aws_eks_addon.ebs_csi.id, aws_eks_addon.vpc_cni.id]
}
