"""The swarm labels the hub and the deploy tool both name."""

# On a notebook service: the user it belongs to.
USER_LABEL = "hubswarm.user"
# On a node: it takes notebooks ("true").
NOTEBOOK_LABEL = "hubswarm.notebooks"
# Where swarm may place a notebook.
PLACEMENT = f"node.labels.{NOTEBOOK_LABEL} == true"
