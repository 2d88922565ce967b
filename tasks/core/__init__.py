"""The small core every task uses: hosts, facts, steps, the recap, secrets."""

from . import facts
from .facts import Fact
from .host import Host, HubswarmError
from .run import (
    SETTINGS,
    Step,
    execute,
    fail,
    gather_needs,
    host_task,
    hosts_for,
    run_steps,
    step,
    stop_if_failed,
)
from .secrets import register as secret
from .templates import render

__all__ = [
    "Fact",
    "Host",
    "HubswarmError",
    "SETTINGS",
    "Step",
    "execute",
    "fail",
    "facts",
    "gather_needs",
    "host_task",
    "hosts_for",
    "render",
    "run_steps",
    "secret",
    "step",
    "stop_if_failed",
]
