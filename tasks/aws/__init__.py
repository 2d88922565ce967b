"""The cluster's AWS account: security groups, instances, their metadata options, the hub's DNS records."""
