"""efs-backups: EFS's automatic backups of the homes' file system, turned on from this machine
(moto's EFS has no PutBackupPolicy: a stand-in client for the change, moto for the reads), and
the row of fab status that says whether they are on."""

import io

import boto3
import pytest
from botocore.exceptions import ClientError
from invoke.exceptions import Exit

from fakehost import hub_config, invocation
from tasks.aws import efs
from tasks.core import Run
from tasks.core.recap import Recap
from tasks.ops import status

FS = "fs-0123456789abcdef0"
NAME = f"{FS}.efs.us-west-2.amazonaws.com"


def refusal(code, operation="DescribeBackupPolicy"):
    return {"Error": {"Code": code, "Message": f"{code} here"}}, operation


class FakeEFS:
    """An EFS client of one region holding ``policies`` ({file system id: status, or None: never
    set}); records the policies put."""

    class exceptions:  # noqa: N801 - as boto3 names it
        class PolicyNotFound(ClientError):
            pass

        class FileSystemNotFound(ClientError):
            pass

    def __init__(self, policies, refuse=None):
        self.policies, self.refuse, self.put = policies, refuse, []

    def describe_backup_policy(self, FileSystemId):  # noqa: N803 - boto3's names
        if self.refuse:
            raise ClientError(*refusal(self.refuse))
        if FileSystemId not in self.policies:
            raise self.exceptions.FileSystemNotFound(*refusal("FileSystemNotFound"))
        if self.policies[FileSystemId] is None:
            raise self.exceptions.PolicyNotFound(*refusal("PolicyNotFound"))
        return {"BackupPolicy": {"Status": self.policies[FileSystemId]}}

    def put_backup_policy(self, FileSystemId, BackupPolicy):  # noqa: N803
        self.put.append((FileSystemId, BackupPolicy))
        self.policies[FileSystemId] = BackupPolicy["Status"]
        return {"BackupPolicy": BackupPolicy}


def efs_backups(client, check=False, **config):
    """One efs-backups, EFS answering as ``client`` (in any region): its run and output."""
    run = Run(hub_config(**{"efs": NAME, **config}), check=check, recap=Recap(stream=io.StringIO()))
    regions = []
    efs.in_one_line(efs.turn_on, run, lambda region: regions.append(region) or client)
    return run, run.recap.stream.getvalue(), regions


def record(run):
    [found] = [r for r in run.recap.records if r.task == "efs-backups"]
    return found.host, found.status, found.changes


# --- which file system -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, found",
    [
        (NAME, efs.FileSystem(FS, "us-west-2")),
        ("fs-1a2b3c4d.efs.eu-central-1.amazonaws.com", efs.FileSystem("fs-1a2b3c4d", "eu-central-1")),
        (f"us-west-2a.{NAME}", efs.FileSystem(FS, "us-west-2")),  # a mount target's zone's name
        ("fs-1a2b3c4d.efs.cn-north-1.amazonaws.com.cn", efs.FileSystem("fs-1a2b3c4d", "cn-north-1")),
        ("nfs.example.com", None),
        ("fs-1a2b3c4d.efs.us-west-2.example.com", None),
        ("10.0.1.20", None),
    ],
)
def test_the_file_system_and_its_region_come_from_its_dns_name(setting, found):
    assert efs.named_file_system(setting) == found


def test_an_address_is_the_file_system_with_a_mount_target_there(aws):
    ec2 = boto3.client("ec2", region_name="us-west-2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    client = boto3.client("efs", region_name="us-west-2")
    other = client.create_file_system(CreationToken="other")["FileSystemId"]
    homes = client.create_file_system(CreationToken="homes", Backup=True)["FileSystemId"]
    client.create_mount_target(FileSystemId=other, SubnetId=subnet, IpAddress="10.0.1.10")
    client.create_mount_target(FileSystemId=homes, SubnetId=subnet, IpAddress="10.0.1.20")

    def efs_in(region):
        assert region == "us-west-2"  # the cluster's
        return client

    config = hub_config(efs="10.0.1.20")
    assert efs.backups_state(config, efs_in) == (efs.FileSystem(homes, "us-west-2"), "ENABLED")
    assert efs.backups_state(hub_config(efs="10.0.1.10"), efs_in) == (efs.FileSystem(other, "us-west-2"), None)
    assert efs.backups_state(hub_config(efs="10.0.1.99"), efs_in) == (None, None)


# --- the change ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "before, was",
    [(None, "no backup policy yet"), ("DISABLED", "backup policy DISABLED"), ("DISABLING", "backup policy DISABLING")],
)
def test_backups_off_are_predicted_then_turned_on_then_left_alone(before, was):
    client = FakeEFS({FS: before})
    line = f"turn on EFS's automatic backups of {FS} ({was})"

    check, output, regions = efs_backups(client, check=True)
    assert record(check) == (FS, "changed", [line])
    assert f"[{FS}] efs-backups: would {line}" in output
    assert client.put == [] and regions == ["us-west-2"]

    first, _, _ = efs_backups(client)
    assert record(first) == (FS, "changed", [line])
    assert client.put == [(FS, {"Status": "ENABLED"})]

    second, output, _ = efs_backups(client)
    assert record(second) == (FS, "ok", [])
    assert f"[{FS}] efs-backups: ok" in output
    assert len(client.put) == 1


@pytest.mark.parametrize("state", ["ENABLED", "ENABLING"])
def test_backups_on_or_turning_on_are_left_alone(state):
    client = FakeEFS({FS: state})
    assert record(efs_backups(client)[0]) == (FS, "ok", [])
    assert client.put == []


def test_the_file_systems_own_region_is_asked():
    name = "fs-1a2b3c4d.efs.eu-central-1.amazonaws.com"
    _, _, regions = efs_backups(FakeEFS({"fs-1a2b3c4d": "ENABLED"}), efs=name, region="us-west-2")
    assert set(regions) == {"eu-central-1"}


@pytest.mark.parametrize(
    "setting, where",
    [
        ("10.0.1.99", "no EFS mount target of region us-west-2 this machine's AWS credentials can see"),
        ("nfs.example.com", "not an EFS DNS name (fs-….efs.REGION.amazonaws.com)"),
    ],
)
def test_a_server_that_is_no_efs_file_system_is_one_line_and_no_change(aws, setting, where):
    client = boto3.client("efs", region_name="us-west-2")
    run = Run(hub_config(efs=setting), recap=Recap(stream=io.StringIO()))
    efs.in_one_line(efs.turn_on, run, lambda region: client)
    [line] = run.recap.stream.getvalue().splitlines()
    assert line.startswith(f"efs-backups: HUBSWARM_EFS {setting} is {where}: whether the homes are backed up cannot")
    assert "aws efs put-backup-policy --file-system-id FS_ID --backup-policy Status=ENABLED" in line
    assert run.recap.records == []


@pytest.mark.parametrize(
    "client, message",
    [
        (FakeEFS({}), f"^HUBSWARM_EFS: no file system {FS} in region us-west-2 of this AWS account: set the DNS"),
        (
            FakeEFS({FS: None}, refuse="AccessDeniedException"),
            "^AWS: AccessDeniedException \\(DescribeBackupPolicy\\): this machine's AWS credentials need "
            "elasticfilesystem:DescribeBackupPolicy and PutBackupPolicy .*, or set HUBSWARM_EFS_BACKUPS=0$",
        ),
        (FakeEFS({FS: None}, refuse="ThrottlingException"), "^AWS: ClientError: .*ThrottlingException"),
    ],
    ids=["no such file system", "access denied", "another refusal"],
)
def test_a_problem_is_one_line_and_changes_nothing(client, message):
    with pytest.raises(Exit, match=message) as stopped:
        efs_backups(client)
    assert "\n" not in stopped.value.message
    assert getattr(client, "put", []) == []


def test_a_refused_change_is_one_line_of_the_file_system():
    client = FakeEFS({FS: "DISABLED"})

    def refused(**asked):
        raise ClientError(*refusal("IncorrectFileSystemLifeCycleState", "PutBackupPolicy"))

    client.put_backup_policy = refused
    with pytest.raises(Exit, match=f"^{FS} efs-backups: ClientError: .*IncorrectFileSystemLifeCycleState"):
        efs_backups(client)


# --- in setup-hub and deploy, and alone ----------------------------------------------------------


@pytest.mark.parametrize(
    "config, asked",
    [
        ({}, True),
        ({"efs_backups": False}, False),
        ({"efs": "none"}, False),
        ({"efs": ""}, False),  # the homes' storage is mounted otherwise (the lab's)
    ],
)
def test_setup_hub_turns_them_on_once_a_run_with_the_homes_on_efs(monkeypatch, config, asked):
    done = []
    monkeypatch.setattr(efs, "turn_on", lambda run, client: done.append(run))
    run = Run(hub_config(**config), recap=Recap(stream=io.StringIO()))
    c = invocation(run)
    efs.homes_backups(c)
    efs.homes_backups(c)  # deploy, then its setup-hub
    assert done == ([run] if asked else [])


@pytest.mark.parametrize(
    "config, message",
    [
        ({"efs": "none"}, "^efs-backups: HUBSWARM_EFS is none: the homes are on no EFS file system"),
        ({"efs": ""}, "^efs-backups: HUBSWARM_EFS is not set: "),
        ({"efs_backups": False}, "^efs-backups: HUBSWARM_EFS_BACKUPS=0 leaves EFS's automatic backups as they are"),
    ],
)
def test_the_task_alone_says_in_one_line_why_it_has_nothing_to_do(monkeypatch, config, message):
    monkeypatch.setattr(efs, "turn_on", lambda run, client: pytest.fail("no AWS call"))
    with pytest.raises(Exit, match=message):
        efs.efs_backups.body(invocation(Run(hub_config(**config))))


# --- fab status -----------------------------------------------------------------------------------


def efs_row(monkeypatch, client, **config):
    monkeypatch.setattr(status.inventory, "aws_client", lambda config, service, region=None: client)
    [row] = status.efs_rows(hub_config(efs=NAME, **config))
    return row


@pytest.mark.parametrize(
    "policy, state, problem",
    [
        ("ENABLED", "backups on", ""),
        ("ENABLING", "backups turning on", ""),
        ("DISABLED", "backups off", "the homes have no automatic backup: fab efs-backups"),
        ("DISABLING", "backups off", "the homes have no automatic backup: fab efs-backups"),
        (None, "backups off", "the homes have no automatic backup: fab efs-backups"),
    ],
)
def test_status_says_whether_the_homes_are_backed_up(monkeypatch, policy, state, problem):
    row = efs_row(monkeypatch, FakeEFS({FS: policy}))
    shown = policy or "never set"
    assert row == status.Row(
        "efs", FS, state, f"automatic backups by AWS Backup, daily (backup policy {shown})", problem
    )


def test_status_says_when_it_cannot_read_the_policy(monkeypatch):
    row = efs_row(monkeypatch, FakeEFS({FS: None}, refuse="AccessDeniedException"))
    assert (row.what, row.name, row.state) == ("efs", NAME, "unknown")
    assert row.problem.startswith("cannot read its backup policy: AWS: AccessDeniedException (DescribeBackupPolicy)")


@pytest.mark.parametrize(
    "config, state, detail",
    [
        ({"efs": "none"}, "no EFS", "HUBSWARM_EFS=none: the homes are on the hub only, in no EFS backup"),
        ({"efs": ""}, "unknown", "HUBSWARM_EFS is not set: the homes' storage is mounted otherwise"),
        ({"efs": "nfs.example.com"}, "unknown", "no EFS file system found for it: its backups cannot be checked"),
        ({"efs_backups": False}, "not checked", "HUBSWARM_EFS_BACKUPS=0: its automatic backups are left as they are"),
    ],
)
def test_status_notes_what_it_cannot_know(monkeypatch, config, state, detail):
    monkeypatch.setattr(status.inventory, "aws_client", lambda *args, **kwargs: pytest.fail("no AWS call"))
    [row] = status.efs_rows(hub_config(**config))
    assert (row.what, row.state, row.detail, row.problem) == ("efs", state, detail, "")


def test_the_status_table_ends_with_the_row_and_fails_with_its_problem(monkeypatch, capsys, make_host):
    from test_status import HEALTHY

    host, _ = make_host(HEALTHY)
    monkeypatch.setattr("tasks.cli.invocation.hosts_for", lambda c, role: [host])
    monkeypatch.setattr(status, "node_disks", lambda run, hub, nodes: {})
    monkeypatch.setattr(status.inventory, "aws_client", lambda *args, **kwargs: FakeEFS({"fs-1": "DISABLED"}))
    with pytest.raises(Exit) as stopped:
        status.status.body(invocation(host.run))
    assert stopped.value.message == "unhealthy (1): efs fs-1: the homes have no automatic backup: fab efs-backups"
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.split()[:4] == ["efs", "fs-1", "backups", "off"]


def test_it_is_a_task_of_fab():
    import fabfile

    assert "efs-backups" in fabfile.ns.task_names
