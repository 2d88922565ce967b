"""The Docker engine: installed, enabled, running, the login user in its group."""

import shlex

from ..core import facts, step
from ..core.services import ensure_service
from .packages import APT, DNF, ensure_packages, family_of, install_commands, package_probes

DOCKER_PACKAGES = {APT: ["docker.io"], DNF: ["docker"]}
DOCKER_COMMAND = facts.Fact("command:docker", "command -v docker", parse=lambda answer: bool(answer.text))
# Debian 13 ships the docker command in a package of its own, which docker.io only recommends
# (and recommends are not installed): added when docker.io brought no docker command.
CLI_PACKAGE = "docker-cli"
CLI_SCRIPT = f"command -v docker >/dev/null || {{ {install_commands(APT, {CLI_PACKAGE}, lists_fresh=True)}; }}"


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
        DOCKER_COMMAND,
    ]


@step("install-docker", probes=docker_probes)
def install_docker(host):
    """Install the Docker engine, enable and start it, and add the login user to the docker group."""
    ensure_packages(host, DOCKER_PACKAGES)
    if family_of(host) == APT and not host.fact(DOCKER_COMMAND):
        host.ensure(f"install {CLI_PACKAGE} if docker.io brought no docker command", CLI_SCRIPT)
    ensure_service(host, "docker")
    ensure_in_group(host, host.connection.user, "docker")
