"""Shared storage: the EFS mount, the notebooks archive, sync-notebooks' plan."""

import hashlib
import io
import subprocess
import tarfile

import pytest

from fakehost import DEBIAN_12, parsed, unit_info
from tasks.core import HubswarmError
from tasks.core import facts as F
from tasks.node import storage

EFS = "fs-1.efs.us-west-2.amazonaws.com"


def test_fstab_line_uses_the_original_options():
    assert storage.fstab_line(EFS, "/mnt/nfs/home") == (
        f"{EFS}:/ /mnt/nfs/home nfs4 nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,_netdev 0 0"
    )


@pytest.mark.parametrize(
    "fstab, docker_active, expected",
    [
        ("", True, ["install -d /mnt/nfs/home", "echo", "mount /mnt/nfs/home", "systemctl restart docker"]),
        ("already there", False, ["install -d /mnt/nfs/home", "mount /mnt/nfs/home"]),
    ],
)
def test_mount_commands(fstab, docker_active, expected):
    fstab_line = parsed(storage.fstab_fact("/mnt/nfs/home"), fstab)
    commands = storage.mount_commands(EFS, "/mnt/nfs/home", fstab_line, docker_active).split(" && ")
    assert [c.split(" '")[0] for c in commands] == expected


def test_mounted_already_is_ok(make_host):
    host, runner = make_host({"mount:/mnt/nfs/home": "hubswarm-lab-home ext4"})
    storage.mount_efs(host)
    assert runner.commands == [] and host.record.changes == []


def test_first_mount_on_debian(make_host):
    host, runner = make_host({"os-release": DEBIAN_12, "unit:docker": unit_info("enabled", "active")})
    storage.mount_efs(host)
    assert "nfs-common" in runner.commands[0]
    assert runner.commands[1].endswith("mount /mnt/nfs/home && systemctl restart docker")


def test_no_efs_configured_is_a_one_line_error(make_host):
    host, _ = make_host({}, efs="")
    with pytest.raises(HubswarmError, match="set HUBSWARM_EFS"):
        storage.mount_efs(host)


def test_manifest_matches_sha256sum_on_a_host(tmp_path):
    (tmp_path / "week1").mkdir()
    (tmp_path / "welcome.ipynb").write_text("{}\n")
    (tmp_path / "week1" / "intro.ipynb").write_text('{"a": 1}\n')
    manifest, tar = storage.notebooks_archive(tmp_path)
    probe = storage.manifest_fact(str(tmp_path)).command
    assert subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout == manifest
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        assert sorted(archive.getnames()) == ["week1/intro.ipynb", "welcome.ipynb"]
    assert hashlib.sha256(b"{}\n").hexdigest() in manifest


NOTEBOOKS = "abc  ./welcome.ipynb\n"  # the local notebooks' manifest
OLD = "old  ./welcome.ipynb\n"
HUB_NOTEBOOKS = "manifest:/srv/jupyterhub/notebooks"
STAMP = f"content:/mnt/nfs/home/{storage.SYNCED_STAMP}"
UPLOAD = "upload starter notebooks to /srv/jupyterhub/notebooks"
SYNC = "copy new and changed starter notebooks into every home"
COMMANDS = {
    UPLOAD: storage.unpack_script("/srv/jupyterhub/notebooks"),
    SYNC: "HUBSWARM_HOMES=/mnt/nfs/home HUBSWARM_NOTEBOOKS=/srv/jupyterhub/notebooks "
    "/usr/local/sbin/hubswarm-home sync >/dev/null",
}


@pytest.mark.parametrize(
    "hub, stamp, changes",
    [
        pytest.param(NOTEBOOKS, NOTEBOOKS, [], id="converged"),
        pytest.param(OLD, OLD, [UPLOAD, SYNC], id="notebooks changed"),
        # An existing deployment's first run since the stamp: every home synced once, then stamped.
        pytest.param(NOTEBOOKS, None, [SYNC], id="no stamp yet"),
        # The last run uploaded them, then stopped (or failed) before every home had them.
        pytest.param(NOTEBOOKS, OLD, [SYNC], id="sync interrupted"),
        # The hub's copy was edited by hand: put back; the homes have had these already.
        pytest.param(OLD, NOTEBOOKS, [UPLOAD], id="hub copy drifted"),
    ],
)
@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_sync_notebooks(make_host, hub, stamp, changes, check):
    """Probe answers in (the hub's notebooks, the homes' stamp), changes out; check mode
    predicts the same changes (the stamp is compared with the local notebooks) and runs none."""
    host, runner = make_host({HUB_NOTEBOOKS: hub, STAMP: stamp}, check=check)
    storage.sync_notebooks(host, (NOTEBOOKS, b"TAR"))
    assert host.record.changes == changes
    sent = [] if check else changes
    assert runner.commands == [COMMANDS[what] for what in sent]
    assert [c.stdin for c in runner.calls] == ["TAR" if what == UPLOAD else None for what in sent]


def test_a_no_op_reads_the_stamp_not_the_homes(make_host):
    """One probe, of the hub's notebooks and the stamp: nothing runs in (or lists) the homes."""
    host, runner = make_host({HUB_NOTEBOOKS: NOTEBOOKS, STAMP: NOTEBOOKS})
    probes = storage.sync_notebooks.probes(host)
    host.facts(*probes)
    storage.sync_notebooks(host, (NOTEBOOKS, b"TAR"))
    assert runner.probes == [[HUB_NOTEBOOKS, STAMP]] and runner.calls == []
    assert storage.HOME_TOOL not in F.batch_script(probes)
    assert storage.synced_fact(host.config).command == "cat /mnt/nfs/home/.hubswarm-notebooks-synced"
