"""Security groups, launch and instance metadata: the pure tables, then the tasks against moto's in-process EC2."""

import io

import pytest

from fakehost import hub_config
from tasks.aws import ec2 as aws
from tasks.aws.ec2 import HARDENED_METADATA, Rule, metadata_fixes, missing_rules, wanted_rules
from tasks.core import HubswarmError, Run
from tasks.core.recap import Recap

REGION = "us-west-2"
VPC_CIDR = "172.31.0.0/16"  # moto's default VPC
AMI = "ami-12c6146b"


def perm(protocol, low, high, *sources):
    """A boto3 IpPermissions entry, as describe_security_groups returns it."""
    entry = {
        "IpProtocol": protocol,
        "IpRanges": [{"CidrIp": s} for s in sources if ":" not in s],
        "Ipv6Ranges": [{"CidrIpv6": s} for s in sources if ":" in s],
    }
    if protocol != "-1":
        entry.update(FromPort=low, ToPort=high)
    return entry


# --- the rule tables ---------------------------------------------------------

HTTPS = Rule("tcp", 443, 443, "0.0.0.0/0")
NOTEBOOKS = Rule("tcp", 32768, 60999, VPC_CIDR)
VXLAN = Rule("udp", 4789, 4789, VPC_CIDR)


@pytest.mark.parametrize(
    "existing, missing",
    [
        ([], [HTTPS, NOTEBOOKS, VXLAN]),
        ([perm("tcp", 443, 443, "0.0.0.0/0")], [NOTEBOOKS, VXLAN]),
        ([perm("tcp", 443, 443, "::/0")], [HTTPS, NOTEBOOKS, VXLAN]),  # IPv6 is not IPv4
        ([perm("6", 443, 443, "0.0.0.0/0")], [NOTEBOOKS, VXLAN]),  # protocol by number
        ([perm("tcp", 32000, 33000, VPC_CIDR)], [HTTPS, NOTEBOOKS, VXLAN]),  # the original's range
        ([perm("tcp", 0, 65535, VPC_CIDR)], [HTTPS, VXLAN]),  # a wider range covers
        ([perm("tcp", 4789, 4789, VPC_CIDR)], [HTTPS, NOTEBOOKS, VXLAN]),  # tcp is not udp
        ([perm("-1", 0, 0, VPC_CIDR)], [HTTPS]),  # "all traffic from the VPC"
        ([perm("udp", 4789, 4789, "10.0.0.0/8")], [HTTPS, NOTEBOOKS, VXLAN]),  # another source
        ([perm("tcp", 443, 443, "0.0.0.0/0"), perm("-1", 0, 0, VPC_CIDR)], []),
    ],
)
def test_missing_rules(existing, missing):
    assert missing_rules([HTTPS, NOTEBOOKS, VXLAN], existing) == missing


def test_wanted_rules():
    groups = wanted_rules("10.1.0.0/16")
    assert sorted(map(str, groups["hub"])) == sorted(
        f"tcp {port} from {source}" for port in (22, 80, 443) for source in ("0.0.0.0/0", "::/0")
    )
    assert [str(r) for r in groups["internal"]] == [
        "tcp 22 from 10.1.0.0/16",
        "tcp 8081 from 10.1.0.0/16",
        "tcp 32768-60999 from 10.1.0.0/16",
        "tcp 2377 from 10.1.0.0/16",
        "tcp 7946 from 10.1.0.0/16",
        "udp 7946 from 10.1.0.0/16",
        "udp 4789 from 10.1.0.0/16",
        "tcp 2049 from 10.1.0.0/16",
    ]


def test_never_the_docker_api():
    rules = [r for group in wanted_rules(VPC_CIDR).values() for r in group]
    assert not [r for r in rules if r.low <= 2376 and 2375 <= r.high]


def test_permission_picks_the_address_family():
    assert Rule("tcp", 22, 22, "::/0", "SSH").permission() == {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "hubswarm: SSH"}],
    }


TOKENS = "set HttpTokens to required (was optional)"


@pytest.mark.parametrize(
    "options, fixes",
    [
        (HARDENED_METADATA, []),
        ({**HARDENED_METADATA, "State": "pending", "InstanceMetadataTags": "enabled"}, []),  # others left alone
        ({"HttpTokens": "optional", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}, [TOKENS]),
        (  # Amazon Linux 2023's AMIs: IMDSv2, but containers reach it
            {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
            ["set HttpPutResponseHopLimit to 1 (was 2)"],
        ),
        (
            {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "disabled"},
            ["set HttpEndpoint to enabled (was disabled)"],  # hubswarm reads the public host name there
        ),
        (
            {},
            [
                "set HttpTokens to required (was unset)",
                "set HttpPutResponseHopLimit to 1 (was unset)",
                "set HttpEndpoint to enabled (was unset)",
            ],
        ),
    ],
)
def test_metadata_fixes(options, fixes):
    assert metadata_fixes(options) == fixes


def test_hardened_metadata_is_imdsv2_within_the_host():
    assert HARDENED_METADATA == {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}


# --- against moto ------------------------------------------------------------


@pytest.fixture
def recap():
    """A fresh recap printing to a buffer."""
    return Recap(stream=io.StringIO())


def run(recap, check=False, **overrides):
    """A run of the cluster's settings (``config``) recording into ``recap``."""
    return Run(config(**overrides), check=check, recap=recap)


def config(**overrides):
    values = dict(
        cluster="c1",
        vpc_id="",
        subnet_id="",
        ami=AMI,
        instance_type="t3.medium",
        key_name="hubswarm-key",
        launch_timeout="30",
    )
    return hub_config(**{**values, **overrides})


def groups(ec2):
    """{name: set of rules} of the cluster's groups."""
    found = ec2.describe_security_groups(Filters=[{"Name": "tag:hubswarm:cluster", "Values": ["c1"]}])
    return {
        g["GroupName"]: {str(Rule(*r)) for r in aws.existing_rules(g["IpPermissions"])} for g in found["SecurityGroups"]
    }


def changes(recap):
    return {(r.host, r.task): r.changes for r in recap.records}


def test_security_groups_created_then_ok(ec2, recap, monkeypatch):
    ids = aws.ensure_groups(run(recap), ec2)
    wanted = wanted_rules(VPC_CIDR)
    assert groups(ec2) == {
        "hubswarm-c1-hub": {str(r) for r in wanted["hub"]},
        "hubswarm-c1-internal": {str(r) for r in wanted["internal"]},
    }
    assert set(ids) == {"hub", "internal"} and all(i.startswith("sg-") for i in ids.values())
    hub = changes(recap)[("hubswarm-c1-hub", "security-groups")]
    assert hub[0] == "create group hubswarm-c1-hub in " + ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    assert "add tcp 443 from 0.0.0.0/0" in hub and "add tcp 443 from ::/0" in hub

    second = Recap(stream=io.StringIO())
    assert aws.ensure_groups(run(second), ec2) == ids
    assert [r.status for r in second.records] == ["ok", "ok"]


def test_a_deleted_rule_comes_back_alone(ec2, recap, monkeypatch):
    ids = aws.ensure_groups(run(recap), ec2)
    ec2.revoke_security_group_ingress(GroupId=ids["internal"], IpPermissions=[perm("udp", 4789, 4789, VPC_CIDR)])
    assert "udp 4789 from " + VPC_CIDR not in groups(ec2)["hubswarm-c1-internal"]

    second = Recap(stream=io.StringIO())
    aws.ensure_groups(run(second), ec2)
    assert changes(second) == {
        ("hubswarm-c1-hub", "security-groups"): [],
        ("hubswarm-c1-internal", "security-groups"): [f"add udp 4789 from {VPC_CIDR}"],
    }
    assert "udp 4789 from " + VPC_CIDR in groups(ec2)["hubswarm-c1-internal"]


def test_security_groups_in_the_configured_vpc(ec2, recap):
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24")["Subnet"]["SubnetId"]
    aws.ensure_groups(run(recap, subnet_id=subnet), ec2)
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["hubswarm-c1-internal"]}])
    [group] = found["SecurityGroups"]
    assert group["VpcId"] == vpc
    assert "tcp 8081 from 10.7.0.0/16" in groups(ec2)["hubswarm-c1-internal"]


def test_no_vpc_is_one_line(ec2, recap):
    with pytest.raises(HubswarmError) as err:
        aws.ensure_groups(run(recap, vpc_id="vpc-00000000"), ec2)
    assert str(err.value).startswith("no VPC vpc-00000000 in region us-west-2: set HUBSWARM_VPC_ID")
    assert "\n" not in str(err.value)


def test_security_groups_check_mode_changes_nothing(ec2, recap, monkeypatch):
    assert aws.ensure_groups(run(recap, check=True), ec2) == {"hub": None, "internal": None}
    assert groups(ec2) == {}
    hub = changes(recap)[("hubswarm-c1-hub", "security-groups")]
    assert hub[0].startswith("create group hubswarm-c1-hub") and len(hub) == 7
    assert "would add tcp 80 from 0.0.0.0/0" in recap.stream.getvalue()


def instances(ec2):
    """{Name: (role tag, cluster tag, group names)} of running or pending instances."""
    found = {}
    pages = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}])
    for raw in (i for r in pages["Reservations"] for i in r["Instances"]):
        tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
        names = sorted(g["GroupName"] for g in raw["SecurityGroups"])
        found[tags["Name"]] = (tags["hubswarm:role"], tags["hubswarm:cluster"], names)
    return found


def test_launch_then_nothing_to_launch(ec2, recap, monkeypatch):
    launched = aws.launch_cluster(run(recap), ec2, workers=2, wait_ssh=False)
    assert len(launched) == 3
    assert instances(ec2) == {
        "c1-hub": ("hub", "c1", ["hubswarm-c1-hub", "hubswarm-c1-internal"]),
        "c1-worker1": ("worker", "c1", ["hubswarm-c1-internal"]),
        "c1-worker2": ("worker", "c1", ["hubswarm-c1-internal"]),
    }
    assert changes(recap)[("c1-hub", "launch")] == [f"launch t3.medium from {AMI} (hub)"]

    second = Recap(stream=io.StringIO())
    assert aws.launch_cluster(run(second), ec2, workers=2, wait_ssh=False) == []
    assert [(r.host, r.status) for r in second.records] == [
        ("c1-hub", "ok"),
        ("c1-worker1", "ok"),
        ("c1-worker2", "ok"),
    ]


def test_launch_replaces_a_terminated_worker(ec2, recap, monkeypatch):
    aws.launch_cluster(run(recap), ec2, workers=3, wait_ssh=False)
    [gone] = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if {"Key": "Name", "Value": "c1-worker2"} in i["Tags"]
    ]
    ec2.terminate_instances(InstanceIds=[gone])

    second = Recap(stream=io.StringIO())
    [new] = aws.launch_cluster(run(second), ec2, workers=3, wait_ssh=False)
    assert new != gone and sorted(instances(ec2)) == ["c1-hub", "c1-worker1", "c1-worker2", "c1-worker3"]
    assert [r.host for r in second.records if r.changes] == ["c1-worker2"]


def test_launch_check_mode_changes_nothing(ec2, recap, monkeypatch):
    assert aws.launch_cluster(run(recap, check=True), ec2, workers=1, wait_ssh=False) == []
    assert instances(ec2) == {} and groups(ec2) == {}
    assert "[c1-worker1] launch: would launch t3.medium" in recap.stream.getvalue()
    assert {r.host for r in recap.records if r.changes} == {
        "c1-hub",
        "c1-worker1",
        "hubswarm-c1-hub",
        "hubswarm-c1-internal",
    }


@pytest.mark.parametrize("missing", ["ami", "key_name"])
def test_launch_needs_ami_and_key_before_any_change(ec2, recap, missing):
    with pytest.raises(HubswarmError) as err:
        aws.launch_cluster(run(recap, **{missing: ""}), ec2, workers=1, wait_ssh=False)
    assert str(err.value) == "launch needs an AMI and a key pair: set HUBSWARM_AMI and HUBSWARM_KEY_NAME"
    assert instances(ec2) == {} and groups(ec2) == {}


def test_ssh_wait_gives_up_at_the_deadline(monkeypatch):
    def refused(*args, **kwargs):
        raise ConnectionRefusedError

    monkeypatch.setattr(aws.socket, "create_connection", refused)
    monkeypatch.setattr(aws.time, "sleep", lambda seconds: None)
    assert aws.ssh_answers("10.0.0.9", aws.time.monotonic() + 0.05) is False


def test_ssh_wait_needs_the_ssh_greeting(monkeypatch):
    class Greeting:
        def __init__(self, banner):
            self.banner = banner

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def recv(self, size):
            return self.banner[:size]

    banners = iter([b"HTTP/1.1", b"SSH-2.0-OpenSSH_9.2"])
    monkeypatch.setattr(aws.socket, "create_connection", lambda address, timeout: Greeting(next(banners)))
    monkeypatch.setattr(aws.time, "sleep", lambda seconds: None)
    assert aws.ssh_answers("10.0.0.9", aws.time.monotonic() + 60) is True


def test_instance_not_running_is_one_line():
    from botocore.exceptions import WaiterError

    class Client:
        def get_waiter(self, name):
            class Waiter:
                def wait(self, **kwargs):
                    raise WaiterError(name="InstanceRunning", reason="Max attempts exceeded", last_response={})

            return Waiter()

    with pytest.raises(HubswarmError) as err:
        aws.wait_running(Client(), ["i-1", "i-2"], aws.time.monotonic() + 1)
    assert str(err.value) == (
        "i-1 i-2 not running (Max attempts exceeded): see them in the EC2 console, or raise HUBSWARM_LAUNCH_TIMEOUT"
    )


# --- instance metadata, against moto -----------------------------------------


def metadata_options(ec2):
    """{Name: (HttpTokens, HttpPutResponseHopLimit, HttpEndpoint)} of every instance, as EC2 describes it."""
    found = {}
    for raw in (i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]):
        name = {t["Key"]: t["Value"] for t in raw["Tags"]}["Name"]
        options = raw["MetadataOptions"]
        found[name] = tuple(options.get(key) for key in HARDENED_METADATA)
    return found


def tagged_instance(ec2, name, role, cluster="c1", **metadata):
    """An instance of ``role`` in ``cluster`` launched as AWS would by default, or with ``metadata`` options."""
    tags = [{"Key": "Name", "Value": name}, {"Key": "hubswarm:cluster", "Value": cluster}]
    tags.append({"Key": "hubswarm:role", "Value": role})
    options = {"MetadataOptions": metadata} if metadata else {}
    reply = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        **options,
    )
    return reply["Instances"][0]["InstanceId"]


HARDENED = ("required", 1, "enabled")


def test_launched_instances_serve_metadata_by_imdsv2_within_the_host(ec2, recap):
    aws.launch_cluster(run(recap), ec2, workers=1, wait_ssh=False)
    assert metadata_options(ec2) == {"c1-hub": HARDENED, "c1-worker1": HARDENED}


def default_cluster(ec2):
    """A hub as launched by default, two workers (hop limit 2; one stopped, its endpoint off), one
    hardened worker, one terminated worker and another cluster's hub."""
    tagged_instance(ec2, "c1-hub", "hub")  # moto's defaults: tokens optional, hop limit 1
    tagged_instance(ec2, "c1-worker1", "worker", HttpTokens="optional", HttpPutResponseHopLimit=2)
    stopped = tagged_instance(ec2, "c1-worker2", "worker", HttpTokens="required", HttpEndpoint="disabled")
    ec2.stop_instances(InstanceIds=[stopped])
    tagged_instance(ec2, "c1-worker3", "worker", **HARDENED_METADATA)
    ec2.terminate_instances(InstanceIds=[tagged_instance(ec2, "c1-worker4", "worker")])
    tagged_instance(ec2, "c2-hub", "hub", cluster="c2")
    return metadata_options(ec2)


def test_harden_metadata_fixes_what_differs_then_nothing(ec2, recap):
    before = default_cluster(ec2)
    assert before["c1-hub"] == ("optional", 1, "enabled") and before["c1-worker1"] == ("optional", 2, "enabled")

    aws.harden_instances(run(recap), ec2)
    assert changes(recap) == {
        ("c1-hub", "harden-metadata"): [TOKENS],
        ("c1-worker1", "harden-metadata"): [TOKENS, "set HttpPutResponseHopLimit to 1 (was 2)"],
        ("c1-worker2", "harden-metadata"): ["set HttpEndpoint to enabled (was disabled)"],
        ("c1-worker3", "harden-metadata"): [],
    }
    after = metadata_options(ec2)
    assert {name: after[name] for name in ("c1-hub", "c1-worker1", "c1-worker2", "c1-worker3")} == dict.fromkeys(
        ("c1-hub", "c1-worker1", "c1-worker2", "c1-worker3"), HARDENED
    )
    assert after["c1-worker4"] == before["c1-worker4"] and after["c2-hub"] == before["c2-hub"]  # not ours to touch

    second = Recap(stream=io.StringIO())
    aws.harden_instances(run(second), ec2)
    assert [(r.host, r.status) for r in second.records] == [
        ("c1-hub", "ok"),
        ("c1-worker1", "ok"),
        ("c1-worker2", "ok"),
        ("c1-worker3", "ok"),
    ]
    assert metadata_options(ec2) == after


def test_harden_metadata_check_mode_changes_nothing(ec2, recap):
    before = default_cluster(ec2)
    aws.harden_instances(run(recap, check=True), ec2)
    assert metadata_options(ec2) == before
    said = recap.stream.getvalue()
    assert "[c1-worker1] harden-metadata: would set HttpPutResponseHopLimit to 1 (was 2)" in said
    assert "[c1-worker3] harden-metadata: ok" in said
    assert [r.host for r in recap.records if r.changes] == ["c1-hub", "c1-worker1", "c1-worker2"]


def test_harden_metadata_says_when_it_finds_nothing(ec2, recap):
    tagged_instance(ec2, "c2-hub", "hub", cluster="c2")
    aws.harden_instances(run(recap), ec2)
    assert recap.records == []
    assert recap.stream.getvalue() == (
        "harden-metadata: no running or stopped instance tagged hubswarm:cluster=c1 in region us-west-2\n"
    )
