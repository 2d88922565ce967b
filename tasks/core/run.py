"""Steps, the tasks made of them, and how a run reaches its hosts.

A *step* is one idempotent unit of work on a host (``install-node``); a task
is a list of steps run on every target host, in parallel across hosts. Before
any host is touched, every step's ``needs`` function reads and checks its
local input (``.env``, ``userlist``...), so bad input stops the run with one
line and no host half-changed.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fabric import Connection, Task
from invoke.exceptions import Exit

from .host import HubswarmError, Unreachable, get_host
from .recap import RECAP
from .secrets import mask


@dataclass
class Settings:
    """What every host of the run shares: check mode, host keys, the recap."""

    check: bool = False
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    recap: object = RECAP
    config: object = None  # the run's ``hubswarm`` config section


SETTINGS = Settings()


def configure(config):
    """Check every setting, then fill :data:`SETTINGS` from the run's ``hubswarm`` config.

    Every task comes here before it touches a host: bad settings stop the run
    with one line each (see :mod:`tasks.validate`).
    """
    from tasks import validate

    validate.normalise(config.hubswarm)  # fabric.yaml's values too
    problems = validate.problems(config.hubswarm)
    if problems:
        fail("\n".join(problems))
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
    needs: Callable | None = None
    #: ``probes(host) -> [Fact]``: the facts ``apply`` reads, fetched for all
    #: steps of a run in one batch before the first step.
    probes: Callable | None = None
    #: ``preflight(host[, needed])``: raises :class:`HubswarmError` when the
    #: probes already show the step cannot succeed. Every step's preflight runs
    #: on every host before the first change on any host.
    preflight: Callable | None = None

    def __call__(self, host, needed=None):
        return self.apply(host, needed) if self.needs else self.apply(host)

    def check_first(self, host, needed=None):
        if self.preflight:
            self.preflight(host, needed) if self.needs else self.preflight(host)


def step(name, needs=None, probes=None, preflight=None):
    """Decorator: make ``fn(host[, needed])`` a :class:`Step` named ``name``.

    ``needs(config)`` runs locally before any host is touched and returns the
    checked input the step gets as its second argument; it raises
    :class:`HubswarmError` on bad input. ``probes(host)`` lists the facts the
    step reads, so a run probes each host once for all its steps.
    ``preflight(host[, needed])`` checks, from those facts only, that the step
    can succeed, before any host is changed.
    """

    def wrap(fn):
        return Step(name, fn, needs, probes, preflight)

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


def one_line(exc):
    """An exception as the recap's one line: ours as they are, a bug with its type."""
    if isinstance(exc, HubswarmError):
        return mask(str(exc))
    return mask(f"{type(exc).__name__}: {exc}")


def on_every_host(hosts, work):
    """``work(host)`` on every host, in parallel; its results in host order."""
    if len(hosts) <= 1:
        return [work(host) for host in hosts]
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return list(pool.map(work, hosts))


def preflight(hosts, steps, needed):
    """Probe every host for all ``steps`` at once (in parallel) and run each step's
    preflight check; when one fails anywhere, stop the run: no host was changed.

    A host that does not answer at all is left out (a lost worker must not stop
    the others); returns the hosts that answered.
    """

    def check(host):
        current = None
        try:
            prefetch(host, steps)
            for current in steps:
                current.check_first(host, needed.get(current.name))
        except Exception as exc:  # noqa: BLE001 - every failure is one recap line
            name = current.name if current else steps[0].name
            record = RECAP.start(host.name, name, SETTINGS.check)
            record.error = one_line(exc)
            when = "" if isinstance(exc, Unreachable) else " before any change"
            RECAP.say(f"[{host.name}] {name}: FAILED{when}: {record.error}")
            return exc
        return None

    problems = on_every_host(hosts, check)
    stop_if_failed([h for h, exc in zip(hosts, problems, strict=True) if exc and not isinstance(exc, Unreachable)])
    return [h for h, exc in zip(hosts, problems, strict=True) if not exc]


def run_steps(hosts, steps, needed):
    """Run ``steps`` in order on every host, hosts in parallel.

    First the :func:`preflight` of every host: if one fails anywhere, the run
    stops before any change. Then a failing step stops that host only.
    Returns the hosts that failed.
    """

    def on_host(host):
        for index, s in enumerate(steps):
            record = RECAP.start(host.name, s.name, SETTINGS.check)
            host.record = record
            try:
                if not host.knows_facts:
                    # The host changed: probe what the rest will read.
                    prefetch(host, steps[index:])
                s(host, needed.get(s.name))
            except Exception as exc:  # noqa: BLE001 - a bug too is one line per host
                record.error = one_line(exc)
            finally:
                record.elapsed = time.monotonic() - record.started
            if record.error:
                RECAP.say(f"[{host.name}] {s.name}: FAILED: {record.error}")
                return False
            if not record.changes:
                RECAP.say(f"[{host.name}] {s.name}: ok")
        return True

    answering = preflight(hosts, steps, needed)
    failed = on_every_host(answering, on_host)
    return [h for h in hosts if h not in answering] + [h for h, ok in zip(answering, failed, strict=True) if not ok]


def connections(c, role):
    """The run's targets: the ``-H`` host, else the cluster's hosts of ``role``."""
    if isinstance(c, Connection):
        return [c]
    from tasks import inventory

    return inventory.connections(c.config, role)


def hosts_for(c, role):
    """The run's :class:`Host` objects for ``role`` (``-H`` wins over discovery).

    With a lab up, every target and gateway must be a lab host.
    """
    from tasks import validate

    settings = configure(c.config)
    try:
        targets = connections(c, role)
    except HubswarmError as exc:
        fail(str(exc))
    outside = validate.lab_problem(settings.config, validate.connection_addresses(targets))
    if outside:
        fail(outside)
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
