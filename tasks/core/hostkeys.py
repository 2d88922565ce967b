"""known_hosts for HUBSWARM_ACCEPT_NEW_HOST_KEYS=1: made when missing, new keys saved at once.

paramiko's AutoAddPolicy rewrites the whole file from what it parsed (dropping
comments, ``@cert-authority`` lines and key types it does not know) and, with
hosts connecting in parallel, the last writer wins. :class:`SaveNewHostKey`
appends one line per new key instead, like OpenSSH, under a lock, so the next
run checks every key this one trusted.
"""

import os
import threading
from pathlib import Path

from paramiko import HostKeys, MissingHostKeyPolicy
from paramiko.hostkeys import HostKeyEntry
from paramiko.ssh_exception import BadHostKeyException

_lock = threading.Lock()


def ensure_file(path):
    """Create ``path`` (0600) when missing, and the folders it needs (0700)."""
    path = Path(path)
    if path.exists():
        return
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class SaveNewHostKey(MissingHostKeyPolicy):
    """Trust a host's first key and append it to ``path`` at once."""

    def __init__(self, path):
        self.path = str(path)

    def missing_host_key(self, client, hostname, key):
        with _lock:
            recorded = HostKeys()
            if os.path.exists(self.path):
                recorded.load(self.path)
            known = (recorded.lookup(hostname) or {}).get(key.get_name())
            if known is not None and known != key:  # recorded meanwhile, by another connection
                raise BadHostKeyException(hostname, key, known)
            if known is None:
                line = HostKeyEntry([hostname], key).to_line()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    if os.fstat(fd).st_size and not _ends_with_newline(self.path):
                        line = "\n" + line
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
        client.get_host_keys().add(hostname, key.get_name(), key)


def _ends_with_newline(path):
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
