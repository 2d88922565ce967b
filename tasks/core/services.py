"""systemd units: enabled and running when a step wants them."""

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
