"""The errors a run reports, each as one line."""

from .secrets import mask


class HubswarmError(Exception):
    """A failure worth one line to the user: what went wrong and the fix."""


class Unreachable(HubswarmError):
    """The host does not answer on SSH: a lost worker, not a reason to stop the others."""


def one_line(exc):
    """An exception as the recap's one line: ours as they are, a bug with its type."""
    if isinstance(exc, HubswarmError):
        return mask(str(exc))
    return mask(f"{type(exc).__name__}: {exc}")
