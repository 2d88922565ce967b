"""hubswarm's code that runs inside the hub: installed into the hub's virtualenv by
``pip-install``; ``jupyterhub_config.py`` applies :mod:`.config` (the hub's configuration)
to the values ``hub-config`` writes beside it.

It needs the standard library and what the hub's venv holds (JupyterHub,
DockerSpawner); the deploy tool imports :mod:`.usernames` too, so the user-name
rule is one function on both sides.
"""
