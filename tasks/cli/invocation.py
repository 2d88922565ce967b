"""One ``fab`` invocation: its :class:`~tasks.core.Run` (every setting checked
first), its target hosts, the ``fab`` tasks made of steps, and the executor that
runs each task once for all the ``-H`` hosts."""

import atexit

import invoke
from fabric import Connection, Task
from fabric.executor import Executor as FabricExecutor
from invoke.exceptions import Exit

from ..core import HubswarmError, Run, fail, gather_needs, run_steps, stop_if_failed
from ..settings import validate
from . import inventory

RUN_ATTRIBUTE = "_hubswarm_run"
HOSTS_ATTRIBUTE = "_hubswarm_hosts"


class Executor(FabricExecutor):
    """Fabric's executor, but each task of the chain runs once, however many hosts ``-H`` names.

    Fabric would call a task once per ``-H`` host, one host after the other. Here
    the hosts go to the run (:func:`run_of`), and a task runs its steps on all of
    them at once, in parallel (:func:`~tasks.core.run_steps`), one failing host
    not stopping the others, with one recap: as for hosts found by their tags.
    """

    def execute(self, *tasks):
        hosts = self.core[0].args.hosts.value
        object.__setattr__(self.config, HOSTS_ATTRIBUTE, tuple(hosts.split(",")) if hosts else ())
        return super().execute(*tasks)

    def expand_calls(self, calls):
        if self.core.remainder:  # Fabric would run it on each -H host after the tasks
            raise Exit("fab -H HOSTS -- COMMAND runs the command alone: give it no task", code=1)
        # Invoke's expansion (pre- and post-tasks), not Fabric's copy of each call per -H host.
        return invoke.Executor.expand_calls(self, calls)


def run_of(c):
    """The :class:`Run` of this ``fab`` invocation, made by its first task.

    Making it checks every setting first: bad settings stop the run with one
    line each (see :mod:`tasks.settings.validate`), before any host is touched. Invoke
    hands every task of a chain the same config object, so the run rides on it,
    and so do the ``-H`` hosts (see :class:`Executor`).
    """
    run = getattr(c.config, RUN_ATTRIBUTE, None)
    if run is not None:
        return run
    section = validate.checked(c.config.hubswarm)
    run = Run(
        config=section,
        connection_config=c.config,
        check=bool(section.check),
        known_hosts=section.ssh.known_hosts,
        accept_new_host_keys=bool(section.ssh.accept_new_host_keys),
        named=getattr(c.config, HOSTS_ATTRIBUTE, ()),
    )
    object.__setattr__(c.config, RUN_ATTRIBUTE, run)  # not a config key: Invoke would merge it
    atexit.register(run.recap.print_table)
    return run


def hosts_for(c, role):
    """The run's :class:`Host` objects for ``role``: the ``-H`` hosts, else the
    cluster's hosts of ``role`` found by their tags."""
    run = run_of(c)
    return named_hosts(run, run.named) if run.named else found_hosts(run, role)


def hub_for(c):
    """The hub, for a task that takes one: the ``-H`` host, else the one found by its tags."""
    hosts = hosts_for(c, inventory.HUB)
    if len(hosts) > 1:
        fail(f"-H names {len(hosts)} hosts: this task takes one hub")
    return hosts[0]


def named_hosts(run, addresses):
    """The run's :class:`Host` objects for ``addresses`` (``-H``, ``--hub``, ``--workers``)."""
    return targets(run, [Connection(address, config=run.connection_config) for address in addresses])


def found_hosts(run, role):
    """The run's :class:`Host` objects for the cluster's hosts of ``role``, found by
    their tags whatever ``-H`` names."""
    try:
        connections = inventory.connections(run, role)
    except HubswarmError as exc:
        fail(str(exc))
    return targets(run, connections)


def targets(run, connections):
    """The run's hosts for ``connections``, each once (``-H a,a``: one thread per host);
    with a lab up, every target and gateway must be a lab host."""
    outside = validate.lab_problem(run.config, validate.connection_addresses(connections))
    if outside:
        fail(outside)
    return list(dict.fromkeys(run.host(connection) for connection in connections))


def execute(c, steps, role="hub", before_steps=None):
    """Check local input, then ``before_steps(c)`` when given, then run ``steps`` on the targets of ``role``."""
    steps = gather_needs(run_of(c), steps)
    if before_steps:
        before_steps(c)
    hosts = hosts_for(c, role)
    stop_if_failed(run_steps(hosts, steps))
    return hosts


def host_task(*steps, name=None, role="hub", doc=None, aliases=(), before_steps=None):
    """A ``fab`` task that runs ``steps`` on the hosts of ``role`` (``before_steps(c)`` first, when
    given: work on this machine that the steps' checks read)."""

    def body(c):
        return execute(c, steps, role, before_steps)

    body.__doc__ = doc or steps[0].apply.__doc__
    body.__name__ = (name or steps[0].name).replace("-", "_")
    return Task(body, name=name or steps[0].name, aliases=aliases)
