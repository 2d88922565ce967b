"""The Docker engine: installed, enabled, running, its containers' logs rotated, the login user
in its group."""

import json
import shlex

from ..core import HubswarmError, facts, step
from ..core.services import ensure_service, fingerprint_command, inputs_fact, restart_plan
from .packages import APT, DNF, ensure_packages, family_of, install_commands, package_probes

DOCKER_PACKAGES = {APT: ["docker.io"], DNF: ["docker"]}
DOCKER_COMMAND = facts.Fact("command:docker", "command -v docker", parse=lambda answer: bool(answer.text))
# Debian 13 ships the docker command in a package of its own, which docker.io only recommends
# (and recommends are not installed): added when docker.io brought no docker command.
CLI_PACKAGE = "docker-cli"
CLI_SCRIPT = f"command -v docker >/dev/null || {{ {install_commands(APT, {CLI_PACKAGE}, lists_fresh=True)}; }}"


DAEMON_JSON = "/etc/docker/daemon.json"
# A notebook printing without end must not fill its node's disk: each container keeps at most
# 3 compressed files of 10 MB of log (Docker's "local" driver; `docker logs` still reads them).
LOG_SETTINGS = {"log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}}
# daemon.json's fingerprint when Docker last (re)started here: a change since asks for a restart.
DAEMON_STAMP = "/etc/docker/daemon.json.started"
DAEMON_SOURCES = f"cat {DAEMON_JSON}"
DAEMON_INPUTS = inputs_fact("docker", DAEMON_SOURCES, DAEMON_STAMP)
RUNNING_CONTAINERS = facts.Fact("containers-running", "docker ps -q", parse=facts.words)


def daemon_settings(current, path=DAEMON_JSON):
    """daemon.json's text with the log settings in, the rest of ``current`` (the file's text, ""
    when absent) kept as the operator wrote it."""
    try:
        settings = json.loads(current) if current.strip() else {}
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise HubswarmError(f"{path} is not a JSON object: fix it (or remove it) so its log settings can be added")
    return json.dumps({**settings, **LOG_SETTINGS}, indent=2, sort_keys=True) + "\n"


def ensure_log_settings(host):
    """The log settings in daemon.json, before Docker is installed or started: its start reads them."""
    current = host.fact(facts.file_content(DAEMON_JSON))  # ("" when there is none)
    host.ensure_dir("/etc/docker")
    # As bytes, so check mode shows its size, not its text: the operator's part may hold a proxy's password.
    wanted = daemon_settings(current).encode()
    if host.ensure_file(DAEMON_JSON, wanted) and not host.fact(facts.systemd_unit("docker")).running:
        host.ensure("record the settings Docker starts with", f"{fingerprint_command(DAEMON_SOURCES)} > {DAEMON_STAMP}")


def restart_for_settings(host):
    """Restart Docker when daemon.json changed since it last started, unless containers run on
    this node (a notebook would stop): then say so; a later, quiet run restarts it."""
    state = host.fact(facts.systemd_unit("docker"))
    if not state.running:  # (check mode, before the install: the start install-docker makes reads them)
        return
    changing = host.check and DAEMON_JSON in host.written
    what, command = restart_plan("docker", state, host.fact(DAEMON_INPUTS), DAEMON_SOURCES, DAEMON_STAMP, changing)
    if command and host.fact(RUNNING_CONTAINERS):
        host.note(f"leave Docker running: it reads {DAEMON_JSON} at its next restart, once no container runs here")
        return
    host.ensure(what, command)


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
        facts.file_state(DAEMON_JSON),
        facts.file_content(DAEMON_JSON),
        facts.dir_state("/etc/docker"),
        DAEMON_INPUTS,
    ]


def docker_preflight(host):
    """A daemon.json hubswarm cannot add to stops the run before any change."""
    daemon_settings(host.fact(facts.file_content(DAEMON_JSON)))


@step("install-docker", probes=docker_probes, preflight=docker_preflight)
def install_docker(host):
    """Install the Docker engine with its containers' logs rotated, enable and start it, and add the
    login user to the docker group."""
    ensure_log_settings(host)
    ensure_packages(host, DOCKER_PACKAGES)
    if family_of(host) == APT and not host.fact(DOCKER_COMMAND):
        host.ensure(f"install {CLI_PACKAGE} if docker.io brought no docker command", CLI_SCRIPT)
    ensure_service(host, "docker")
    restart_for_settings(host)
    ensure_in_group(host, host.connection.user, "docker")
