"""Shared storage: the EFS mount, the notebooks archive, sync-notebooks' plan."""

import hashlib
import io
import subprocess
import tarfile

import pytest

from fakehost import DEBIAN_12, parsed
from tasks import storage
from tasks.core import HubswarmError

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
    host, runner = make_host({"os-release": DEBIAN_12, "unit:docker": "enabled\nactive"})
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


def test_sync_notebooks_uploads_then_updates_homes(make_host):
    host, runner = make_host({"homes-sync": "alice: 1 notebook(s)\n"})
    storage.sync_notebooks(host, ("abc  ./welcome.ipynb\n", b"TAR"))
    assert runner.calls[0].script.startswith("rm -rf /srv/jupyterhub/notebooks.new && ")
    assert runner.calls[0].stdin is not None
    assert runner.commands[1] == (
        "HUBSWARM_HOMES=/mnt/nfs/home HUBSWARM_NOTEBOOKS=/srv/jupyterhub/notebooks "
        "/usr/local/sbin/hubswarm-home sync >/dev/null"
    )


def test_sync_notebooks_in_sync_does_nothing(make_host):
    host, runner = make_host({"manifest:/srv/jupyterhub/notebooks": "abc  ./welcome.ipynb\n", "homes-sync": ""})
    storage.sync_notebooks(host, ("abc  ./welcome.ipynb\n", b"TAR"))
    assert runner.commands == []
