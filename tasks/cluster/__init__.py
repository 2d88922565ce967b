"""The swarm: its model as the hub sees it, the hub as manager, the workers joined to it."""
