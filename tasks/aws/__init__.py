"""The cluster's AWS account: security groups, instances, their metadata options, the hub's DNS records, its
instance role, and EFS's automatic backups of the homes."""
