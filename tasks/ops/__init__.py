"""The commands of a whole cluster and of a term: deploy, status, scale, backup and restore."""
