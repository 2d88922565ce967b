"""Secret values seen by this process, masked in everything it prints.

The one registry of the process, on purpose: a secret stays hidden wherever it
would be printed, with or without a run at hand (Invoke prints a failed task's
message itself).
"""

import threading

MASK = "********"

_values = set()
_lock = threading.Lock()


def register(value):
    """Remember a secret value so :func:`mask` hides it; returns the value."""
    if value and len(value) >= 4:
        with _lock:
            _values.add(value)
    return value


def mask(text):
    """``text`` with every registered secret replaced by a mask."""
    if not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        text = text.replace(value, MASK)
    return text
