"""hubswarm's code that runs inside the hub: installed into the hub's virtualenv by
``hub-config`` and imported by ``jupyterhub_config.py``, which only assigns values.

It needs the standard library and what the hub's venv holds (JupyterHub,
DockerSpawner); the deploy tool imports :mod:`.usernames` too, so the user-name
rule is one function on both sides.
"""
