"""systemd units: enabled and running when a step wants them."""

import shlex

from . import facts


def ensure_service(host, unit, enabled=True, running=True):
    """Enable and start a systemd unit when it is not already."""
    state = host.fact(facts.systemd_unit(unit)).out.split()
    is_enabled, is_active = (state + ["", ""])[:2]
    commands = []
    if enabled and is_enabled != "enabled":
        commands.append(f"systemctl enable {shlex.quote(unit)}")
    if running and is_active != "active":
        commands.append(f"systemctl start {shlex.quote(unit)}")
    return host.ensure(f"enable and start {unit}", " && ".join(commands))
