"""The hub's state, backed up to this machine and restored onto a rebuilt hub.

What a hub cannot be rebuilt without: its database (users, admin flags, tokens,
login sessions; copied with sqlite's online backup, consistent under the running
hub), the cookie secret (so login cookies stay valid), the proxy's token, the
userlist and env file it runs with, and the users' numeric ids from the shared
storage (the owners of their homes).
"""

import hashlib
import io
import os
import shlex
import tarfile
import time
from pathlib import Path

from fabric import task

from ..cli.invocation import hub_for, run_of
from ..core import HubswarmError, facts, fail, run_on, run_steps, step, stop_if_failed
from ..hub import jupyterhub

PROJECT = Path(__file__).resolve().parents[2]
DATABASE = "jupyterhub.sqlite"
# Archive member: (folder setting, file name there, mode).
MEMBERS = {
    DATABASE: ("srv", DATABASE, "600"),
    "cookie_secret": ("srv", "cookie_secret", "600"),
    "proxy.env": ("srv", "proxy.env", "600"),
    "userlist": ("srv", "userlist", "600"),
    "env": ("srv", "env", "600"),
    "hubswarm-uids": ("homes_path", ".hubswarm-uids", "644"),
}
UIDS = "hubswarm-uids"
# sqlite's online backup: a consistent copy while the hub writes.
ONLINE_BACKUP = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(d := sqlite3.connect(sys.argv[2])); d.close()"


def member_path(config, member):
    folder, name, _ = MEMBERS[member]
    return f"{config[folder]}/{name}"


def backup_script(config):
    """Prints a gzipped tar of every member the hub has (none is required)."""
    q = {m: shlex.quote(member_path(config, m)) for m in MEMBERS}
    copies = [
        f"if [ -e {q[DATABASE]} ]; then {shlex.quote(config.venv)}/bin/python -c {shlex.quote(ONLINE_BACKUP)} "
        f'{q[DATABASE]} "$d/{DATABASE}"; fi'
    ]
    copies += [f'if [ -e {q[m]} ]; then cp {q[m]} "$d/{m}"; fi' for m in MEMBERS if m != DATABASE]
    return (
        "set -e; umask 077; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; "
        + "; ".join(copies)
        + '; tar -C "$d" -czf - --owner=0 --group=0 .'
    )


def archive_members(data):
    """{member: bytes} of a backup archive; one-line error for anything else in it."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            found = {}
            for entry in tar.getmembers():
                name = entry.name.removeprefix("./")
                if entry.isdir() and name in ("", "."):
                    continue
                if name not in MEMBERS or not entry.isfile():
                    raise HubswarmError(f"unexpected {entry.name!r} in the archive: is it a hubswarm backup?")
                found[name] = tar.extractfile(entry).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise HubswarmError(f"not a readable backup archive ({exc})") from None
    if DATABASE not in found:
        raise HubswarmError(f"the archive has no {DATABASE}: is it a hubswarm backup?")
    return found


def write_archive(folder, cluster, data, now=None):
    """Write ``data`` as a new 0600 archive in ``folder`` (0700), atomically; its path."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    path = folder / f"hubswarm-{cluster}-{stamp}.tar.gz"
    temporary = folder / f".{path.name}.partial"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
    return path


@step("backup")
def read_backup(host):
    """The hub's state as a gzipped tar, or None in check mode (it only reads: the hub keeps running)."""
    if host.check:
        host.note("read the hub's state into a local archive")
        return None
    return host.sudo(backup_script(host.config), what="backing up the hub", binary=True)


# What a restore puts back: the hub's state. The archive's env and userlist stay in it: the
# operator's current settings (.env, HUBSWARM_USERLIST) are what setup-hub wrote.
STATE = (DATABASE, "cookie_secret", "proxy.env", UIDS)
CONFIGURED = ("env", "userlist")


def merged_uids(current, archived):
    """The ids file a restore leaves: every line the shared storage has (it outlived the
    hub), then the archive's users it does not know, with an id no one there has."""
    lines = [line for line in current.splitlines() if len(line.split()) == 2]
    names, ids = {line.split()[0] for line in lines}, {line.split()[1] for line in lines}
    for line in archived.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] not in names and words[1] not in ids:
            lines.append(line)
            names.add(words[0])
            ids.add(words[1])
    return "".join(f"{line}\n" for line in lines)


def restore_probes(host):
    return [
        facts.systemd_unit("jupyterhub"),
        *(facts.dir_state(host.config[folder]) for folder in ("srv", "homes_path")),
        *(facts.file_state(member_path(host.config, m)) for m in STATE),
        facts.file_content(member_path(host.config, UIDS)),
    ]


@step("restore", probes=restore_probes)
def restore_state(host, members):
    """Put the archive's state in place: the ids merged into those on the shared storage,
    the rest as archived; the hub is stopped first when its database or secrets change
    under it."""
    config = host.config
    current = host.fact(facts.file_content(member_path(config, UIDS))) if UIDS in members else ""
    wanted = {m: members[m] for m in STATE if m in members}
    if UIDS in wanted:
        wanted[UIDS] = merged_uids(current, members[UIDS].decode(errors="replace")).encode()
    changed = [
        m for m in wanted if host.fact(facts.file_state(member_path(config, m))).split(" ")[:1] != [sha(wanted[m])]
    ]
    kept = [m for m in CONFIGURED if m in members]
    if changed:
        host.note(
            f"restore {', '.join(changed)} from the archive"
            + (" (its ids merged into the shared storage's)" if UIDS in changed else "")
            + (f"; {' and '.join(kept)} left as configured (.env, HUBSWARM_USERLIST)" if kept else "")
        )
    if any(MEMBERS[m][0] == "srv" for m in changed) and host.fact(facts.systemd_unit("jupyterhub")).running:
        host.ensure("stop jupyterhub to restore its state (start it with fab start-hub)", "systemctl stop jupyterhub")
    if DATABASE in changed:
        # A WAL journal the old database left (a crashed hub) must not replay onto the restored
        # one; without the stamp of the version that last ran, the next start upgrades the
        # restored database (made by an older JupyterHub, perhaps) before the hub opens it.
        stale = [f"{member_path(config, DATABASE)}-{suffix}" for suffix in ("wal", "shm")]
        stale.append(f"{config['srv']}/{jupyterhub.DB_VERSION}")
        host.ensure(
            "remove the old database's journal and version stamp",
            "rm -f -- " + " ".join(shlex.quote(path) for path in stale),
        )
    # Each folder once: a write drops the cached facts, a second check would probe again.
    for folder in sorted({MEMBERS[m][0] for m in wanted}):
        host.ensure_dir(config[folder], mode="700" if folder == "srv" else "755")
    for member, data in wanted.items():
        host.ensure_file(member_path(config, member), data, mode=MEMBERS[member][2], secret=True)


def sha(data):
    return hashlib.sha256(data).hexdigest()


@task(help={"to": "the folder the archive goes to (default: backups/ in the clone)"})
def backup(c, to=None):
    """Back up the hub's state to a local, timestamped, 0600 archive: its database (sqlite's
    online backup), cookie secret, proxy token, userlist, env file, and the users' ids.

    The hub keeps running. Example: fab backup   (restore with: fab restore --archive PATH)
    """
    run = run_of(c)
    data = run_on(hub_for(c), read_backup)
    if data is not None:
        path = write_archive(Path(to) if to else PROJECT / "backups", run.config.cluster, data)
        print(f"backup: {path} ({len(data)} bytes, 0600)")


@task(help={"archive": "a fab backup archive"})
def restore(c, archive):
    """Put a backup's state onto the hub (a rebuilt one, after setup-hub): database, cookie
    secret, proxy token, users' ids (merged into those on the shared storage: a home keeps
    its owner). The archive's env file and userlist are left: the current settings stay.
    Then run fab start-hub; an archive from an older JupyterHub is upgraded as it starts.

    The archive is read and checked here before the hub is touched; files that are
    already as in the archive are left alone. Example: fab restore --archive backups/hubswarm-....tar.gz
    """
    run_of(c)
    try:
        members = archive_members(Path(archive).expanduser().read_bytes())
    except OSError as exc:
        fail(f"--archive {archive}: {exc.strerror}")
    except HubswarmError as exc:
        fail(f"--archive {archive}: {exc}")
    hub = hub_for(c)
    stop_if_failed(run_steps([hub], [restore_state.bind(members)]))
