"""fab backup and fab restore: the archive's making in real bash (a live sqlite database
included), its checking before any host is touched, and the restore step on a fake hub."""

import io
import sqlite3
import subprocess
import sys
import tarfile

import pytest

from fakehost import hub_config, unit_info
from tasks.core import HubswarmError
from tasks.ops import backup

FILES = {"cookie_secret": b"\x00\x01secret", "proxy.env": b"CONFIGPROXY_AUTH_TOKEN=abc\n", "userlist": b"a@x.io\n"}


@pytest.fixture
def hub_state(tmp_path):
    """A hub's srv, venv and homes in ``tmp_path``: a database with one user, the files, the ids."""
    srv, venv, homes = tmp_path / "srv", tmp_path / "venv", tmp_path / "homes"
    for folder in (srv, venv / "bin", homes):
        folder.mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    database = sqlite3.connect(srv / backup.DATABASE)
    database.execute("create table users (name text)")
    database.execute("insert into users values ('alice')")
    database.commit()
    for name, data in FILES.items():
        (srv / name).write_bytes(data)
    (homes / ".hubswarm-uids").write_text("alice 10001\n")
    return hub_config(srv=str(srv), venv=str(venv), homes_path=str(homes)), database


def test_the_archive_holds_a_consistent_copy_and_every_file(hub_state, tmp_path):
    config, live = hub_state
    live.execute("insert into users values ('bob')")  # uncommitted: the hub is writing
    data = subprocess.run(["bash", "-c", backup.backup_script(config)], capture_output=True, check=True).stdout
    members = backup.archive_members(data)
    assert sorted(members) == sorted([backup.DATABASE, *FILES, "hubswarm-uids"])  # no env file on this hub
    assert {name: members[name] for name in FILES} == FILES
    assert members["hubswarm-uids"] == b"alice 10001\n"
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(members[backup.DATABASE])
    assert sqlite3.connect(copy).execute("select name from users").fetchall() == [("alice",)]


def tar_of(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data, words",
    [
        (tar_of({"./jupyterhub.sqlite": b"db", "../../etc/passwd": b"x"}), "unexpected '../../etc/passwd'"),
        (tar_of({"./jupyterhub.sqlite": b"db", "./userlist": None}), "unexpected './userlist'"),  # a link
        (tar_of({"./userlist": b"a@x.io\n"}), "has no jupyterhub.sqlite"),
        (b"not a tar at all", "not a readable backup archive"),
    ],
)
def test_a_bad_archive_is_refused_in_one_line(data, words):
    with pytest.raises(HubswarmError, match=words):
        backup.archive_members(data)


def test_the_archive_file_is_0600_in_a_0700_folder(tmp_path):
    path = backup.write_archive(tmp_path / "backups", "c1", b"data", now=0)
    assert path.name == "hubswarm-c1-19700101T000000Z.tar.gz" and path.read_bytes() == b"data"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


MEMBERS = {backup.DATABASE: b"db", "cookie_secret": b"secret", "hubswarm-uids": b"alice 10001\n"}


def restored(make_host, answers, check=False):
    host, runner = make_host(answers, check=check)
    host.run.recap.start(host.name, "restore", check)
    backup.restore_state(host, MEMBERS)
    return host, runner


def state_of(data, mode="600"):
    import hashlib

    return f"{hashlib.sha256(data).hexdigest()} {mode} root root"


def test_restore_onto_a_rebuilt_hub_stops_it_and_writes_everything(make_host):
    host, runner = restored(
        make_host, {"unit:jupyterhub": unit_info("enabled", "active"), "dir:/srv/jupyterhub": "700 root root"}
    )
    assert runner.commands[0] == "systemctl stop jupyterhub"
    # then the old database's WAL journal and version stamp go, before the restored database
    # is written: the next start upgrades it
    assert runner.commands[1] == (
        "rm -f -- /srv/jupyterhub/jupyterhub.sqlite-wal /srv/jupyterhub/jupyterhub.sqlite-shm"
        " /srv/jupyterhub/.db-version"
    )
    written = [call.command for call in runner.calls if "mktemp" in call.script]
    assert len(written) == 3
    assert [c.stdin for c in runner.calls if "mktemp" in c.script] == ["db", "secret", "alice 10001\n"]


RESTORED = {
    "unit:jupyterhub": unit_info("enabled", "active"),
    "dir:/srv/jupyterhub": "700 root root",
    "dir:/mnt/nfs/home": "755 root root",
    "file:/srv/jupyterhub/jupyterhub.sqlite": state_of(b"db"),
    "file:/srv/jupyterhub/cookie_secret": state_of(b"secret"),
    "file:/mnt/nfs/home/.hubswarm-uids": state_of(b"alice 10001\n", "644"),
}


def test_restore_again_changes_nothing(make_host):
    host, runner = restored(make_host, RESTORED)
    assert runner.calls == []


def test_restore_of_the_ids_only_leaves_the_hub_running(make_host):
    answers = {key: value for key, value in RESTORED.items() if not key.endswith(".hubswarm-uids")}
    host, runner = restored(make_host, answers)
    assert "systemctl stop jupyterhub" not in runner.commands and len(runner.calls) == 1


def test_restore_in_check_mode_says_what_it_would_do(make_host, recap_out):
    host, runner = restored(make_host, {"unit:jupyterhub": unit_info("enabled", "active")}, check=True)
    assert runner.calls == []
    assert "would stop jupyterhub to restore its state" in recap_out.getvalue()
    assert "would write /srv/jupyterhub/jupyterhub.sqlite (600 root:root)" in recap_out.getvalue()


@pytest.mark.parametrize(
    "current, archived, merged",
    [
        ("", "alice 10001\nbob 10002\n", "alice 10001\nbob 10002\n"),  # the storage lost its file
        ("alice 10001\nbob 10002\n", "alice 10001\nbob 10002\n", "alice 10001\nbob 10002\n"),
        # users added after the backup stay; the archive never takes their ids
        ("alice 10001\ncarol 10002\n", "alice 10001\nbob 10002\n", "alice 10001\ncarol 10002\n"),
        ("alice 10001\n", "alice 10001\nbob 10002\n", "alice 10001\nbob 10002\n"),
        ("alice 10005\n", "alice 10001\n", "alice 10005\n"),  # the storage's id wins
        ("garbage\nalice 10001\n", "x y z\n", "alice 10001\n"),
    ],
)
def test_a_restore_merges_the_ids_into_the_shared_storages(current, archived, merged):
    assert backup.merged_uids(current, archived) == merged


def test_a_restore_keeps_the_storages_ids_and_the_current_settings(make_host, recap_out):
    archive = {**MEMBERS, "env": b"OAUTH_CLIENT_SECRET=old\n", "userlist": b"old@example.com\n"}
    answers = {**RESTORED, "content:/mnt/nfs/home/.hubswarm-uids": "alice 10001\ncarol 10002\n"}
    answers["file:/mnt/nfs/home/.hubswarm-uids"] = state_of(b"alice 10001\ncarol 10002\n", "644")
    host, runner = make_host(answers)
    host.run.recap.start(host.name, "restore", False)
    backup.restore_state(host, {**archive, "hubswarm-uids": b"alice 10001\nbob 10002\n"})
    assert runner.calls == []  # carol keeps her id; bob's would be hers: left out
    host, runner = make_host({**answers, "file:/srv/jupyterhub/cookie_secret": state_of(b"other")})
    host.run.recap.start(host.name, "restore", False)
    backup.restore_state(host, archive)
    assert [c.stdin for c in runner.calls if "mktemp" in c.script] == ["secret"]  # no env, no userlist
    assert (
        "restore cookie_secret from the archive; env and userlist left as configured (.env, HUBSWARM_USERLIST)"
        in recap_out.getvalue()
    )


# --- the hub's own backups, into the shared storage -------------------------------------


def test_the_hubs_own_backups_keep_the_newest_in_a_private_folder(hub_state, tmp_path):
    """The timer's script in real bash, three times (a clock stub, one second apart), with
    KEEP=2: the two newest stay, 0600 in a 0700 folder, each a whole archive."""
    config, _ = hub_state
    config["backup_keep"] = "2"
    tool = tmp_path / "hubswarm-backup"
    tool.write_text(backup.backup_tool(config))
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "date").write_text(f'#!/bin/bash\nn=$(cat {tmp_path}/tick); printf "20260101T00000%sZ\\n" "$n"\n')
    (stubs / "date").chmod(0o755)
    env = {"PATH": f"{stubs}:/usr/bin:/bin"}
    for tick in range(3):
        (tmp_path / "tick").write_text(str(tick))
        subprocess.run(["bash", str(tool)], env=env, check=True, capture_output=True)
    folder = tmp_path / "homes" / ".hubswarm-backups"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["hubswarm-hubswarm-20260101T000001Z.tar.gz", "hubswarm-hubswarm-20260101T000002Z.tar.gz"]
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    for name in names:
        assert oct((folder / name).stat().st_mode & 0o777) == "0o600"
        assert backup.archive_members((folder / name).read_bytes())[backup.DATABASE]


STORED = "backups:/mnt/nfs/home/.hubswarm-backups"


def test_the_stored_archives_are_the_clusters_oldest_first():
    listing = (
        "200 10 hubswarm-hubswarm-20260101T000200Z.tar.gz\n"
        "100 10 hubswarm-hubswarm-20260101T000100Z.tar.gz\n"
        "150 10 .partial.abc\n150 10 hubswarm-other-20260101T000150Z.tar.gz\n150 10 notes.txt\n"
    )
    fact = backup.stored_fact(hub_config())
    assert fact.key == STORED
    assert fact.parse(backup.facts.Answer(0, listing)) == [
        ("hubswarm-hubswarm-20260101T000100Z.tar.gz", 10, 100),
        ("hubswarm-hubswarm-20260101T000200Z.tar.gz", 10, 200),
    ]
    assert fact.parse(backup.facts.Answer(1, "")) == []  # no folder yet


def test_restore_without_an_archive_reads_the_newest_stored_one(make_host):
    host, runner = make_host({})
    host.run.recap.start(host.name, "backups", False)
    runner.prints["cat --"] = "tar"
    name = "hubswarm-hubswarm-20260101T000200Z.tar.gz"
    assert backup.read_stored(host, name) == "tar"
    assert runner.commands == [f"cat -- /mnt/nfs/home/.hubswarm-backups/{name}"]


def archives(*stamps):
    return [(f"hubswarm-hubswarm-20260101T0{stamp}Z.tar.gz", 3, 0) for stamp in stamps]


@pytest.mark.parametrize(
    "stored, in_bucket, newest",
    [
        (archives("00100", "00200"), [], ("hubswarm-hubswarm-20260101T000200Z.tar.gz", "shared storage")),
        ([], archives("00100"), ("hubswarm-hubswarm-20260101T000100Z.tar.gz", "bucket")),
        # the same archive in both: the hub's copy, no download
        (
            archives("00200"),
            archives("00100", "00200"),
            ("hubswarm-hubswarm-20260101T000200Z.tar.gz", "shared storage"),
        ),
        # new shared storage, or its newest lost: the bucket's is newer
        (archives("00100"), archives("00100", "00300"), ("hubswarm-hubswarm-20260101T000300Z.tar.gz", "bucket")),
        ([], [], None),
    ],
    ids=["shared storage only", "bucket only", "both the same", "bucket newer", "none"],
)
def test_restore_without_an_archive_takes_the_newest_of_the_bucket_and_the_shared_storage(stored, in_bucket, newest):
    assert backup.newest_backup(stored, in_bucket) == newest


def in_place(config, **instead):
    import hashlib

    answers = {
        f"file:{path}": f"{hashlib.sha256(text.encode()).hexdigest()} {mode} root root"
        for path, (text, mode) in backup.backup_files(config).items()
    }
    answers["unit:hubswarm-backup.timer"] = unit_info("enabled", "active")
    return {**answers, **instead}


def test_a_new_hub_backs_itself_up_from_now_on(make_host):
    host, runner = make_host({})
    backup.scheduled_backups(host)
    assert [c.rsplit(" && ", 1)[-1] for c in runner.commands[3:]] == [
        "systemctl daemon-reload",
        "systemctl start hubswarm-backup.timer",
    ]
    assert "systemctl enable hubswarm-backup.timer" in runner.commands[4]
    host, runner = make_host(in_place(host.config))
    backup.scheduled_backups(host)
    assert runner.commands == []


def test_a_new_interval_restarts_the_timer_and_zero_stops_it(make_host):
    host, _ = make_host({})
    host, runner = make_host(
        in_place(host.config, **{f"file:{backup.UNIT_DIR}/{backup.BACKUP_TIMER}": "x 644 root root"})
    )
    backup.scheduled_backups(host)
    assert runner.commands[-2:] == ["systemctl daemon-reload", "systemctl restart hubswarm-backup.timer"]
    host, runner = make_host(in_place(host.config), backup_every="0")
    backup.scheduled_backups(host)
    assert runner.commands == ["systemctl disable --now hubswarm-backup.timer"]
