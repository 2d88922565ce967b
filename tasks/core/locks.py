"""Locks that one machine's runs share (its Docker is one for every project and run)."""

import contextlib
import fcntl
import hashlib
import tempfile
from pathlib import Path


@contextlib.contextmanager
def machine_lock(name):
    """Hold the machine-wide lock ``name`` (any text) while the block runs; another holder waits."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"hubswarm-{digest}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
