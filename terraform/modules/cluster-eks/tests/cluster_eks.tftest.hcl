# `terraform test` for the EKS module with a mocked AWS provider: nothing is created, no
# credentials are needed. It checks the module's decisions, not AWS itself:
# private nodes, an API endpoint closed unless CIDRs are given (never 0.0.0.0/0), encrypted
# Secrets, NetworkPolicy enforcement, one immutable image repository per service.

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]
    }
  }
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_data "aws_eks_addon_version" {
    defaults = {
      version = "v1.0.0-eksbuild.1"
    }
  }
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/mocked"
    }
  }
  mock_resource "aws_eks_cluster" {
    defaults = {
      certificate_authority = [{ data = "bW9ja2VkLWNh" }]
    }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mocked"
    }
  }
}

variables {
  services = ["users", "inventory", "orders", "payments"]
}

run "private_api_and_nodes_by_default" {
  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access == false
    error_message = "Without api_public_access_cidrs the API endpoint must be private."
  }
  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access == true
    error_message = "The nodes reach the API through the private endpoint."
  }
  assert {
    condition     = toset(aws_eks_node_group.default.subnet_ids) == toset(aws_subnet.private[*].id)
    error_message = "Nodes must run in the private subnets only."
  }
  assert {
    condition     = length(distinct(aws_subnet.private[*].availability_zone)) == 3
    error_message = "The private subnets must span three availability zones."
  }
  assert {
    condition     = length(distinct(concat(aws_subnet.public[*].cidr_block, aws_subnet.private[*].cidr_block))) == 6
    error_message = "Subnet CIDRs must not collide."
  }
}

run "secrets_logs_and_network_policy" {
  assert {
    condition     = contains(aws_eks_cluster.this.encryption_config[0].resources, "secrets")
    error_message = "Kubernetes Secrets must be envelope-encrypted with the module's KMS key."
  }
  assert {
    condition     = contains(aws_eks_cluster.this.enabled_cluster_log_types, "audit")
    error_message = "The audit log must be enabled."
  }
  assert {
    condition     = jsondecode(aws_eks_addon.vpc_cni.configuration_values).enableNetworkPolicy == "true"
    error_message = "The VPC CNI must enforce NetworkPolicy (k8s/ relies on default deny)."
  }
  assert {
    condition     = jsondecode(aws_eks_addon.ebs_csi.configuration_values).defaultStorageClass.enabled == true
    error_message = "PersistentVolumeClaims without a class need a default StorageClass."
  }
}

run "one_immutable_repository_per_service" {
  assert {
    condition     = toset([for repository in aws_ecr_repository.service : repository.name]) == toset(["ferroshop/users", "ferroshop/inventory", "ferroshop/orders", "ferroshop/payments"])
    error_message = "Every service needs its repository ferroshop/<service>."
  }
  assert {
    condition     = alltrue([for repository in aws_ecr_repository.service : repository.image_tag_mutability == "IMMUTABLE" && repository.image_scanning_configuration[0].scan_on_push])
    error_message = "Repositories must have immutable tags and scan on push."
  }
  assert {
    condition     = output.registry == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    error_message = "The registry host is derived from the account and region."
  }
}

run "public_endpoint_only_for_listed_addresses" {
  variables {
    api_public_access_cidrs = ["203.0.113.0/24"]
  }
  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access == true
    error_message = "Listing CIDRs opens the public endpoint."
  }
  assert {
    condition     = toset(aws_eks_cluster.this.vpc_config[0].public_access_cidrs) == toset(["203.0.113.0/24"])
    error_message = "The public endpoint is limited to the listed CIDRs."
  }
}

run "the_whole_internet_is_refused" {
  command = plan
  variables {
    api_public_access_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.api_public_access_cidrs]
}
