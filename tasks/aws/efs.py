"""EFS's automatic backups of the homes' file system (boto3 EFS, from this machine).

An EFS file system whose backup policy is ENABLED is backed up by AWS Backup every day, each
backup kept 35 days in the vault ``aws/efs/automatic-backup-vault`` (README: Running a term says
how to restore a student's folder from one). With the homes on EFS (HUBSWARM_EFS) and
HUBSWARM_EFS_BACKUPS on, the default, efs-backups turns that policy on when it is not; it never
turns it off. The file system's id and region come from its DNS name
(``fs-….efs.REGION.amazonaws.com``); for an IPv4 address, from the EFS file system of the
configured region that has a mount target at that address. Any other server cannot be checked:
one line says so, and how to turn the backups on by hand.
"""

import ipaddress
import re
from dataclasses import dataclass
from functools import cache, partial

from fabric import task

from ..cli import inventory
from ..cli.invocation import run_of
from ..core import HubswarmError, fail
from ..core.changes import recorded
from ..settings.kinds import NO_EFS
from .ec2 import in_one_line

# An EFS file system's DNS name, maybe the one of a mount target's zone (us-west-2a.fs-…).
DNS_NAME = re.compile(r"(?:[a-z0-9-]+\.)?(fs-[0-9a-f]+)\.efs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
# The backup policy's states in which AWS Backup backs the file system up, or soon will.
ON = ("ENABLED", "ENABLING")
ENABLED = {"Status": "ENABLED"}
PERMISSIONS = "elasticfilesystem:DescribeBackupPolicy and PutBackupPolicy"


@dataclass(frozen=True)
class FileSystem:
    id: str
    region: str


def homes_on_efs(config):
    """Whether HUBSWARM_EFS names a server for the homes (not unset, not `none`)."""
    return bool(config.efs) and config.efs != NO_EFS


def is_address(efs):
    try:
        ipaddress.IPv4Address(efs)
        return True
    except ValueError:
        return False


def named_file_system(efs):
    """The :class:`FileSystem` an EFS DNS name gives; None for anything else."""
    found = DNS_NAME.fullmatch(efs)
    return FileSystem(found.group(1), found.group(2)) if found else None


def file_system_at(client, address):
    """The id of the file system of ``client``'s region with a mount target at ``address``; None
    when none has."""
    for page in client.get_paginator("describe_file_systems").paginate():
        for each in page["FileSystems"]:
            targets = client.describe_mount_targets(FileSystemId=each["FileSystemId"])["MountTargets"]
            if any(target.get("IpAddress") == address for target in targets):
                return each["FileSystemId"]
    return None


def homes_file_system(config, client):
    """The homes' :class:`FileSystem`, from HUBSWARM_EFS; None when it names no EFS file system
    this machine can find (another NFS server). ``client(region)``: a boto3 EFS client."""
    named = named_file_system(config.efs)
    if named or not is_address(config.efs):
        return named
    found = file_system_at(client(config.region), config.efs)
    return FileSystem(found, config.region) if found else None


def unknown_line(config):
    """What to do when HUBSWARM_EFS names no EFS file system this machine can find."""
    where = (
        f"no EFS mount target of region {config.region} this machine's AWS credentials can see"
        if is_address(config.efs)
        else "not an EFS DNS name (fs-….efs.REGION.amazonaws.com)"
    )
    return (
        f"efs-backups: HUBSWARM_EFS {config.efs} is {where}: whether the homes are backed up cannot be checked; "
        "if it is EFS, set HUBSWARM_EFS to its DNS name, or turn its automatic backups on yourself (EFS console: "
        "the file system, Edit, Automatic backups; or aws efs put-backup-policy --file-system-id FS_ID "
        "--backup-policy Status=ENABLED)"
    )


def policy_status(client, file_system):
    """The file system's backup policy's status (ENABLED, ENABLING, DISABLED, DISABLING); None
    when it has none (never set: no backups)."""
    try:
        return client.describe_backup_policy(FileSystemId=file_system.id)["BackupPolicy"]["Status"]
    except client.exceptions.PolicyNotFound:
        return None
    except client.exceptions.FileSystemNotFound:
        raise HubswarmError(
            f"HUBSWARM_EFS: no file system {file_system.id} in region {file_system.region} of this AWS account: "
            "set the DNS name of the homes' file system"
        ) from None


def backups_state(config, client):
    """(the homes' :class:`FileSystem` or None, its backup policy's status or None); AWS's
    errors raised, an access denied with the permissions it needs."""
    from botocore.exceptions import ClientError  # here, not at the top: botocore slows every fab start

    try:
        file_system = homes_file_system(config, client)
        return file_system, file_system and policy_status(client(file_system.region), file_system)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if not code.startswith("AccessDenied"):
            raise
        raise HubswarmError(
            f"AWS: {code} ({exc.operation_name}): this machine's AWS credentials need {PERMISSIONS} (and "
            "DescribeFileSystems and DescribeMountTargets with an address in HUBSWARM_EFS), or set "
            "HUBSWARM_EFS_BACKUPS=0"
        ) from None


def turn_on(run, client):
    """EFS's automatic backups of the homes' file system turned on when they are not (in check
    mode: said); one line when HUBSWARM_EFS names no file system this machine finds.
    ``client(region)``: a boto3 EFS client."""
    client = cache(client)  # one a region
    file_system, status = backups_state(run.config, client)
    if file_system is None:
        run.recap.say(unknown_line(run.config))
        return
    with recorded(run, file_system.id, "efs-backups") as target:
        was = f"backup policy {status}" if status else "no backup policy yet"
        target.ensure(
            f"turn on EFS's automatic backups of {file_system.id} ({was})",
            status not in ON
            and partial(
                client(file_system.region).put_backup_policy, FileSystemId=file_system.id, BackupPolicy=ENABLED
            ),
        )


def homes_backups(c):
    """With the homes on EFS and HUBSWARM_EFS_BACKUPS on, its automatic backups (once a run)."""
    run = run_of(c)
    config = run.config
    if config.efs_backups and homes_on_efs(config) and "efs-backups" not in run.done:
        in_one_line(turn_on, run, partial(inventory.aws_client, config, "efs"))
        run.done.add("efs-backups")


@task
def efs_backups(c):
    """Turn on EFS's automatic backups of the homes' file system (HUBSWARM_EFS).

    From this machine with its AWS credentials: the file system's backup policy is
    set to ENABLED when it is not, so AWS Backup backs it up every day, each backup
    kept 35 days (README: Running a term, to restore a student's folder); never
    turned off. The file system is the one HUBSWARM_EFS's DNS name gives
    (fs-….efs.REGION.amazonaws.com), or, for an address, the one of
    AWS_DEFAULT_REGION with a mount target there; for another server, one line says
    the backups cannot be checked. setup-hub and deploy do this first unless
    HUBSWARM_EFS_BACKUPS=0; fab status shows whether they are on. Needs
    elasticfilesystem:DescribeBackupPolicy and PutBackupPolicy (with an address,
    DescribeFileSystems and DescribeMountTargets too).
    Example: fab efs-backups; fab check efs-backups
    """
    config = run_of(c).config
    if not homes_on_efs(config):
        fail(
            f"efs-backups: HUBSWARM_EFS is {config.efs or 'not set'}: the homes are on no EFS file system of "
            "hubswarm's to back up: set HUBSWARM_EFS to its DNS name"
        )
    if not config.efs_backups:
        fail("efs-backups: HUBSWARM_EFS_BACKUPS=0 leaves EFS's automatic backups as they are: unset it to turn them on")
    homes_backups(c)
