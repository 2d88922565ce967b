"""The small core every task uses: hosts, facts, steps, the recap, secrets."""

from . import facts
from .facts import Fact
from .host import Host, HubswarmError
from .run import SETTINGS, Step, execute, fail, host_task, step
from .secrets import register as secret
from .templates import render

__all__ = [
    "Fact", "Host", "HubswarmError", "SETTINGS", "Step",
    "execute", "fail", "facts", "host_task", "render", "secret", "step",
]
