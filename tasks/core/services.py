"""systemd units: enabled and running when a step wants them, restarted when their inputs changed."""

import shlex

from . import facts


def ensure_service(host, unit, enabled=True, running=True):
    """Enable and start a systemd unit when it is not already."""
    state = host.fact(facts.systemd_unit(unit))
    commands = []
    if enabled and state.enabled != "enabled":
        commands.append(f"systemctl enable {shlex.quote(unit)}")
    if running and not state.running:
        commands.append(f"systemctl start {shlex.quote(unit)}")
    return host.ensure(f"enable and start {unit}", " && ".join(commands))


UNIT_DIR = "/etc/systemd/system"


def ensure_installed(host, unit, files, restart_on=None, restarted="restart {unit}"):
    """A service (or timer) of hubswarm's own: ``files`` ({path: (text, mode)}, its unit file
    among them) written, systemd reloaded when a unit file changed, ``unit`` enabled and
    started, and restarted when one of ``restart_on`` (default: every file) changed under it
    while it ran; ``restarted`` says so."""
    changed = {path for path, (text, mode) in files.items() if host.ensure_file(path, text, mode=mode)}
    if any(path.startswith(f"{UNIT_DIR}/") for path in changed):
        host.ensure("reload systemd", "systemctl daemon-reload")
    started = ensure_service(host, unit)
    if changed & set(files if restart_on is None else restart_on) and not started:
        host.ensure(restarted.format(unit=unit), f"systemctl restart {shlex.quote(unit)}")


def stop_service(host, unit):
    """Disable and stop a systemd unit when it is enabled or running."""
    state = host.fact(facts.systemd_unit(unit))
    if state.enabled != "enabled" and not state.running:
        return False
    return host.ensure(f"disable and stop {unit}", f"systemctl disable --now {shlex.quote(unit)}")


def fingerprint_command(sources):
    """Prints the sha256 of what the shell snippet ``sources`` prints: a service's inputs now."""
    return f"{{ {sources}; }} 2>/dev/null | sha256sum | cut -d' ' -f1"


def inputs_fact(unit, sources, stamp):
    """[the fingerprint of ``sources`` now, the one recorded in ``stamp`` at the unit's last (re)start]."""
    return facts.Fact(f"inputs:{unit}", f"{fingerprint_command(sources)}; cat {shlex.quote(stamp)}", parse=facts.words)


def restart_plan(unit, state, fingerprints, sources, stamp, inputs_change=False):
    """(what, command): start ``unit`` when it is not running, restart it when its
    inputs changed since its last (re)start (or, in check mode, ``inputs_change``:
    this run would change one), else ("", ""). Either records the fingerprint.

    ``state``: the unit's :class:`~tasks.core.facts.UnitState`; ``fingerprints``:
    :func:`inputs_fact`'s answer.
    """
    stale = inputs_change or len(fingerprints) < 2 or fingerprints[0] != fingerprints[1]
    record = f"{fingerprint_command(sources)} > {shlex.quote(stamp)}"
    if not state.running:
        return f"start {unit}", f"{record} && systemctl start {shlex.quote(unit)}"
    if stale:
        return f"restart {unit} (its inputs changed)", f"{record} && systemctl restart {shlex.quote(unit)}"
    return "", ""
