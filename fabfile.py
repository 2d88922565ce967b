"""hubswarm: JupyterHub on a Docker swarm of EC2 hosts, as idempotent Fabric tasks.

Run ``fab --list`` for the tasks and ``fab --help TASK`` for one of them.
Settings come from the environment, then a running lab's ``.lab/lab.env``,
then ``.env`` (see ``.env.example``); ``fabric.yaml`` overrides them all.
"""

import os
from pathlib import Path

from dotenv import load_dotenv
from invoke import Collection

HERE = Path(__file__).resolve().parent
# The environment wins, then a running lab's settings, then .env.
load_dotenv(HERE / ".lab" / "lab.env")
load_dotenv(HERE / ".env")

from tasks import lab, settings, workflows  # noqa: E402  (settings must be loaded first)

ns = Collection.from_module(workflows)
ns.add_collection(lab.ns)
ns.configure(settings.defaults(os.environ))
