"""One ``fab`` invocation: its :class:`~tasks.core.Run` (every setting checked
first), its target hosts, and the ``fab`` tasks made of steps."""

import atexit

from fabric import Connection, Task

from . import inventory, validate
from .core import HubswarmError, Run, fail, gather_needs, run_steps, stop_if_failed

RUN_ATTRIBUTE = "_hubswarm_run"


def run_of(c):
    """The :class:`Run` of this ``fab`` invocation, made by its first task.

    Making it checks every setting first: bad settings stop the run with one
    line each (see :mod:`tasks.validate`), before any host is touched. Invoke
    hands every task of a chain the same config object, so the run rides on it.
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
    )
    object.__setattr__(c.config, RUN_ATTRIBUTE, run)  # not a config key: Invoke would merge it
    atexit.register(run.recap.print_table)
    return run


def hosts_for(c, role):
    """The run's :class:`Host` objects for ``role``: the ``-H`` host, else the
    cluster's hosts of ``role`` found by their tags.

    With a lab up, every target and gateway must be a lab host.
    """
    run = run_of(c)
    try:
        targets = [c] if isinstance(c, Connection) else inventory.connections(run, role)
    except HubswarmError as exc:
        fail(str(exc))
    return hosts_at(run, targets)


def hosts_at(run, targets):
    """The run's :class:`Host` objects for the Connections ``targets``; with a
    lab up, every target and gateway must be a lab host."""
    outside = validate.lab_problem(run.config, validate.connection_addresses(targets))
    if outside:
        fail(outside)
    return [run.host(target) for target in targets]


def execute(c, steps, role="hub"):
    """Check local input, then run ``steps`` on the targets of ``role``."""
    needed = gather_needs(run_of(c), steps)
    hosts = hosts_for(c, role)
    stop_if_failed(run_steps(hosts, steps, needed))
    return hosts


def host_task(*steps, name=None, role="hub", doc=None, aliases=()):
    """A ``fab`` task that runs ``steps`` on the hosts of ``role``."""

    def body(c):
        return execute(c, steps, role)

    body.__doc__ = doc or steps[0].apply.__doc__
    body.__name__ = (name or steps[0].name).replace("-", "_")
    return Task(body, name=name or steps[0].name, aliases=aliases)
