# An EKS cluster for Ferroshop with the hashicorp/aws provider only (no community modules):
#
#   network.tf  VPC over three zones, public/private subnets, NAT, flow logs
#   kms.tf      one customer-managed key (Secrets in etcd, logs, images)
#   eks.tf      control plane (private endpoint, optional public one limited by CIDR, audit
#               logs), managed node group, add-ons (VPC CNI with NetworkPolicy enforcement,
#               CoreDNS, kube-proxy, EBS CSI driver with a default gp3 StorageClass)
#   ecr.tf      one image repository per service
#
# The provider (region, credentials) is configured by the root (terraform/envs/aws).
