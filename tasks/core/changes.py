"""The one change engine. A target (a host over SSH, a resource of the AWS account) records each
change a step found needed, shows it, and makes it, unless the run is in check mode."""

import time
from contextlib import contextmanager

from .errors import HubswarmError, one_line


class Target:
    """What a step changes; a :class:`~tasks.core.host.Host` is one, so is an AWS resource
    (:func:`recorded`)."""

    def __init__(self, run, name):
        self.run = run
        self.name = name
        self.record = None  # the Record of the step running now

    @property
    def check(self):
        return self.run.check

    @property
    def config(self):
        """The run's ``hubswarm`` config section."""
        return self.run.config

    def note(self, line):
        self.run.recap.note(self.record, line)

    def changed(self, what):
        """Record a change: one this step makes, or one only running could tell (a pull)."""
        self.record.changes.append(what)
        self.note(what)

    def ensure(self, what, action):
        """Make the change ``what`` (a line, or a list of lines for one action) by calling
        ``action``, unless in check mode; no action (None, "") means nothing to do. True when
        a change was made (or would be)."""
        if not action:
            return False
        for line in [what] if isinstance(what, str) else what:
            self.changed(line)
        if not self.check:
            action()
        return True


@contextmanager
def recorded(run, name, task_name):
    """A :class:`Target` named ``name`` with a recap record for ``task_name``, for work not done
    over SSH (the AWS account); a failure stops the run."""
    recap = run.recap
    target = Target(run, name)
    target.record = recap.start(name, task_name, run.check)
    try:
        yield target
    except Exception as exc:
        target.record.error = one_line(exc)
        recap.say(f"[{name}] {task_name}: FAILED: {target.record.error}")
        raise HubswarmError(f"{name} {task_name}: {target.record.error}") from None
    finally:
        target.record.elapsed = time.monotonic() - target.record.started
    if not target.record.changes:
        recap.say(f"[{name}] {task_name}: ok")
