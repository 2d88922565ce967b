"""The hub's state, backed up to this machine and restored onto a rebuilt hub.

What a hub cannot be rebuilt without: its database (users, admin flags, tokens,
login sessions; copied with sqlite's online backup, consistent under the running
hub), the cookie secret (so login cookies stay valid), the proxy's token, the
userlist and env file it runs with, and the users' numeric ids from the shared
storage (the owners of their homes).

The hub also backs itself up on a timer, into the shared storage and, with
HUBSWARM_BACKUP_BUCKET, into S3 (:mod:`tasks.hubswarm_hub.backups`). This machine reads
the bucket with its own AWS credentials (listing, restoring, fab status): a lost hub
cannot be asked, and the hub's role needs no permission to read its backups back.
"""

import hashlib
import io
import os
import shlex
import tarfile
import time
from pathlib import Path

from fabric import task

from ..aws.ec2 import in_one_line
from ..cli import inventory
from ..cli.invocation import hub_for, run_of
from ..core import HubswarmError, facts, fail, render, run_on, run_steps, step, stop_if_failed
from ..core.services import UNIT_DIR, ensure_installed, stop_service
from ..hub import jupyterhub
from ..hub.aws_env import AWS_ENV
from ..hub.python_env import command_word
from ..hubswarm_hub.backups import archive_name, archive_pattern, bucket_archives, bucket_url, read_archive
from ..node import storage

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
    # (`command`: a venv path with a "=" in it is still the command, not an assignment)
    copies = [
        f"if [ -e {q[DATABASE]} ]; then command {shlex.quote(config.venv + '/bin/python')} -c {shlex.quote(ONLINE_BACKUP)} "
        f'{q[DATABASE]} "$d/{DATABASE}"; fi'
    ]
    copies += [f'if [ -e {q[m]} ]; then cp {q[m]} "$d/{m}"; fi' for m in MEMBERS if m != DATABASE]
    return (
        "set -e; umask 077; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; "
        + "; ".join(copies)
        + '; tar -C "$d" -czf - --owner=0 --group=0 .'
    )


# --- the hub's own backups, into the shared storage -------------------------------------

BACKUPS = ".hubswarm-backups"  # in the homes folder: outside every home (names never start with a dot)
BACKUP_TOOL = "/usr/local/sbin/hubswarm-backup"
BACKUP_SERVICE = "hubswarm-backup.service"
BACKUP_TIMER = "hubswarm-backup.timer"


def backups_folder(config):
    return f"{config.homes_path}/{BACKUPS}"


def upload_command(config):
    """Shell: puts the archive at "$archive" into HUBSWARM_BACKUP_BUCKET, keeping the newest
    HUBSWARM_BACKUP_KEEP there (:mod:`tasks.hubswarm_hub.backups`, in the hub's venv)."""
    return (
        f'{command_word(config.venv + "/bin/python")} -m hubswarm_hub.backups upload "$archive" '
        f"--bucket {shlex.quote(config.backup_bucket)} --cluster {shlex.quote(config.cluster)} "
        f"--keep {int(config.backup_keep)}\n"
    )


def backup_tool(config):
    """The script the hub's timer runs: one archive more in the shared storage (0600 in a
    0700 folder, written whole), then only the newest HUBSWARM_BACKUP_KEEP kept; with
    HUBSWARM_BACKUP_BUCKET, the same archive put into the bucket too."""
    folder = shlex.quote(backups_folder(config))
    name = shlex.quote(archive_name(config.cluster, "@"))
    pattern = shlex.quote(f"^{archive_pattern(config.cluster).pattern}$")
    return (
        "#!/bin/bash\n"
        "# hubswarm-backup, written by hubswarm (setup-hub): the hub's state into the shared storage.\n"
        "set -euo pipefail\n"
        "umask 077\n"
        f"folder={folder}\n"
        'install -d -m 700 "$folder"\n'
        'partial=$(mktemp "$folder/.partial.XXXXXX")\n'
        "trap 'rm -f \"$partial\"' EXIT\n"
        f'( {backup_script(config)} ) >"$partial"\n'
        f"name={name}\n"
        'archive="$folder/${name/@/$(date -u +%Y%m%dT%H%M%SZ)}"\n'
        'mv -f "$partial" "$archive"\n'
        f'ls -1 "$folder" | grep -E {pattern} | sort | head -n -{int(config.backup_keep)} |\n'
        '    while read -r old; do rm -f -- "$folder/$old"; done\n'
        + (upload_command(config) if config.backup_bucket else "")
    )


def stored_fact(config):
    """The cluster's archives in the shared storage: [(name, size, mtime)], oldest first."""
    folder = shlex.quote(backups_folder(config))
    pattern = archive_pattern(config.cluster)

    def parse(answer):
        found = []
        for line in answer.out.splitlines():
            words = line.split(" ", 2)
            if len(words) == 3 and words[0].isdigit() and words[1].isdigit() and pattern.fullmatch(words[2]):
                found.append((words[2], int(words[1]), int(words[0])))
        return sorted(found)

    return facts.Fact(f"backups:{backups_folder(config)}", f"cd {folder} 2>/dev/null && stat -c '%Y %s %n' -- *", parse)


def backup_files(config):
    """{path: (text, mode)} of the backup tool and its units."""
    units = {
        "homes": config.homes_path,
        "marker": storage.HOMES_MARKER,
        "tool": BACKUP_TOOL,
        "every": int(config.backup_every),
        "aws_env": AWS_ENV,
        "bucket": config.backup_bucket and bucket_url(config.backup_bucket),
    }
    return {
        BACKUP_TOOL: (backup_tool(config), "700"),
        f"{UNIT_DIR}/{BACKUP_SERVICE}": (render(f"{BACKUP_SERVICE}.j2", **units), "644"),
        f"{UNIT_DIR}/{BACKUP_TIMER}": (render(f"{BACKUP_TIMER}.j2", **units), "644"),
    }


def backup_probes(host):
    return [
        *(
            facts.file_state(path)
            for path in (BACKUP_TOOL, f"{UNIT_DIR}/{BACKUP_SERVICE}", f"{UNIT_DIR}/{BACKUP_TIMER}")
        ),
        facts.systemd_unit(BACKUP_TIMER),
    ]


@step("backups", probes=backup_probes)
def scheduled_backups(host):
    """Back the hub's state up by itself every HUBSWARM_BACKUP_EVERY seconds into the shared
    storage, and HUBSWARM_BACKUP_BUCKET (a systemd timer), keeping the newest
    HUBSWARM_BACKUP_KEEP archives in each."""
    every = int(host.config.backup_every)
    if not every:
        stop_service(host, BACKUP_TIMER)
        return
    timer = f"{UNIT_DIR}/{BACKUP_TIMER}"
    # The timer counts from its (re)start: only its own change restarts it.
    ensure_installed(
        host, BACKUP_TIMER, backup_files(host.config), restart_on=[timer], restarted=f"back up every {every} s from now"
    )


@step("backups", probes=lambda host: [stored_fact(host.config)])
def stored_backups(host):
    """The archives the hub took by itself, oldest first (see :func:`stored_fact`)."""
    return host.fact(stored_fact(host.config))


@step("backups")
def read_stored(host, name):
    """The bytes of the archive ``name`` the hub took by itself in the shared storage."""
    host.note(f"read {name}, the newest backup in the shared storage")
    return host.sudo(f"cat -- {shlex.quote(backups_folder(host.config) + '/' + name)}", binary=True)


SHARED, BUCKET = "shared storage", "bucket"


def newest_backup(stored, in_bucket):
    """(name, SHARED or BUCKET) of the newest of the hub's own archives (``stored``, ``in_bucket``:
    [(name, size, mtime)] oldest first); the shared storage's copy when both have it (no download);
    None when neither has one."""
    found = [(stored[-1][0], 1, SHARED)] if stored else []
    found += [(in_bucket[-1][0], 0, BUCKET)] if in_bucket else []
    if not found:
        return None
    name, _, where = max(found)
    return name, where


def bucket_backups(config):
    """The cluster's archives in HUBSWARM_BACKUP_BUCKET, oldest first, read with this machine's
    AWS credentials (s3:ListBucket); [] without a bucket."""
    if not config.backup_bucket:
        return []
    return bucket_archives(inventory.aws_client(config, "s3"), config.backup_bucket, config.cluster)


def read_newest(c, hub):
    """(name, bytes) of the newest archive the hub took by itself, in the bucket or the shared
    storage; one line when there is none."""
    config = run_of(c).config
    in_bucket = in_one_line(bucket_backups, config)
    newest = newest_backup(run_on(hub, stored_backups), in_bucket)
    if newest is None:
        where = backups_folder(config) + (f" or {bucket_url(config.backup_bucket)}" if config.backup_bucket else "")
        fail(f"restore: no backup in {where}: give --archive PATH (a fab backup archive)")
    name, where = newest
    if where == SHARED:
        return name, run_on(hub, read_stored.bind(name))
    print(f"restore: read {name}, the newest backup, from {bucket_url(config.backup_bucket)}", flush=True)
    return name, in_one_line(lambda: read_archive(inventory.aws_client(config, "s3"), config.backup_bucket, name))


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
    path = folder / archive_name(cluster, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))
    temporary = folder / f".{path.name}.partial"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
    return path


def members_to_restore(c, hub, archive=None):
    """{member: bytes} of ``archive`` (a local fab backup archive), else of the newest backup
    ``hub`` took by itself (:func:`read_newest`); one line when it is no backup."""
    if archive is None:
        archive, data = read_newest(c, hub)
    else:
        try:
            data = Path(archive).expanduser().read_bytes()
        except OSError as exc:
            fail(f"--archive {archive}: {exc.strerror}")
    try:
        return archive_members(data)
    except HubswarmError as exc:
        fail(f"{archive}: {exc}")


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


def print_backups(archives, where):
    for name, size, mtime in archives:
        print(f"{name}  {size} bytes  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(mtime))}")
    print(f"backup: {len(archives)} in {where}", flush=True)


@task(
    help={
        "to": "the folder the archive goes to (default: backups/ in the clone)",
        "list": "list the backups the hub took by itself (shared storage, bucket) instead",
    }
)
def backup(c, to=None, list=False):  # noqa: A002 - the option's name on the command line
    """Back up the hub's state to a local, timestamped, 0600 archive: its database (sqlite's
    online backup), cookie secret, proxy token, userlist, env file, and the users' ids.

    The hub keeps running. The hub also backs itself up into the shared storage every
    HUBSWARM_BACKUP_EVERY seconds, and into HUBSWARM_BACKUP_BUCKET: --list shows those
    (the bucket's read from this machine, with s3:ListBucket). Example: fab backup
    (restore with: fab restore --archive PATH, or fab restore for the newest of the hub's own)
    """
    run = run_of(c)
    if list:
        if run.config.backup_bucket:
            print_backups(in_one_line(bucket_backups, run.config), bucket_url(run.config.backup_bucket))
        stored = run_on(hub_for(c), stored_backups)
        if stored is not None:
            print_backups(stored, f"{backups_folder(run.config)} on the hub")
        return
    data = run_on(hub_for(c), read_backup)
    if data is not None:
        path = write_archive(Path(to) if to else PROJECT / "backups", run.config.cluster, data)
        print(f"backup: {path} ({len(data)} bytes, 0600)")


@task(
    help={"archive": "a fab backup archive (default: the newest backup the hub took, in the bucket or shared storage)"}
)
def restore(c, archive=None):
    """Put a backup's state onto the hub (a rebuilt one, after setup-hub): database, cookie
    secret, proxy token, users' ids (merged into those on the shared storage: a home keeps
    its owner). The archive's env file and userlist are left: the current settings stay.
    Then run fab start-hub; an archive from an older JupyterHub is upgraded as it starts.

    Without --archive, the newest backup the hub took by itself, in the shared storage or
    HUBSWARM_BACKUP_BUCKET (read from this machine: s3:ListBucket, s3:GetObject). The
    archive is read and checked before the hub is changed; files that are already as in the
    archive are left alone. Example: fab restore --archive backups/hubswarm-....tar.gz
    """
    run_of(c)
    hub = hub_for(c)
    stop_if_failed(run_steps([hub], [restore_state.bind(members_to_restore(c, hub, archive))]))
