"""Steps, the tasks made of them, and how a run reaches its hosts.

A *step* is one idempotent unit of work on a host (``install-node``); a task
is a list of steps run on every target host, in parallel across hosts. Before
any host is touched, every step's ``needs`` function reads and checks its
local input (``.env``, ``userlist``...), so bad input stops the run with one
line and no host half-changed.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

from fabric import Connection, Task
from invoke.exceptions import Exit

from .host import HubswarmError, get_host
from .recap import RECAP
from .secrets import mask


@dataclass
class Settings:
    """What every host of the run shares: check mode, host keys, the recap."""

    check: bool = False
    known_hosts: Optional[str] = None
    accept_new_host_keys: bool = False
    recap: object = RECAP
    config: object = None  # the run's ``hubswarm`` config section


SETTINGS = Settings()


def configure(config):
    """Fill :data:`SETTINGS` from the run's ``hubswarm`` config."""
    SETTINGS.config = config.hubswarm
    ssh = config.hubswarm.ssh
    SETTINGS.known_hosts = ssh.known_hosts
    SETTINGS.accept_new_host_keys = bool(ssh.accept_new_host_keys)
    SETTINGS.check = SETTINGS.check or bool(config.hubswarm.check)
    return SETTINGS


@dataclass
class Step:
    """An idempotent unit of work: ``apply(host[, needed])``."""

    name: str
    apply: Callable
    needs: Optional[Callable] = None
    #: ``probes(host) -> [Fact]``: the facts ``apply`` reads, fetched for all
    #: steps of a run in one batch before the first step.
    probes: Optional[Callable] = None

    def __call__(self, host, needed=None):
        return self.apply(host, needed) if self.needs else self.apply(host)


def step(name, needs=None, probes=None):
    """Decorator: make ``fn(host[, needed])`` a :class:`Step` named ``name``.

    ``needs(config)`` runs locally before any host is touched and returns the
    checked input the step gets as its second argument; it raises
    :class:`HubswarmError` on bad input. ``probes(host)`` lists the facts the
    step reads, so a run probes each host once for all its steps.
    """

    def wrap(fn):
        return Step(name, fn, needs, probes)

    return wrap


def fail(message):
    """Stop the run now with a one-line error and a non-zero exit."""
    raise Exit(mask(message), code=1)


def gather_needs(config, steps):
    """Run every step's local ``needs`` check; one-line error on bad input."""
    needed = {}
    for s in steps:
        if s.needs and s.name not in needed:
            try:
                needed[s.name] = s.needs(config.hubswarm)
            except HubswarmError as exc:
                fail(f"{s.name}: {exc}")
    return needed


def prefetch(host, steps):
    """Probe, in one batch, every fact the steps will read."""
    host.facts(*[f for s in steps if s.probes for f in s.probes(host)])


def run_steps(hosts, steps, needed):
    """Run ``steps`` in order on every host, hosts in parallel.

    A failing step stops that host only. Returns the hosts that failed.
    """

    def on_host(host):
        for index, s in enumerate(steps):
            record = RECAP.start(host.name, s.name, SETTINGS.check)
            host.record = record
            try:
                if not host.knows_facts:
                    # First step, or the host changed: probe what the rest will read.
                    prefetch(host, steps[index:])
                s(host, needed.get(s.name))
            except HubswarmError as exc:
                record.error = mask(str(exc))
            except Exception as exc:  # an unexpected bug: still one line per host
                record.error = mask(f"{type(exc).__name__}: {exc}")
            finally:
                record.elapsed = time.monotonic() - record.started
            if record.error:
                RECAP.say(f"[{host.name}] {s.name}: FAILED: {record.error}")
                return False
            if not record.changes:
                RECAP.say(f"[{host.name}] {s.name}: ok")
        return True

    if len(hosts) == 1:
        results = [on_host(hosts[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            results = list(pool.map(on_host, hosts))
    return [h for h, ok in zip(hosts, results) if not ok]


def connections(c, role):
    """The run's targets: the ``-H`` host, else the cluster's hosts of ``role``."""
    if isinstance(c, Connection):
        return [c]
    from tasks import inventory

    return inventory.connections(c.config, role)


def hosts_for(c, role):
    """The run's :class:`Host` objects for ``role`` (``-H`` wins over discovery)."""
    settings = configure(c.config)
    try:
        targets = connections(c, role)
    except HubswarmError as exc:
        fail(str(exc))
    return [get_host(conn, settings) for conn in targets]


def stop_if_failed(failed):
    """After a task: a one-line error and non-zero exit if any host failed."""
    if failed:
        first = RECAP.failed()[0]
        fail(f"{len(failed)} host(s) failed; first: {first.host} {first.task}: {first.error}")


def execute(c, steps, role="hub"):
    """Check local input, then run ``steps`` on the targets of ``role``."""
    configure(c.config)
    needed = gather_needs(c.config, steps)
    hosts = hosts_for(c, role)
    stop_if_failed(run_steps(hosts, steps, needed))
    return hosts


def host_task(*steps, name=None, role="hub", doc=None):
    """A ``fab`` task that runs ``steps`` on the hosts of ``role``."""

    def body(c):
        return execute(c, steps, role)

    body.__doc__ = doc or steps[0].apply.__doc__
    body.__name__ = (name or steps[0].name).replace("-", "_")
    return Task(body, name=name or steps[0].name)
