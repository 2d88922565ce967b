"""One managed host: a single SSH connection, cached facts, and idempotent changes.

Everything that touches a host goes through :class:`Host`:

* :meth:`Host.facts` runs read-only probes (batched, cached) - also in check mode -
  and gives back their parsed values, in order;
* :meth:`Host.ensure` runs a change only when the caller found one is needed,
  or, in check mode, only says it would;
* :meth:`Host.ensure_file` writes a file atomically (temp file + rename) with
  owner and mode, the content travelling on stdin, never on a command line.

Commands run as root through ``sudo -n bash -c SCRIPT``: scripts carry no
secrets; secrets only ever travel on stdin.
"""

import difflib
import hashlib
import io
import shlex
import socket

from paramiko import AutoAddPolicy, RejectPolicy
from paramiko.ssh_exception import BadHostKeyException, NoValidConnectionsError, SSHException

from . import facts as F
from .changes import Target
from .errors import HubswarmError, Unreachable
from .secrets import MASK, mask

# Every change holds this lock: what a killed run left running on the host (apt,
# pip, npm go on without their SSH session) finishes before the next run changes
# anything. The facts the next run probed may then be stale, but every change
# script is idempotent, so running it again is safe.
LOCK_FILE = "/run/lock/hubswarm.lock"
LOCK_WAIT_SECONDS = 900
CHANGE_LOCK = (
    f"exec 9>>{LOCK_FILE}; flock -w {LOCK_WAIT_SECONDS} 9 || {{ echo 'another hubswarm change "
    f"is still running on this host ({LOCK_FILE} held for {LOCK_WAIT_SECONDS} s): see ps -ef' >&2; exit 1; }}\n"
)


class Host(Target):
    """A host of a run. Use :meth:`Run.host <tasks.core.run.Run.host>` to share one per address."""

    def __init__(self, connection, name, run):
        super().__init__(run, name)
        self.connection = connection
        #: Paths (and globs) this run writes, or in check mode would: a later step predicts its
        #: service's restart from them, as the fingerprint of what was written cannot show it.
        self.written = set()
        self._facts = {}
        self._opened = False

    # --- connection -------------------------------------------------------

    def open(self):
        if self._opened:
            return
        import os

        from paramiko.hostkeys import InvalidHostKey

        from .hostkeys import SaveNewHostKey, ensure_file

        client = self.connection.client
        known, accept = self.run.known_hosts, self.run.accept_new_host_keys
        keys = (getattr(self.connection, "connect_kwargs", None) or {}).get("key_filename") or []
        for key in [keys] if isinstance(keys, str) else keys:
            if not os.path.isfile(key):
                raise HubswarmError(
                    f"HUBSWARM_SSH_KEY: key file {key} not found: point it at the private key "
                    "of the instances' key pair"
                )
        if known:
            try:
                if accept:
                    ensure_file(known)
                client.load_host_keys(known)
            except FileNotFoundError:
                pass
            except (OSError, UnicodeDecodeError, InvalidHostKey) as exc:
                raise HubswarmError(
                    f"HUBSWARM_KNOWN_HOSTS: cannot use {known} ({getattr(exc, 'strerror', None) or exc}): "
                    "check its path, owner, mode and lines"
                ) from None
        if accept:
            # New keys are appended to known_hosts, so the next run checks them.
            client.set_missing_host_key_policy(SaveNewHostKey(known) if known else AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(RejectPolicy())
        try:
            self.connect()
        except BadHostKeyException:
            known = self.run.known_hosts or "known_hosts"
            raise HubswarmError(
                f"host key of {self.connection.host} has CHANGED since it was recorded in {known}: "
                f"if the host was rebuilt, remove the old key (ssh-keygen -R {self.connection.host} "
                f"-f {known}); otherwise someone may be in the middle"
            ) from None
        except SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise HubswarmError(
                    f"host key of {self.connection.host} is unknown (not in "
                    f"{self.run.known_hosts or 'known_hosts'}): check it and add it "
                    f"(ssh-keyscan), or set HUBSWARM_ACCEPT_NEW_HOST_KEYS=1 to trust it"
                ) from None
            raise HubswarmError(f"cannot log in to {self.connection.host}: {exc}") from None
        except (NoValidConnectionsError, OSError) as exc:
            raise Unreachable(
                f"cannot reach {self.connection.host}:{self.connection.port} "
                f"({exc.strerror or exc}): check the host is running and SSH is open"
            ) from None
        self._opened = True
        self.run.recap.count(connections=1)
        self.run.connected()

    def connect(self):
        """Open the SSH connection, over a TCP socket with Nagle's algorithm off. SSH sends
        small packets back to back (a channel's request, then its end of input): with Nagle
        on, the second waits for the host's delayed ACK, 40 ms for every command and for
        some of the login's steps. A connection through a gateway is a channel of the
        gateway's, whose socket is the gateway's own.

        The socket goes in a copy of the connection's ``connect_kwargs``: Fabric's own
        writes through to the config every connection of the run shares, where a host
        connecting meanwhile would find another host's socket."""
        connection = self.connection
        if connection.gateway or "sock" in connection.connect_kwargs:
            connection.open()
            return
        sock = socket.create_connection((connection.host, connection.port), timeout=connection.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        shared = connection.connect_kwargs
        connection.connect_kwargs = {**shared, "sock": sock}
        try:
            connection.open()
        except BaseException:
            sock.close()
            raise
        finally:
            connection.connect_kwargs = shared

    def _exec(self, command, stdin=None, binary=False):
        """(exit code, stdout, stderr) of ``command``; ``stdin``: a binary stream or None;
        ``binary``: stdout as bytes (an archive), not text.

        Input goes straight on the SSH channel: Invoke would feed it one byte per 10 ms.
        """
        self.open()
        self.run.recap.count(commands=1)
        if stdin is None and not binary:
            result = self.connection.run(command, hide=True, warn=True, pty=False, in_stream=False)
            return result.exited, result.stdout, result.stderr
        channel = self.connection.client.get_transport().open_session()
        channel.exec_command(command)
        while stdin is not None and (chunk := stdin.read(1 << 20)):
            channel.sendall(chunk)
        channel.shutdown_write()
        stdout, stderr = channel.makefile("rb").read(), channel.makefile_stderr("rb").read()
        stdout = stdout if binary else stdout.decode(errors="replace")
        return channel.recv_exit_status(), stdout, stderr.decode(errors="replace")

    def sudo(self, script, stdin=None, what="command", binary=False):
        """Run ``script`` as root; its stdout (bytes when ``binary``); raise
        :class:`HubswarmError` when it fails.

        ``stdin`` is text, bytes, or a binary file object streamed as it is read.
        """
        if isinstance(stdin, str):
            stdin = stdin.encode()
        if isinstance(stdin, bytes):
            stdin = io.BytesIO(stdin)
        command = f"sudo -n bash -c {shlex.quote(script)}"
        exited, stdout, stderr = self._exec(command, stdin, binary=True) if binary else self._exec(command, stdin)
        if exited != 0:
            if "a password is required" in stderr:
                raise HubswarmError(
                    f"sudo on {self.name} asks for a password: give "
                    f"{self.connection.user} passwordless sudo (EC2 images have it)"
                )
            detail = (stderr.strip() or stdout.strip()).splitlines()
            raise HubswarmError(f"{what} failed (exit {exited}): {mask(detail[-1]) if detail else ''}")
        return stdout

    # --- facts ------------------------------------------------------------

    def facts(self, *wanted):
        """The parsed values of ``wanted`` facts, in their order, probing the unknown ones in one command."""
        missing = [f for f in dict.fromkeys(wanted) if f.key not in self._facts]
        if missing:
            self._facts.update(self._probe(missing))
        return tuple(f.parse(self._facts[f.key]) for f in wanted)

    def _probe(self, facts):
        """The :class:`facts.Answer` of each of ``facts``, by key: one command for all of them."""
        return F.parse_batch(self.sudo(F.batch_script(facts), what="probe"), facts)

    def fact(self, wanted):
        """The parsed value of one fact (see :meth:`facts`)."""
        [value] = self.facts(wanted)
        return value

    def private_ip(self):
        """The address other cluster nodes use for this host: the one we reached
        it at when the host owns it (lab, VPN), else its first own address."""
        own = self.fact(F.addresses())
        if self.connection.host in own:
            return self.connection.host
        if not own:
            raise HubswarmError(f"{self.name} reports no IP address (hostname -I)")
        return own[0]

    @property
    def knows_facts(self):
        """False before the first probe and after a change."""
        return bool(self._facts)

    def forget(self, *stale):
        """Drop the cached ``stale`` facts (all of them when none is named): the host has changed."""
        if not stale:
            self._facts.clear()
        for fact in stale:
            self._facts.pop(fact.key, None)

    # --- changes ----------------------------------------------------------

    def ensure(self, what, script, stdin=None):
        """Run ``script`` (a change the caller found needed) as root, unless in check mode.

        An empty script means nothing to do. ``stdin`` (text, a binary file
        object, or a callable returning one, opened only when the change runs)
        feeds the script. Returns True when a change was
        made (or would be, in check mode).
        """

        def apply():
            self.sudo(CHANGE_LOCK + script, stdin=stdin() if callable(stdin) else stdin, what=what)
            self.forget()

        return super().ensure(what, script and apply)

    def ensure_dir(self, path, mode="755", owner="root", group="root"):
        state = self.fact(F.dir_state(path))
        if state == f"{mode} {owner} {group}":
            return False
        q = shlex.quote(path)
        return self.ensure(
            f"make directory {path} ({mode} {owner}:{group})",
            f"install -d -m {shlex.quote(mode)} -o {shlex.quote(owner)} -g {shlex.quote(group)} {q}",
        )

    def ensure_file(self, path, content, mode="644", owner="root", group="root", secret=False, previous=None):
        """Write ``content`` to ``path`` atomically when it or its mode/owner differ.

        ``content`` is text, or bytes (shown by size only). ``secret`` files show only
        which lines changed, never their values. ``previous``: where to keep the file
        as it was, for a caller that checks the new one and puts the old one back if
        the check fails.
        """
        state = self.fact(F.file_state(path))
        data = content if isinstance(content, bytes) else content.encode()
        wanted_sha = hashlib.sha256(data).hexdigest()
        if state == f"{wanted_sha} {mode} {owner} {group}":
            return False
        if self.check and state.split(" ")[:1] != [wanted_sha] and isinstance(content, str):
            old = self.fact(F.file_content(path))
            self.note(f"change {path}:\n" + file_diff(path, old, content, secret))
        q = shlex.quote(path)
        keep = ""
        if previous:
            p = shlex.quote(previous)
            keep = f"rm -f {p}; if [ -e {q} ]; then cp -p {q} {p}; fi; "
        script = (
            f'set -e; d=$(dirname {q}); t=$(mktemp "$d/.hubswarm.XXXXXX"); '
            f'trap \'rm -f "$t"\' EXIT; cat > "$t"; '
            f'chown {shlex.quote(owner + ":" + group)} "$t"; chmod {shlex.quote(mode)} "$t"; '
            f'{keep}mv -f "$t" {q}; trap - EXIT'
        )
        self.written.add(path)
        return self.ensure(f"write {path} ({mode} {owner}:{group})", script, stdin=data)


def file_diff(path, old, new, secret=False):
    """A unified diff of a file's change; values hidden when ``secret``."""
    if secret:
        old, new = _hide_values(old), _hide_values(new, changed_from=old)
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), f"{path} (now)", f"{path} (wanted)", lineterm="")
    return mask("\n".join(lines) or "(mode or owner only)")


def _values(text):
    return dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)


def _hide_values(text, changed_from=None):
    """``KEY=value`` lines with values masked; with ``changed_from``, a value that
    differs there is marked, so the diff still shows that its line changed."""
    before = _values(changed_from) if changed_from is not None else None
    hidden = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            changed = before is not None and before.get(key) != value
            line = f"{key}={MASK}" + (" (changed)" if changed else "")
        hidden.append(line)
    return "\n".join(hidden)
