"""What every node of the cluster gets: system packages, Docker, security updates, the notebook fence, the shared storage, the notebook image."""
