"""configurable-http-proxy as a systemd service of its own (``jupyterhub-proxy``).

The hub neither starts nor stops it, so a hub restart (a userlist, config or
version change) leaves every user's route, and their open connections, alone.
Its token is made on the hub once and never leaves it.
"""

import shlex

from ..core import facts, render
from ..core.services import ensure_service, inputs_fact, restart_plan
from .nodejs import CHP

SERVICE = "jupyterhub-proxy"
UNIT = f"/etc/systemd/system/{SERVICE}.service"
API_URL = "http://127.0.0.1:8001"
PATH = "/usr/local/bin:/usr/bin:/bin"


def token_path(config):
    """The proxy's token, as the env file both services read (0600 root)."""
    return f"{config.srv}/proxy.env"


def token_script(config):
    """Make the token on the hub when there is none; an existing one is kept (``mv -n``)."""
    path = shlex.quote(token_path(config))
    return (
        f"umask 077; t=$(mktemp {path}.XXXXXX) && "
        'printf \'CONFIGPROXY_AUTH_TOKEN=%s\\n\' "$(openssl rand -hex 32)" > "$t" && '
        f'mv -n "$t" {path}; rm -f "$t"'
    )


def sources(config):
    """What the running proxy was started from: its unit, its token, and its version as
    `configurable-http-proxy --version` prints it (its package.json's, read without
    starting Node.js: a quarter of a second on a small hub)."""
    files = " ".join(shlex.quote(p) for p in (UNIT, token_path(config)))
    return (
        f'cat {files}; c=$(PATH={PATH}; command -v {CHP}) && c=$(readlink -f "$c") && '
        f'sed -n \'/^  "version": *"/{{s/^  "version": *"\\([^"]*\\)".*/\\1/p;q}}\' "${{c%/bin/*}}/package.json"'
    )


def stamp(config):
    return f"{config.srv}/.running-proxy"


def proxy_inputs(config):
    return inputs_fact(SERVICE, sources(config), stamp(config))


def render_unit(config, hub_ip):
    # Users' servers on names of their own: the proxy routes on the name, then the path.
    return render(
        "jupyterhub-proxy.service.j2",
        srv=config.srv,
        path=PATH,
        hub_url=f"http://{hub_ip}:8081",
        host_routing=not config.single_origin,
    )


def proxy_probes(host):
    return [
        facts.addresses(),
        facts.file_state(token_path(host.config)),
        facts.file_state(UNIT),
        facts.systemd_unit(SERVICE),
        proxy_inputs(host.config),
    ]


def ensure_proxy(host):
    """Write the proxy's token and unit, start it (restart it when they or its version
    changed) and enable it. Returns whether its unit file changed (systemd must reload)."""
    config = host.config
    if not host.fact(facts.file_state(token_path(config))):
        host.written.add(token_path(config))
        host.ensure("make the proxy's token (it stays on the hub)", token_script(config))
    return host.ensure_file(UNIT, render_unit(config, host.private_ip()))


def start_proxy(host):
    """Start the proxy, or restart it when its inputs changed; enable it."""
    config = host.config
    changing = host.check and bool(host.written & {UNIT, token_path(config)})
    state, fingerprints = host.fact(facts.systemd_unit(SERVICE)), host.fact(proxy_inputs(config))
    host.ensure(*restart_plan(SERVICE, state, fingerprints, sources(config), stamp(config), changing))
    ensure_service(host, SERVICE, running=False)
