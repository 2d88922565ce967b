"""hubswarm tasks, in folders that each import only from those before them: core, settings,
cli, node, hub, cluster, aws, ops (and the hub-side package hubswarm_hub; the lab apart)."""
