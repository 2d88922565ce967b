"""The hub itself: its configuration and its systemd service."""

import io
import json
import shlex
from pathlib import Path

from ..core import HubswarmError, facts, render, step
from ..core.archives import folder_archive, manifest_fact, unpack_script
from ..core.services import ensure_service, inputs_fact, restart_plan
from ..core.templates import file_text
from ..hubswarm_hub.labels import PLACEMENT
from ..node import storage
from ..settings import profiles
from ..settings.kinds import memory_bytes
from . import proxy
from .auth import checked_authenticator
from .certs import hub_name, public_name_probes
from .python_env import package_glob, version_command
from .records import subdomain_probes, subdomains_point_at_the_hub

UNIT = "/etc/systemd/system/jupyterhub.service"
HUB_WAIT_SECONDS = 120


def config_path(config):
    return f"{config.srv}/jupyterhub_config.py"


def values_path(config):
    """Where hub-config writes the values jupyterhub_config.py reads (beside it)."""
    return f"{config.srv}/hubswarm.json"


def config_d_path(config):
    """Where the operator's own settings go on the hub (loaded after hubswarm's)."""
    return f"{config.srv}/jupyterhub_config.d"


def read_config_d(config):
    """(manifest, tar) of the local config.d's *.py files, each compiled here first: a
    syntax error stops the run before any host is touched. No folder: no files."""
    folder = Path(config.config_d)
    files = {p.name: p for p in sorted(folder.glob("*.py"))} if folder.is_dir() else {}
    for path in files.values():
        try:
            compile(path.read_bytes(), str(path), "exec")
        except SyntaxError as exc:
            raise HubswarmError(f"{path} line {exc.lineno}: {exc.msg}: fix it (HUBSWARM_CONFIG_D)") from None
        except ValueError as exc:
            raise HubswarmError(f"{path}: {exc}: fix it (HUBSWARM_CONFIG_D)") from None
    return folder_archive(files, prefix="./")


def hub_config_needs(config):
    return checked_authenticator(config), read_config_d(config)


def inputs(config):
    """The files whose change means the running hub must restart."""
    srv = config.srv
    return [config_path(config), values_path(config), f"{srv}/env", f"{srv}/userlist", proxy.token_path(config), UNIT]


def mem_guarantee(settings):
    """The memory each notebook is guaranteed: the setting, or half the limit; None for none.
    ``settings``: the cluster's, or a profile's."""
    if settings["mem_guarantee"] in ("", None):  # not set
        return int(memory_bytes(settings["mem_limit"]) // 2)
    return settings["mem_guarantee"] if memory_bytes(settings["mem_guarantee"]) else None


def resources(settings):
    """What a notebook may use, as the hub takes it, from ``settings``: the cluster's, or a profile's."""
    return {
        "mem_limit": settings["mem_limit"],
        "mem_guarantee": mem_guarantee(settings),
        "cpu_limit": float(settings["cpu_limit"]) or None,
        "cpu_guarantee": float(settings["cpu_guarantee"]) or None,
    }


def hub_values(config, hub_ip, public_name):
    """What the hub's configuration (hubswarm_hub.config) reads from hubswarm.json: the
    settings, as the hub takes them, and the hub's addresses. Secrets stay in the env file."""
    return {
        "srv": config.srv,
        "public_url": f"https://{public_name}/",
        "subdomain_host": "" if config.single_origin else f"https://{public_name}",
        "hub_ip": hub_ip,
        "proxy_api_url": proxy.API_URL,
        "authenticator": config.authenticator,
        "image": config.image,
        "placement": PLACEMENT,
        "homes_path": config.homes_path,
        "named_servers": bool(config.named_servers),
        "named_server_limit": int(config.named_server_limit),
        **resources(config),
        "pids_limit": int(config.pids_limit),
        "concurrent_spawn_limit": int(config.concurrent_spawn_limit),
        "active_server_limit": int(config.active_server_limit),
        "cull_idle": int(config.cull_idle),
        "cull_max_age": int(config.cull_max_age),
        "profiles": [{**profile, **resources(profile)} for profile in profiles.resolved(config)],
        "course_id": config.course_id,
    }


def values_text(values):
    """hubswarm.json's text: a value a line, so check mode's diff shows which one changes."""
    return json.dumps(values, indent=2) + "\n"


@step(
    "hub-config",
    needs=hub_config_needs,
    probes=lambda host: [
        facts.addresses(),
        facts.file_state(config_path(host.config)),
        facts.file_state(values_path(host.config)),
        manifest_fact(config_d_path(host.config)),
        *public_name_probes(host),
        *subdomain_probes(host),
    ],
    preflight=subdomains_point_at_the_hub,
)
def hub_config(host, needed):
    """Write jupyterhub_config.py into /srv/jupyterhub with the values it reads (hubswarm.json: authenticator, SwarmSpawner, limits, idle culler, hub behind nginx), and the operator's jupyterhub_config.d/*.py beside it."""
    config = host.config
    _, (manifest, tar) = needed
    host.ensure_dir(config.srv, mode="700")
    host.ensure_file(config_path(config), file_text("jupyterhub_config.py"), mode="600")
    values = hub_values(config, host.private_ip(), hub_name(host))
    host.ensure_file(values_path(config), values_text(values), mode="600")
    folder = config_d_path(config)
    if host.fact(manifest_fact(folder)) != manifest:
        host.written.add(folder)
        host.ensure(
            f"upload the settings of {config.config_d} to {folder}",
            unpack_script(folder),
            stdin=lambda: io.BytesIO(tar),
        )


def sources(config):
    """What the running hub was started from: its inputs, its hub-side package, and the
    versions in its venv (a pin bump of any of them restarts it)."""
    venv = shlex.quote(config.venv)
    return (
        f"cat {' '.join(shlex.quote(p) for p in inputs(config))} {package_glob(config)} "
        f"{shlex.quote(config_d_path(config))}/*.py; "
        f"ls -d {venv}/lib/python3*/site-packages/*.dist-info"
    )


def stamp(config):
    """Where start-hub records the inputs' fingerprint at each (re)start."""
    return f"{config.srv}/.running-inputs"


def hub_inputs(config):
    return inputs_fact("jupyterhub", sources(config), stamp(config))


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


# The JupyterHub version that last opened the database, in the hub's folder: the unit upgrades
# the database before a start when the version differs (an upgrade, a restored archive).
DB_VERSION = ".db-version"


def render_unit(config):
    return render(
        "jupyterhub.service.j2",
        srv=config.srv,
        venv=config.venv,
        version=version_command(config.venv),
        homes=config.homes_path,
        proxy=proxy.SERVICE,
        db_version=DB_VERSION,
        marker=storage.HOMES_MARKER,
    )


def start_probes(host):
    return [
        facts.file_state(UNIT),
        facts.systemd_unit("jupyterhub"),
        hub_inputs(host.config),
        HUB_ANSWERS,
        *proxy.proxy_probes(host),
        *public_name_probes(host),
        *storage.marker_probes(host),
    ]


@step("start-hub", probes=start_probes)
def start_hub(host):
    """Install and start the proxy's and the hub's systemd services; restart the hub when its inputs changed (users' servers keep running) and wait until it answers."""
    config = host.config
    was = host.fact(facts.systemd_unit("jupyterhub"))
    # Before the proxy had a service of its own, the running hub ran it, on the port
    # the service needs: that hub stops once (its users' servers with it).
    moving = was.running and not host.fact(facts.file_state(proxy.UNIT))
    # The hub's unit starts it only on the marked homes storage: a hub set up before the mark
    # gets it here, or it would not start again.
    storage.mark_homes(host)
    units_changed = proxy.ensure_proxy(host)
    units_changed |= host.ensure_file(UNIT, render_unit(config))
    if units_changed:
        host.ensure("reload systemd", "systemctl daemon-reload")
    if moving:
        host.ensure("stop jupyterhub, which ran the proxy itself (once)", "systemctl stop jupyterhub")
    proxy.start_proxy(host)
    unit, fingerprints, login_status = host.facts(facts.systemd_unit("jupyterhub"), hub_inputs(config), HUB_ANSWERS)
    state = facts.UnitState(was.enabled, "inactive") if moving else unit
    # In check mode nothing was written, so the fingerprint cannot show it.
    changing = host.check and bool(host.written & {*inputs(config), package_glob(config), config_d_path(config)})
    changed = host.ensure(*restart_plan("jupyterhub", state, fingerprints, sources(config), stamp(config), changing))
    ensure_service(host, "jupyterhub", running=False)
    if host.check:
        return
    if changed or login_status != "200":
        wait_for_hub(host)
    host.run.recap.say(f"[{host.name}] hub: https://{hub_name(host)}/")
