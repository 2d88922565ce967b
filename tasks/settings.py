"""Settings: every default in one place, read from an environment mapping.

``fabfile.py`` passes ``os.environ`` (after :func:`load_environment`); tests
pass a plain dict, so they see exactly these defaults. Values come out
normalised (see :mod:`tasks.validate`), and ``core.run.configure`` checks them
all before any task touches a host.
"""

import os
from pathlib import Path

from dotenv import dotenv_values, load_dotenv

from . import pins, validate

PROJECT = Path(__file__).resolve().parents[1]


def load_environment(project=PROJECT, environ=os.environ):
    """Load a running lab's ``.lab/lab.env``, then ``.env``, under what ``environ`` has.

    ``HUBSWARM_LAB=0`` (in the environment or ``.env``) ignores the lab. Returns
    the lab's env file when it was loaded, else None.
    """
    lab_env, dot_env = Path(project) / ".lab" / "lab.env", Path(project) / ".env"
    wanted = environ.get("HUBSWARM_LAB")
    if wanted is None and dot_env.is_file():
        wanted = dotenv_values(dot_env).get("HUBSWARM_LAB")
    ignored = bool((wanted or "").strip()) and validate.as_flag(wanted) is False
    use_lab = lab_env.is_file() and not ignored
    if use_lab:
        _load(lab_env, environ)
    _load(dot_env, environ)
    return lab_env if use_lab else None


def _load(path, environ):
    if environ is os.environ:
        load_dotenv(path)
    else:  # a test's mapping: the same rule, the environment wins
        for key, value in dotenv_values(path).items():
            environ.setdefault(key, value or "")


def defaults(environ):
    """The collection configuration for ``environ`` (a mapping of variables)."""

    def env(name, default=""):
        return environ.get(name, default)

    def flag(name, default=False):
        """True or False (``default`` when unset or blank); a word that is neither stays
        as it is, for validate to name."""
        value = env(name)
        if not str(value).strip():
            return default
        parsed = validate.as_flag(value)
        return value if parsed is None else parsed

    lab = flag("HUBSWARM_LAB") is True
    ssh_user, ssh_key = env("HUBSWARM_SSH_USER"), validate.home_path(env("HUBSWARM_SSH_KEY"))
    config = {
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
            "profile": "" if lab else env("AWS_PROFILE"),
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
                "user": ssh_user,
                "key": ssh_key,
                "known_hosts": env("HUBSWARM_KNOWN_HOSTS", str(Path.home() / ".ssh" / "known_hosts")),
                "accept_new_host_keys": flag("HUBSWARM_ACCEPT_NEW_HOST_KEYS"),
            },
            "check": flag("HUBSWARM_CHECK"),
            "lab": flag("HUBSWARM_LAB"),
            # Set by a running lab's lab.env: only its hosts may be targets then.
            "lab_subnet": env("HUBSWARM_LAB_SUBNET"),
            "domain": env("HUBSWARM_DOMAIN"),
            "authenticator": env("HUBSWARM_AUTHENTICATOR", "password" if lab else "google"),
            "userlist": env("HUBSWARM_USERLIST", str(PROJECT / "userlist")),
            "srv": "/srv/jupyterhub",
            "venv": "/opt/jupyterhub",
            "image": env("HUBSWARM_IMAGE", f"hubswarm/singleuser:{pins.JUPYTERHUB}"),
            "mem_limit": env("HUBSWARM_MEM_LIMIT", "2G"),
            # Guarantees swarm places by (a notebook goes only where they still fit), limits,
            # and the most processes a notebook may run. 0: none; no memory guarantee set:
            # half the memory limit.
            "mem_guarantee": env("HUBSWARM_MEM_GUARANTEE"),
            "cpu_limit": env("HUBSWARM_CPU_LIMIT", "0"),
            "cpu_guarantee": env("HUBSWARM_CPU_GUARANTEE", "0"),
            "pids_limit": env("HUBSWARM_PIDS_LIMIT", "1024"),
            # push: build files/singleuser here and stream it to nodes; pull: from a registry.
            "image_source": env("HUBSWARM_IMAGE_SOURCE", "pull"),
            # Pull mode: "missing" pulls where a node lacks the image; "always" asks the
            # registry on every run whether the tag moved (a digest reference never moves).
            "image_pull": env("HUBSWARM_IMAGE_PULL", "missing"),
            "image_base": env("HUBSWARM_IMAGE_BASE", "debian:bookworm-slim"),
            "hub_takes_notebooks": flag("HUBSWARM_HUB_TAKES_NOTEBOOKS"),
            # What notebooks reach beyond the hub's API: internet, none, or IPv4 networks.
            "notebook_egress": env("HUBSWARM_NOTEBOOK_EGRESS", "internet"),
            # Every node installs security updates on its own (never a reboot, never Docker);
            # off: no automatic upgrade on any node.
            "security_updates": flag("HUBSWARM_SECURITY_UPDATES", default=True),
            "homes_path": env("HUBSWARM_HOMES_PATH", "/mnt/nfs/home"),
            # EFS DNS name or IP mounted at homes_path on every node; "none": homes on the hub only.
            "efs": env("HUBSWARM_EFS"),
            "notebooks": env("HUBSWARM_NOTEBOOKS", str(PROJECT / "notebooks")),
            # The operator's own hub settings: *.py files loaded after the generated config.
            "config_d": env("HUBSWARM_CONFIG_D", str(PROJECT / "jupyterhub_config.d")),
            # Servers idle this long are stopped; servers this old too (0: no age limit).
            "cull_idle": env("HUBSWARM_CULL_IDLE", "3600"),
            "cull_max_age": env("HUBSWARM_CULL_MAX_AGE", "0"),
            # Spawns at once, and servers running at once (0: no limit).
            "concurrent_spawn_limit": env("HUBSWARM_CONCURRENT_SPAWN_LIMIT", "100"),
            "active_server_limit": env("HUBSWARM_ACTIVE_SERVER_LIMIT", "0"),
            "named_servers": flag("HUBSWARM_NAMED_SERVERS"),
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
    validate.normalise(config["hubswarm"])
    return config
