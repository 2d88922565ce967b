"""The swarm labels the hub and the deploy tool both name."""

# On a notebook service: the user it belongs to.
USER_LABEL = "hubswarm.user"
# On a node: it takes notebooks ("true").
NOTEBOOK_LABEL = "hubswarm.notebooks"
# On a node: its homes storage is missing (files/hubswarm-homes-labels sets it and takes it off).
NO_HOMES_LABEL = "hubswarm.no-homes"
# Where swarm may place a notebook: a node that takes notebooks, its homes storage there.
PLACEMENT = [f"node.labels.{NOTEBOOK_LABEL} == true", f"node.labels.{NO_HOMES_LABEL} != true"]
