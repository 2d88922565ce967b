"""The small core every task uses: a run, its hosts, facts, steps, the recap, secrets."""

from . import facts
from .errors import HubswarmError
from .facts import Fact
from .host import Host
from .run import (
    Run,
    Step,
    fail,
    gather_needs,
    run_on,
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
    "Step",
    "fail",
    "facts",
    "gather_needs",
    "Run",
    "render",
    "run_on",
    "run_steps",
    "secret",
    "step",
    "stop_if_failed",
]
