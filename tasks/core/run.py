"""A run, its steps, and how steps run on hosts, hosts in parallel.

A *step* is one idempotent unit of work on a host (``install-nodejs``); a task
is a list of steps run on every target host, in parallel across hosts. Before
any host is touched, every step's ``needs`` function reads and checks its
local input (``.env``, ``userlist``...), so bad input stops the run with one
line and no host half-changed.
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from invoke.exceptions import Exit

from . import templates
from .errors import HubswarmError, Unreachable, one_line
from .host import Host
from .recap import Recap
from .secrets import mask


@dataclass
class Run:
    """One ``fab`` invocation: its checked settings, check mode, ``-H`` hosts, recap and hosts.

    Every task of a chain (``fab check setup-hub``) shares it; each :class:`Host`
    carries it, so steps reach it through their host.
    """

    config: object  # the ``hubswarm`` config section, checked
    #: The Fabric config new connections are made with (user, key, timeouts).
    connection_config: object = None
    check: bool = False
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    #: The hosts ``-H`` names, as given (none: hosts are found by their tags).
    named: tuple = ()
    recap: Recap = field(default_factory=Recap)
    hosts: dict = field(default_factory=dict)
    #: The run's EC2 client, made on first use (making one costs 0.15-0.25 s), and what
    #: discovery found by role, asked once for every task of a chain.
    ec2: object = None
    found: dict = field(default_factory=dict)
    #: The hub's DNS records this run pointed at it in Route53 ({name: address}; in check mode,
    #: those it would have), once it looked (None before): the hub may not resolve them yet.
    dns_pointed: dict | None = None
    #: What this run did already of what a chain of tasks must do once (hub-role, efs-backups).
    done: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    warming: bool = False

    def host(self, connection):
        """The run's single :class:`Host` (so one SSH connection) for an address."""
        key = (connection.user, connection.host, connection.port)
        with self.lock:
            if key not in self.hosts:
                name = connection.host if connection.port == 22 else f"{connection.host}:{connection.port}"
                self.hosts[key] = Host(connection, name, self)
            return self.hosts[key]

    def connected(self):
        """A host's SSH connection is up. While hosts answer the probes, this machine readies
        the templates the steps render (not sooner: that would slow the SSH handshakes)."""
        with self.lock:
            if not self.warming:
                self.warming = True
                threading.Thread(target=templates.warm_up, daemon=True).start()

    def connect(self, address, **options):
        """:meth:`host` for ``address``, reached with the run's connection settings."""
        from fabric import Connection

        return self.host(Connection(address, config=self.connection_config, **options))


@dataclass(frozen=True)
class Step:
    """An idempotent unit of work: ``apply(host, *args)``, a function of the host and the
    arguments bound to it (:meth:`bind`)."""

    name: str
    apply: Callable
    #: ``needs(config)``: the step's local input, checked before any host is touched
    #: (:func:`gather_needs` binds it as the step's argument).
    needs: Callable | None = None
    #: ``probes(host) -> [Fact]``: the facts ``apply`` reads, fetched for all
    #: steps of a run in one batch before the first step.
    probes: Callable | None = None
    #: ``preflight(host, *args)``: raises :class:`HubswarmError` when the
    #: probes already show the step cannot succeed. Every step's preflight runs
    #: on every host before the first change on any host.
    preflight: Callable | None = None
    args: tuple = ()

    def bind(self, *args):
        """This step with ``args`` after the host."""
        return replace(self, args=args)

    def __call__(self, host, *args):
        return self.apply(host, *self.args, *args)

    def check_first(self, host):
        if self.preflight:
            self.preflight(host, *self.args)


def step(name, needs=None, probes=None, preflight=None):
    """Decorator: make ``fn(host, *args)`` a :class:`Step` named ``name``.

    ``needs(config)`` runs locally before any host is touched and returns the
    checked input the step gets as its argument; it raises
    :class:`HubswarmError` on bad input. ``probes(host)`` lists the facts the
    step reads, so a run probes each host once for all its steps.
    ``preflight(host, *args)`` checks, from those facts only, that the step
    can succeed, before any host is changed.
    """

    def wrap(fn):
        return Step(name, fn, needs, probes, preflight)

    return wrap


def fail(message):
    """Stop the run now with a one-line error and a non-zero exit."""
    raise Exit(mask(message), code=1)


def gather_needs(run, steps):
    """``steps`` with their local input bound (each step's ``needs``, checked here, before any
    host is touched); one-line error on bad input."""
    bound = []
    for s in steps:
        try:
            bound.append(s.bind(s.needs(run.config)) if s.needs else s)
        except HubswarmError as exc:
            fail(f"{s.name}: {exc}")
    return bound


def prefetch(host, steps):
    """Probe, in one batch, every fact the steps will read."""
    host.facts(*[f for s in steps if s.probes for f in s.probes(host)])


def on_every_host(hosts, work):
    """``work(host)`` on every host, in parallel; its results in host order."""
    if len(hosts) <= 1:
        return [work(host) for host in hosts]
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return list(pool.map(work, hosts))


def preflight(hosts, steps):
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
                current.check_first(host)
        except Exception as exc:  # noqa: BLE001 - every failure is one recap line
            name = current.name if current else steps[0].name
            record = host.run.recap.start(host.name, name, host.check)
            record.error = one_line(exc)
            when = "" if isinstance(exc, Unreachable) else " before any change"
            host.run.recap.say(f"[{host.name}] {name}: FAILED{when}: {record.error}")
            return exc
        return None

    problems = on_every_host(hosts, check)
    stop_if_failed([h for h, exc in zip(hosts, problems, strict=True) if exc and not isinstance(exc, Unreachable)])
    return [h for h, exc in zip(hosts, problems, strict=True) if not exc]


def run_steps(hosts, steps):
    """Run ``steps`` in order on every host, hosts in parallel.

    First the :func:`preflight` of every host: if one fails anywhere, the run
    stops before any change. Then a failing step stops that host only.
    Returns the hosts that failed.
    """
    return run_everywhere(hosts, steps)[0]


def run_everywhere(hosts, steps):
    """:func:`run_steps`, and what the last step returned on each host that answered."""

    def on_host(host):
        returned = None
        for index, s in enumerate(steps):
            record = host.run.recap.start(host.name, s.name, host.check)
            host.record = record
            try:
                if not host.knows_facts:
                    # The host changed: probe what the rest will read.
                    prefetch(host, steps[index:])
                returned = s(host)
            except Exception as exc:  # noqa: BLE001 - a bug too is one line per host
                record.error = one_line(exc)
            finally:
                record.elapsed = time.monotonic() - record.started
            if record.error:
                host.run.recap.say(f"[{host.name}] {s.name}: FAILED: {record.error}")
                return False, None
            if not record.changes:
                host.run.recap.say(f"[{host.name}] {s.name}: ok")
        return True, returned

    answering = preflight(hosts, steps)
    outcomes = on_every_host(answering, on_host)
    failed = [h for h in hosts if h not in answering]
    failed += [h for h, (ok, _) in zip(answering, outcomes, strict=True) if not ok]
    return failed, [returned for _, returned in outcomes]


def run_on(host, one_step):
    """Run ``one_step`` on ``host`` as a task does (preflight, recap, one line on
    failure, the run stopped when it fails) and return what the step returned."""
    failed, returned = run_everywhere([host], [one_step])
    stop_if_failed(failed)
    return returned[0]


def stop_if_failed(failed):
    """After a task: a one-line error and non-zero exit if any host failed."""
    if failed:
        first = failed[0].run.recap.failed()[0]
        fail(f"{len(failed)} host(s) failed; first: {first.host} {first.task}: {first.error}")
