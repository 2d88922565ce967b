"""The Docker engine: installed, enabled, running, the login user in its group."""

import shlex

from .core import facts, step
from .core.services import ensure_service
from .packages import APT, DNF, ensure_packages, package_probes

DOCKER_PACKAGES = {APT: ["docker.io"], DNF: ["docker"]}


def groups_fact(user):
    return facts.Fact(f"groups:{user}", f"id -nG {shlex.quote(user)}", parse=facts.words)


def ensure_in_group(host, user, group):
    if group in host.fact(groups_fact(user)):
        return False
    return host.ensure(f"add {user} to group {group}", f"usermod -aG {shlex.quote(group)} {shlex.quote(user)}")


def docker_probes(host):
    return [
        *package_probes(DOCKER_PACKAGES)(host),
        facts.systemd_unit("docker"),
        groups_fact(host.connection.user),
    ]


@step("install-docker", probes=docker_probes)
def install_docker(host):
    """Install the Docker engine, enable and start it, and add the login user to the docker group."""
    ensure_packages(host, DOCKER_PACKAGES)
    ensure_service(host, "docker")
    ensure_in_group(host, host.connection.user, "docker")
