"""Settings: every default in one place, read from an environment mapping.

``fabfile.py`` passes ``os.environ`` (after loading ``.env`` and a running lab's
settings); tests pass a plain dict, so they see exactly these defaults.
"""

from pathlib import Path

from . import pins

PROJECT = Path(__file__).resolve().parents[1]
TRUE_WORDS = ("1", "true", "yes", "on")


def defaults(environ):
    """The collection configuration for ``environ`` (a mapping of variables)."""

    def env(name, default=""):
        return environ.get(name, default)

    def flag(name):
        return env(name).lower() in TRUE_WORDS

    ssh_user, ssh_key = env("HUBSWARM_SSH_USER"), env("HUBSWARM_SSH_KEY")
    return {
            # stdin at EOF (CI, cron) must not break sudo; secrets go on stdin explicitly.
            "run": {"in_stream": False},
            # An unreachable host fails in seconds, not minutes.
            "timeouts": {"connect": 15},
            **({"user": ssh_user} if ssh_user else {}),
            **({"connect_kwargs": {"key_filename": [ssh_key]}} if ssh_key else {}),
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
                "userlist": env("HUBSWARM_USERLIST", str(PROJECT / "userlist")),
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
                "notebooks": env("HUBSWARM_NOTEBOOKS", str(PROJECT / "notebooks")),
                # letsencrypt: the hub's domain (HUBSWARM_DOMAIN) and these extra names, from an ACME server.
            "letsencrypt_domains": env("HUBSWARM_LETSENCRYPT_DOMAINS"),
            "letsencrypt_email": env("HUBSWARM_LETSENCRYPT_EMAIL"),
            "acme_server": env("HUBSWARM_ACME_SERVER", "https://acme-v02.api.letsencrypt.org/directory"),
            # A local CA file the hub must trust to talk to the ACME server (test servers only).
            "acme_ca_bundle": env("HUBSWARM_ACME_CA_BUNDLE"),
            # Optional static site served on another name (the original's bare domain).
            "static_domain": env("HUBSWARM_STATIC_DOMAIN"),
            "static_root": env("HUBSWARM_STATIC_ROOT", "/data/www"),
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
