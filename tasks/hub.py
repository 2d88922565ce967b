"""The hub itself: its configuration and its systemd service."""

import shlex

from .auth import checked_authenticator
from .certs import hub_name, public_name_probes
from .core import HubswarmError, facts, render, step
from .core.services import ensure_service
from .python_env import PACKAGE_NAME, package_glob
from .swarm import NOTEBOOK_LABEL

UNIT = "/etc/systemd/system/jupyterhub.service"
HUB_WAIT_SECONDS = 120


def config_path(config):
    return f"{config.srv}/jupyterhub_config.py"


def inputs(config):
    """The files whose change means the running hub must restart."""
    srv = config.srv
    return [config_path(config), f"{srv}/env", f"{srv}/userlist", UNIT]


def render_hub_config(config, hub_ip, public_name):
    return render(
        "jupyterhub_config.py.j2",
        srv=config.srv,
        public_url=f"https://{public_name}/",
        hub_ip=hub_ip,
        authenticator=config.authenticator,
        image=config.image,
        homes_path=config.homes_path,
        mem_limit=config.mem_limit,
        placement=f"node.labels.{NOTEBOOK_LABEL} == true",
    )


@step(
    "hub-config",
    needs=checked_authenticator,
    probes=lambda host: [
        facts.addresses(),
        facts.file_state(config_path(host.config)),
        *public_name_probes(host),
    ],
)
def hub_config(host, _authenticator):
    """Render jupyterhub_config.py (authenticator, SwarmSpawner, idle culler, hub behind nginx) into /srv/jupyterhub."""
    config = host.config
    host.ensure_dir(config.srv, mode="700")
    host.ensure_file(
        config_path(config),
        render_hub_config(config, host.private_ip(), hub_name(host)),
        mode="600",
    )


def fingerprint_command(config):
    """Prints the sha256 of the hub's inputs as they are now."""
    files = " ".join(shlex.quote(p) for p in inputs(config))
    return f"cat {files} {package_glob(config)} 2>/dev/null | sha256sum | cut -d' ' -f1"


def stamp_path(config):
    """Where start-hub records the inputs' fingerprint at each (re)start."""
    return shlex.quote(f"{config.srv}/.running-inputs")


def fingerprint_fact(config):
    """The inputs' fingerprint now, then the one recorded at the hub's last (re)start."""
    return facts.Fact("hub-inputs", f"{fingerprint_command(config)}; cat {stamp_path(config)}", parse=facts.words)


def service_commands(unit, fingerprints, config, inputs_change=False):
    """start, or restart when an input changed since the last start (or, in check
    mode, ``inputs_change``: this run would write one), or "".

    ``unit``: the hub's :class:`~tasks.core.facts.UnitState`; ``fingerprints``:
    :func:`fingerprint_fact`'s [now, at the last start].
    """
    stale = inputs_change or len(fingerprints) < 2 or fingerprints[0] != fingerprints[1]
    record = f"{fingerprint_command(config)} > {stamp_path(config)}"
    if not unit.running:
        return "start jupyterhub", f"{record} && systemctl start jupyterhub"
    if stale:
        return "restart jupyterhub (its inputs changed)", f"{record} && systemctl restart jupyterhub"
    return "", ""


LOGIN_STATUS = "curl -sk -o /dev/null -w '%{http_code}' --max-time 5 https://127.0.0.1/hub/login"
HUB_ANSWERS = facts.Fact("hub-login-status", LOGIN_STATUS)


def wait_for_hub(host):
    script = f'for i in $(seq {HUB_WAIT_SECONDS}); do [ "$({LOGIN_STATUS})" = 200 ] && exit 0; sleep 1; done; exit 1'
    try:
        host.sudo(script, what="waiting for the hub")
    except HubswarmError:
        raise HubswarmError(
            f"the hub on {host.name} did not answer on /hub/login within {HUB_WAIT_SECONDS} s: "
            "see 'journalctl -u jupyterhub' there"
        ) from None


def start_probes(host):
    return [
        facts.file_state(UNIT),
        facts.systemd_unit("jupyterhub"),
        fingerprint_fact(host.config),
        HUB_ANSWERS,
        *public_name_probes(host),
    ]


@step("start-hub", probes=start_probes)
def start_hub(host):
    """Install the hub's systemd unit, enable and start it, restart it when its inputs changed, and wait until it answers."""
    config = host.config
    unit_changed = host.ensure_file(UNIT, render("jupyterhub.service.j2", srv=config.srv, venv=config.venv))
    if unit_changed:
        host.ensure("reload systemd", "systemctl daemon-reload")
    answers = host.facts(facts.systemd_unit("jupyterhub"), fingerprint_fact(config), HUB_ANSWERS)
    what, command = service_commands(
        answers[facts.systemd_unit("jupyterhub").key],
        answers[fingerprint_fact(config).key],
        config,
        # In check mode nothing was written, so the fingerprint cannot show it.
        inputs_change=host.check and bool(host.written & {*inputs(config), PACKAGE_NAME}),
    )
    changed = host.ensure(what, command)
    ensure_service(host, "jupyterhub", running=False)
    if host.check:
        return
    if changed or answers[HUB_ANSWERS.key] != "200":
        wait_for_hub(host)
    host.run.recap.say(f"[{host.name}] hub: https://{hub_name(host)}/")
