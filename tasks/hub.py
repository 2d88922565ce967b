"""The hub itself: its configuration and its systemd service."""

import hashlib
import io
import shlex
import tarfile
from pathlib import Path

from .auth import checked_authenticator
from .certs import hub_name, public_name_probes
from .core import HubswarmError, facts, render, step
from .docker import ensure_service
from .swarm import NOTEBOOK_LABEL

UNIT = "/etc/systemd/system/jupyterhub.service"
HUB_WAIT_SECONDS = 120


def config_path(config):
    return f"{config.srv}/jupyterhub_config.py"


# The hub-side code (tasks/hubswarm_hub), installed as a package into the hub's venv.
HUB_PACKAGE = Path(__file__).resolve().parent / "hubswarm_hub"
PACKAGE_NAME = HUB_PACKAGE.name


def package_files():
    """The package's modules: {file name: bytes}."""
    return {p.name: p.read_bytes() for p in sorted(HUB_PACKAGE.glob("*.py"))}


def package_manifest(files):
    """``sha256  name`` lines, as ``sha256sum`` prints them."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())


def package_fact(venv):
    """The venv's site-packages folder, then the installed package's manifest."""
    q = shlex.quote(venv)
    return facts.command_output(
        f"hub-package:{venv}",
        f"site=$({q}/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])') && "
        f'echo "$site" && cd "$site/{PACKAGE_NAME}" && export LC_ALL=C && sha256sum -- *.py',
    )


def package_script(site):
    """Unpack the package (a tar on stdin) beside the installed one, then swap them."""
    d = shlex.quote(f"{site}/{PACKAGE_NAME}")
    return (
        f"rm -rf {d}.new {d}.old && mkdir {d}.new && tar -x --no-same-owner -C {d}.new && "
        f"chmod 755 {d}.new && chmod 644 {d}.new/*.py && "
        f"if [ -e {d} ]; then mv {d} {d}.old; fi && mv {d}.new {d} && rm -rf {d}.old"
    )


def package_archive(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_package(host):
    """Install the hub-side package into the venv when missing or different."""
    venv = host.config.venv
    lines = host.fact(package_fact(venv)).out.splitlines()
    files = package_files()
    site = lines[0].strip() if lines else ""
    if site and "\n".join(lines[1:]) + "\n" == package_manifest(files):
        return False
    if not site and not host.check:
        raise HubswarmError(f"no virtualenv at {venv} on {host.name}: run pip-install first")
    host.written.add(PACKAGE_NAME)
    return host.ensure(
        f"install the {PACKAGE_NAME} package into {venv}",
        package_script(site) if site else ":",  # (check mode, before pip-install made the venv)
        stdin=lambda: io.BytesIO(package_archive(files)),
    )


def inputs(config):
    """The files whose change means the running hub must restart."""
    srv = config.srv
    return [config_path(config), f"{srv}/env", f"{srv}/userlist", UNIT]


def package_glob(config):
    """The installed package's modules, for the fingerprint (any Python of the venv)."""
    return f"{shlex.quote(config.venv)}/lib/python3*/site-packages/{PACKAGE_NAME}/*.py"


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
        package_fact(host.config.venv),
        *public_name_probes(host),
    ],
)
def hub_config(host, _authenticator):
    """Render jupyterhub_config.py (authenticator, SwarmSpawner, idle culler, hub behind nginx) into /srv/jupyterhub."""
    config = host.config
    host.ensure_dir(config.srv, mode="700")
    ensure_package(host)
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
    return facts.command_output("hub-inputs", f"{fingerprint_command(config)}; cat {stamp_path(config)}")


def service_commands(unit_state, fingerprint_lines, config, inputs_change=False):
    """start, or restart when an input changed since the last start (or, in check
    mode, ``inputs_change``: this run would write one), or ""."""
    active = (unit_state.split() + ["", ""])[1]
    lines = fingerprint_lines.split()
    stale = inputs_change or len(lines) < 2 or lines[0] != lines[1]
    record = f"{fingerprint_command(config)} > {stamp_path(config)}"
    if active != "active":
        return "start jupyterhub", f"{record} && systemctl start jupyterhub"
    if stale:
        return "restart jupyterhub (its inputs changed)", f"{record} && systemctl restart jupyterhub"
    return "", ""


LOGIN_STATUS = "curl -sk -o /dev/null -w '%{http_code}' --max-time 5 https://127.0.0.1/hub/login"
HUB_ANSWERS = facts.command_output("hub-login-status", LOGIN_STATUS)


def wait_for_hub(host):
    script = (
        f"for i in $(seq {HUB_WAIT_SECONDS}); do "
        f"[ \"$({LOGIN_STATUS})\" = 200 ] && exit 0; sleep 1; done; exit 1"
    )
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
        answers[facts.systemd_unit("jupyterhub").key].out,
        answers[fingerprint_fact(config).key].out,
        config,
        # In check mode nothing was written, so the fingerprint cannot show it.
        inputs_change=host.check and bool(host.written & {*inputs(config), PACKAGE_NAME}),
    )
    changed = host.ensure(what, command)
    ensure_service(host, "jupyterhub", running=False)
    if host.check:
        return
    if changed or answers[HUB_ANSWERS.key].text != "200":
        wait_for_hub(host)
    host.settings.recap.say(f"[{host.name}] hub: https://{hub_name(host)}/")
