"""Shared homes: EFS over NFS on every node, users' homes and starter notebooks on it."""

import io
import shlex
from pathlib import Path

from ..core import HubswarmError, facts, render, step
from ..core.archives import folder_archive, manifest_fact, unpack_script
from ..core.services import UNIT_DIR, ensure_installed
from ..core.templates import file_text
from ..settings.kinds import NO_EFS
from .packages import APT, DNF, ensure_packages

NFS_PACKAGES = {APT: ["nfs-common"], DNF: ["nfs-utils"]}
# The original deployment's mount options, plus _netdev so boot waits for the network.
NFS_OPTIONS = "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,_netdev"
HOME_TOOL = "/usr/local/sbin/hubswarm-home"
# The home tool's stamp (STAMP there), in the homes folder.
SYNCED_STAMP = ".hubswarm-notebooks-synced"
# The mark of the homes storage (MARKER in the home tool): homes are made only where it is.
HOMES_MARKER = ".hubswarm-homes"
MARKER_TEXT = "The homes of a hubswarm cluster: hubswarm makes homes only on the storage that holds this file.\n"


def mount_fact(path):
    return facts.Fact(f"mount:{path}", f"findmnt -n -o SOURCE,FSTYPE --mountpoint {shlex.quote(path)}")


def fstab_line(efs, path):
    return f"{efs}:/ {path} nfs4 {NFS_OPTIONS} 0 0"


def fstab_fact(path):
    # The path reaches awk through its environment: never inside the program text,
    # and (unlike awk -v) with no backslash escapes processed; compared as a string.
    return facts.Fact(
        f"fstab:{path}", f'HUBSWARM_PATH={shlex.quote(path)} awk \'$2 "" == ENVIRON["HUBSWARM_PATH"]\' /etc/fstab'
    )


def mount_commands(efs, path, fstab_line_now, docker_active):
    """Commands that record the mount in fstab (once) and mount it, restarting Docker
    so its bind mounts see the shared homes."""
    q = shlex.quote(path)
    commands = [f"install -d {q}"]
    if not fstab_line_now:
        commands.append(f"echo {shlex.quote(fstab_line(efs, path))} >> /etc/fstab")
    commands.append(f"mount {q}")
    if docker_active:
        commands.append("systemctl restart docker")
    return " && ".join(commands)


def storage_preflight(host):
    """Nothing mounted at the homes path and no file system to mount: stop before any change."""
    path = host.config.homes_path
    if not host.config.efs and not host.fact(mount_fact(path)):
        raise HubswarmError(
            f"{path} is not mounted on {host.name} and no file system is configured: "
            "set HUBSWARM_EFS to the EFS DNS name or IP (or 'none' for homes on the hub only)"
        )


@step(
    "mount-efs",
    probes=lambda host: [mount_fact(host.config.homes_path), fstab_fact(host.config.homes_path)],
    preflight=storage_preflight,
)
def mount_efs(host):
    """Mount the shared file system (EFS over NFS 4.1) at the homes path, recorded in /etc/fstab once."""
    path, efs = host.config.homes_path, host.config.efs
    if host.fact(mount_fact(path)):
        return  # mounted already (in the lab, the shared folder stands in)
    if efs == NO_EFS:
        host.note(f"{path} is not shared storage (HUBSWARM_EFS=none): homes stay on this node")
        return host.ensure_dir(path)
    storage_preflight(host)
    ensure_packages(host, NFS_PACKAGES)
    docker = host.fact(facts.systemd_unit("docker"))
    host.ensure(f"mount {efs} at {path}", mount_commands(efs, path, host.fact(fstab_fact(path)), docker.running))


def marker_path(config):
    return f"{config.homes_path}/{HOMES_MARKER}"


def marker_probes(host):
    return [facts.file_state(marker_path(host.config)), mount_fact(host.config.homes_path)]


def mark_homes(host):
    """Mark the homes storage, once it is mounted (or the homes stay on this node: HUBSWARM_EFS=none);
    a hub whose storage is not mounted is told to mount it, and nothing is marked."""
    config = host.config
    if host.fact(facts.file_state(marker_path(config))):
        return
    # (In check mode, mount-efs just before would have mounted it.)
    if config.efs != NO_EFS and not host.check and not host.fact(mount_fact(config.homes_path)):
        raise HubswarmError(f"{config.homes_path} is not mounted on {host.name}: mount it (fab mount-efs)")
    host.ensure_file(marker_path(config), MARKER_TEXT)


@step(
    "homes",
    probes=lambda host: [
        *marker_probes(host),
        facts.file_state(HOME_TOOL),
        facts.dir_state(f"{host.config.srv}/notebooks"),
    ],
)
def homes(host):
    """Mark the homes storage (mounted by mount-efs just before), then install the tool that
    makes users' homes on it (stable ids, starter notebooks) on first spawn."""
    mark_homes(host)
    host.ensure_file(HOME_TOOL, file_text("hubswarm-home"), mode="755")
    host.ensure_dir(f"{host.config.srv}/notebooks")


WATCH_TOOL = "/usr/local/sbin/hubswarm-homes-watch"
WATCH_SERVICE = "hubswarm-homes-watch.service"
WATCH_UNIT = f"{UNIT_DIR}/{WATCH_SERVICE}"


@step(
    "homes-watch",
    probes=lambda host: [facts.file_state(WATCH_TOOL), facts.file_state(WATCH_UNIT), facts.systemd_unit(WATCH_SERVICE)],
)
def homes_watch(host):
    """Keep this node's homes probe stopped while the homes storage is missing here, so that
    the hub keeps new notebooks off it (files/hubswarm-homes-watch)."""
    files = {
        WATCH_TOOL: (file_text("hubswarm-homes-watch"), "755"),
        WATCH_UNIT: (render(f"{WATCH_SERVICE}.j2", mark=marker_path(host.config)), "644"),
    }
    ensure_installed(host, WATCH_SERVICE, files)


def notebooks_archive(folder):
    """(manifest, tar bytes) of a local notebooks folder; the manifest lists
    ``sha256  ./path`` lines as ``sha256sum`` prints them on the hub."""
    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    return folder_archive(files, prefix="./")


def unsyncable(relative):
    """Why a starter notebook's file name cannot be synced (sha256sum's manifest and
    rsync's file lists are line-based), or ""."""
    if "\n" in relative or "\r" in relative:
        return "has a line break"
    if "\\" in relative:
        return "has a backslash"
    if any(ord(c) < 32 or ord(c) == 127 for c in relative):
        return "has a control character"
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        return "is not UTF-8"
    return ""


def read_notebooks(config):
    folder = Path(config.notebooks)
    if not folder.is_dir():
        raise HubswarmError(f"{folder} not found: put the starter notebooks in it (see notebooks/)")
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        why = unsyncable(relative)
        if why:
            raise HubswarmError(f"{folder}: the file name {relative!r} {why}, which cannot be synced: rename it")
    return notebooks_archive(folder)


def home_tool(config, *args):
    """The home tool run with ``args``, told where the homes and the hub's starter notebooks are."""
    return (
        f"HUBSWARM_HOMES={shlex.quote(config.homes_path)} "
        f"HUBSWARM_NOTEBOOKS={shlex.quote(config.srv + '/notebooks')} {shlex.join([HOME_TOOL, *args])}"
    )


def synced_fact(config):
    """The manifest of the starter notebooks every home has had, as the home tool's sync
    records it once every home has them ("" before the first sync)."""
    return facts.file_content(f"{config.homes_path}/{SYNCED_STAMP}")


@step(
    "sync-notebooks",
    needs=read_notebooks,
    probes=lambda host: [manifest_fact(f"{host.config.srv}/notebooks"), synced_fact(host.config)],
)
def sync_notebooks(host, archive):
    """Push the local notebooks folder to the hub, then copy new and changed ones into every home."""
    manifest, tar = archive
    folder = f"{host.config.srv}/notebooks"
    if host.fact(manifest_fact(folder)) != manifest:
        host.ensure(f"upload starter notebooks to {folder}", unpack_script(folder), stdin=lambda: io.BytesIO(tar))
    # The stamp, not the homes, says whether they have these notebooks: one file read,
    # however many homes (and in check mode, the notebooks about to be uploaded count).
    if host.fact(synced_fact(host.config)) != manifest:
        host.ensure(
            "copy new and changed starter notebooks into every home", f"{home_tool(host.config, 'sync')} >/dev/null"
        )
