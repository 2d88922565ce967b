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

from tasks import lab, pins, workflows  # noqa: E402  (settings must be loaded first)


def env(name, default=""):
    return os.environ.get(name, default)


def flag(name):
    return env(name).lower() in ("1", "true", "yes", "on")


SSH_USER = env("HUBSWARM_SSH_USER")
SSH_KEY = env("HUBSWARM_SSH_KEY")

ns = Collection.from_module(workflows)
ns.add_collection(lab.ns)
ns.configure(
    {
        # stdin at EOF (CI, cron) must not break sudo; secrets go on stdin explicitly.
        "run": {"in_stream": False},
        # An unreachable host fails in seconds, not minutes.
        "timeouts": {"connect": 15},
        **({"user": SSH_USER} if SSH_USER else {}),
        **({"connect_kwargs": {"key_filename": [SSH_KEY]}} if SSH_KEY else {}),
        "hubswarm": {
            "cluster": env("HUBSWARM_CLUSTER", "hubswarm"),
            "region": env("AWS_DEFAULT_REGION") or env("AWS_REGION") or "us-west-2",
            # The lab's fake credentials must not meet a real profile.
            "profile": "" if flag("HUBSWARM_LAB") else env("AWS_PROFILE"),
            # EC2 tags: {cluster_key: cluster} and {role_key: hub or worker value}.
            "tags": {
                "cluster_key": env("HUBSWARM_TAG_CLUSTER", "hubswarm:cluster"),
                "role_key": env("HUBSWARM_TAG_ROLE", "hubswarm:role"),
                "hub": "hub",
                "worker": "worker",
            },
            # private (default), public or dns: how hosts are reached over SSH.
            "address": env("HUBSWARM_ADDRESS", "private"),
            # Reach workers through the hub (workers without a public address).
            "gateway": flag("HUBSWARM_GATEWAY"),
            "ssh": {
                "known_hosts": env("HUBSWARM_KNOWN_HOSTS", str(Path.home() / ".ssh" / "known_hosts")),
                "accept_new_host_keys": flag("HUBSWARM_ACCEPT_NEW_HOST_KEYS"),
            },
            "check": flag("HUBSWARM_CHECK"),
            "lab": flag("HUBSWARM_LAB"),
            "domain": env("HUBSWARM_DOMAIN"),
            "authenticator": env("HUBSWARM_AUTHENTICATOR", "password" if flag("HUBSWARM_LAB") else "google"),
            "userlist": env("HUBSWARM_USERLIST", str(HERE / "userlist")),
            "srv": "/srv/jupyterhub",
            "venv": "/opt/jupyterhub",
            "image": env("HUBSWARM_IMAGE", f"hubswarm/singleuser:{pins.JUPYTERHUB}"),
            "mem_limit": env("HUBSWARM_MEM_LIMIT", "2G"),
            # push: build files/singleuser here and stream it to nodes; pull: from a registry.
            "image_source": env("HUBSWARM_IMAGE_SOURCE", "pull"),
            "image_base": env("HUBSWARM_IMAGE_BASE", "debian:bookworm-slim"),
            "hub_takes_notebooks": flag("HUBSWARM_HUB_TAKES_NOTEBOOKS"),
            "homes_path": env("HUBSWARM_HOMES_PATH", "/mnt/nfs/home"),
            # EFS DNS name or IP mounted at homes_path on every node; "none": homes on the hub only.
            "efs": env("HUBSWARM_EFS"),
            "notebooks": env("HUBSWARM_NOTEBOOKS", str(HERE / "notebooks")),
            "letsencrypt_live": "",
            # fab security-groups / fab launch: the cluster's VPC (else the subnet's, else the
            # default VPC) and the instances launch starts.
            "vpc_id": env("HUBSWARM_VPC_ID"),
            "subnet_id": env("HUBSWARM_SUBNET_ID"),
            "ami": env("HUBSWARM_AMI"),
            "instance_type": env("HUBSWARM_INSTANCE_TYPE", "t3.medium"),
            "key_name": env("HUBSWARM_KEY_NAME"),
            # Seconds launch waits for new instances to run and answer on port 22.
            "launch_timeout": env("HUBSWARM_LAUNCH_TIMEOUT", "600"),
        },
    }
)
