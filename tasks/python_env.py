"""The hub's virtualenv with pinned JupyterHub, OAuthenticator, DockerSpawner and the idle culler."""

import json
import shlex

from . import pins
from .core import facts, step

# Prints {"name": "version"} of every pinned distribution found in the venv.
INSTALLED_SCRIPT = (
    "import importlib.metadata as m, json, sys\n"
    "found = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try: found[name] = m.version(name)\n"
    "    except m.PackageNotFoundError: pass\n"
    "print(json.dumps(found))\n"
)


def installed_fact(venv):
    names = " ".join(shlex.quote(n) for n in sorted(pins.HUB_REQUIREMENTS))
    return facts.command_output(
        f"venv:{venv}",
        f"{shlex.quote(venv)}/bin/python -c {shlex.quote(INSTALLED_SCRIPT)} {names}",
    )


def venv_commands(venv, answer):
    """Commands that make the venv match the pins, or "" when it does."""
    installed = json.loads(answer.text) if answer.ok and answer.text else None
    if installed == pins.HUB_REQUIREMENTS:
        return ""
    requirements = " ".join(shlex.quote(f"{n}=={v}") for n, v in sorted(pins.HUB_REQUIREMENTS.items()))
    create = f"python3 -m venv {shlex.quote(venv)} && " if installed is None else ""
    # pip trusts the system CA store too (TLS-inspecting proxies, private mirrors).
    return (
        "for b in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do "
        '[ -f "$b" ] && export PIP_CERT="$b" && break; done; '
        f"{create}{shlex.quote(venv)}/bin/pip install -q --disable-pip-version-check "
        f"{requirements}"
    )


@step("pip-install", probes=lambda host: [installed_fact(host.config.venv)])
def pip_install(host):
    """Create the hub virtualenv and install the pinned jupyterhub, oauthenticator, dockerspawner, idle culler."""
    venv = host.config.venv
    answer = host.fact(installed_fact(venv))
    host.ensure(
        f"install virtualenv {venv} with " + ", ".join(f"{n} {v}" for n, v in sorted(pins.HUB_REQUIREMENTS.items())),
        venv_commands(venv, answer),
    )
