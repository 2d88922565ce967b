"""AWS resources of the cluster: its security groups and its EC2 instances (boto3)."""

import socket
import time
from dataclasses import dataclass, field
from functools import partial

from fabric import task

from ..cli import inventory
from ..cli.invocation import run_of
from ..core import HubswarmError, fail
from ..core.changes import recorded
from ..core.errors import one_line

ANYWHERE = ("0.0.0.0/0", "::/0")
# Docker publishes host-mode ports from the kernel's ephemeral range, 32768-60999
# (the original 32000-33000 missed most of it).
NOTEBOOK_PORTS = (32768, 60999)
PROTOCOL_NAMES = {"6": "tcp", "17": "udp"}  # AWS may report numbers
# IMDSv2 only (every read needs a session token), and the token's reply dies after one hop: the
# host reads its metadata, its containers (notebooks, one hop further) get no token and so no
# instance-role credentials. Enabled: hubswarm reads the hub's public host name from it.
HARDENED_METADATA = {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}


@dataclass(frozen=True)
class Rule:
    """One inbound rule: ``protocol`` ports ``low``-``high`` from ``source`` (a CIDR)."""

    protocol: str
    low: int
    high: int
    source: str
    why: str = field(default="", compare=False)

    def __str__(self):
        ports = str(self.low) if self.low == self.high else f"{self.low}-{self.high}"
        return f"{self.protocol} {ports} from {self.source}"

    def permission(self):
        """The rule as one boto3 ``IpPermissions`` entry."""
        key, cidr = ("Ipv6Ranges", "CidrIpv6") if ":" in self.source else ("IpRanges", "CidrIp")
        ranges = [{cidr: self.source, "Description": f"hubswarm: {self.why}"}]
        return {"IpProtocol": self.protocol, "FromPort": self.low, "ToPort": self.high, key: ranges}


def wanted_rules(vpc_cidr):
    """The inbound rules of each group: ``{"hub": [...], "internal": [...]}``.

    Never the Docker API (2375/2376): swarm mode does not need it.
    """
    public = [
        Rule("tcp", port, port, source, why)
        for port, why in ((22, "SSH"), (80, "HTTP"), (443, "HTTPS"))
        for source in ANYWHERE
    ]
    inside = [
        ("tcp", 22, 22, "SSH through the hub"),
        ("tcp", 8081, 8081, "hub API"),
        ("tcp", *NOTEBOOK_PORTS, "notebooks"),
        ("tcp", 2377, 2377, "swarm management"),
        ("tcp", 7946, 7946, "swarm nodes"),
        ("udp", 7946, 7946, "swarm nodes"),
        ("udp", 4789, 4789, "swarm overlay"),
        ("tcp", 2049, 2049, "NFS"),
    ]
    return {"hub": public, "internal": [Rule(p, low, high, vpc_cidr, why) for p, low, high, why in inside]}


def existing_rules(ip_permissions):
    """boto3 ``IpPermissions`` as (protocol, low, high, source); protocol ``-1`` is any."""
    found = []
    for perm in ip_permissions:
        protocol = PROTOCOL_NAMES.get(perm["IpProtocol"], perm["IpProtocol"])
        low, high = perm.get("FromPort", 0), perm.get("ToPort", 65535)
        sources = [r["CidrIp"] for r in perm.get("IpRanges", [])]
        sources += [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
        found += [(protocol, low, high, source) for source in sources]
    return found


def missing_rules(wanted, existing_ip_permissions):
    """The ``wanted`` rules no existing rule covers (same source, its ports within)."""
    existing = existing_rules(existing_ip_permissions)

    def covered(rule):
        return any(
            protocol in ("-1", rule.protocol)
            and source == rule.source
            and (protocol == "-1" or low <= rule.low and rule.high <= high)
            for protocol, low, high, source in existing
        )

    return [rule for rule in wanted if not covered(rule)]


def in_one_line(body, *args):
    """``body(*args)``; any error ends the run in one line."""
    try:
        return body(*args)
    except HubswarmError as exc:
        fail(str(exc))
    except Exception as exc:  # botocore's many errors: credentials, endpoint, permissions
        fail(f"AWS: {one_line(exc)}")


def with_ec2(body, run, *args):
    """``body(run, ec2 client, *args)``; any error ends the run in one line. What
    discovery found before is forgotten: ``body`` may launch or terminate instances."""
    try:
        return in_one_line(lambda: body(run, inventory.client_of(run), *args))
    finally:
        run.found.clear()


# --- security groups ---------------------------------------------------------


def cluster_vpc(config, client):
    """(VPC id, CIDR): ``vpc_id``, else the VPC of ``subnet_id``, else the default VPC."""
    vpc_id = config.vpc_id
    if not vpc_id and config.subnet_id:
        vpc_id = client.describe_subnets(SubnetIds=[config.subnet_id])["Subnets"][0]["VpcId"]
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}] if vpc_id else [{"Name": "isDefault", "Values": ["true"]}]
    vpcs = client.describe_vpcs(Filters=filters)["Vpcs"]
    if not vpcs:
        raise HubswarmError(
            f"no VPC {vpc_id or 'by default'} in region {config.region}: set HUBSWARM_VPC_ID "
            f"(or HUBSWARM_SUBNET_ID) to the cluster's VPC"
        )
    return vpcs[0]["VpcId"], vpcs[0]["CidrBlock"]


def ensure_group(client, run, vpc_id, name, rules, group):
    """Create the ``group`` (a change target) if missing and add its missing rules; its id
    (None if only in check mode)."""
    config = run.config
    found = client.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["SecurityGroups"]
    ids = [found[0]["GroupId"]] if found else []
    tags = [{"Key": config.tags.cluster_key, "Value": config.cluster}, {"Key": "Name", "Value": name}]
    group.ensure(
        f"create group {name} in {vpc_id}",
        not found
        and (
            lambda: ids.append(
                client.create_security_group(
                    GroupName=name,
                    VpcId=vpc_id,
                    Description=f"hubswarm cluster {config.cluster}: {name}",
                    TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
                )["GroupId"]
            )
        ),
    )
    missing = missing_rules(rules, found[0]["IpPermissions"] if found else [])
    group.ensure(
        [f"add {rule}" for rule in missing],
        missing
        and (
            lambda: client.authorize_security_group_ingress(
                GroupId=ids[0], IpPermissions=[r.permission() for r in missing]
            )
        ),
    )
    return ids[0] if ids else None


def ensure_groups(run, client):
    """The cluster's groups, created or completed: ``{"hub": id, "internal": id}``."""
    vpc_id, cidr = cluster_vpc(run.config, client)
    ids = {}
    for role, rules in wanted_rules(cidr).items():
        name = f"hubswarm-{run.config.cluster}-{role}"
        with recorded(run, name, "security-groups") as group:
            ids[role] = ensure_group(client, run, vpc_id, name, rules, group)
    return ids


@task
def security_groups(c):
    """Create or complete the cluster's security groups (hub: SSH/HTTP/HTTPS; internal: VPC only).

    In the VPC of HUBSWARM_VPC_ID, else of HUBSWARM_SUBNET_ID, else the default
    VPC. hubswarm-<cluster>-hub opens 22, 80 and 443/tcp to anywhere (IPv4 and
    IPv6); hubswarm-<cluster>-internal, for every node, opens from the VPC's
    CIDR only: SSH 22, hub API 8081, notebooks 32768-60999/tcp, swarm 2377/tcp,
    7946/tcp+udp and 4789/udp, NFS 2049/tcp. Never the Docker API (2375/2376).
    Missing rules are added, existing ones left alone.
    Example: fab security-groups
    """
    with_ec2(ensure_groups, run_of(c))


# --- instances ---------------------------------------------------------------


# What launch counts as there: an instance just launched is pending for a while.
PRESENT = ("running", "pending")


def names(instances):
    """Names (else ids) of ``instances``, sorted."""
    return sorted(i.name or i.instance_id for i in instances)


def present(config, client, role):
    """Names (else ids) of the cluster's running or pending instances of ``role``."""
    return names(inventory.describe(config, role, client, states=PRESENT))


def missing_names(config, role, existing, wanted):
    """Names of the instances to launch for ``wanted`` of ``role``, lowest free numbers first."""
    if role == inventory.HUB:
        return [] if existing else [f"{config.cluster}-hub"]
    free = (f"{config.cluster}-worker{i}" for i in range(1, wanted + 1))
    return [name for name in free if name not in existing][: max(0, wanted - len(existing))]


def launch_one(client, config, role, name, group_ids, launched):
    """Launch one tagged instance of ``role`` with hardened metadata; its id goes to ``launched``."""
    tags = [
        {"Key": "Name", "Value": name},
        {"Key": config.tags.cluster_key, "Value": config.cluster},
        {"Key": config.tags.role_key, "Value": config.tags[role]},
    ]
    options = {"SubnetId": config.subnet_id} if config.subnet_id else {}
    reply = client.run_instances(
        ImageId=config.ami,
        InstanceType=config.instance_type,
        KeyName=config.key_name,
        MinCount=1,
        MaxCount=1,
        SecurityGroupIds=group_ids,
        MetadataOptions=HARDENED_METADATA,
        **options,
        TagSpecifications=[{"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")],
    )
    launched.append(reply["Instances"][0]["InstanceId"])


def launch_deadline(config):
    """When launch gives up waiting: HUBSWARM_LAUNCH_TIMEOUT seconds (checked with every setting) from now."""
    return time.monotonic() + float(config.launch_timeout)


def ssh_answers(address, deadline):
    """True once an SSH server greets on ``address``:22, False at ``deadline``."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=min(5, max(0.1, deadline - time.monotonic()))) as s:
                if s.recv(4) == b"SSH-":
                    return True
        except OSError:
            pass
        time.sleep(min(2, max(0, deadline - time.monotonic())))
    return False


def wait_running(client, launched, deadline, delay=5):
    """Poll until every new instance runs; one-line error if one fails or the deadline passes."""
    from botocore.exceptions import WaiterError  # here, not at the top: botocore slows every fab start

    attempts = int(max(0, deadline - time.monotonic()) // delay) + 1
    try:
        waiter = client.get_waiter("instance_running")
        waiter.wait(InstanceIds=launched, WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
    except WaiterError as exc:
        raise HubswarmError(
            f"{' '.join(launched)} not running ({exc.kwargs.get('reason')}): see them in the EC2 console, "
            f"or raise HUBSWARM_LAUNCH_TIMEOUT"
        ) from None


def wait_ssh_on(run, client, launched, deadline):
    """Wait until port 22 answers where discovery will look (workers behind the gateway: not from here)."""
    config = run.config
    roles = [inventory.HUB] if config.gateway else [inventory.HUB, inventory.WORKER]
    new = [i for role in roles for i in inventory.describe(config, role, client) if i.instance_id in launched]
    for instance in new:
        address = instance.address(config.address)
        with recorded(run, instance.name, "wait-ssh"):
            if not ssh_answers(address, deadline):
                raise HubswarmError(
                    f"{instance.instance_id} at {address}: port 22 did not answer in time: from outside the VPC "
                    f"set HUBSWARM_ADDRESS=public (hub) and HUBSWARM_GATEWAY=1 (workers take SSH from the VPC "
                    f"only), else raise HUBSWARM_LAUNCH_TIMEOUT"
                )


def launch_cluster(run, client, workers, wait_ssh=True):
    """Launch the hub and workers the cluster lacks, then wait for them; their ids."""
    config = run.config
    deadline = launch_deadline(config)
    todo, existing = [], []
    for role, wanted in ((inventory.HUB, 1), (inventory.WORKER, workers)):
        names = present(config, client, role)
        existing += names
        todo += [(role, name) for name in missing_names(config, role, names, wanted)]
    if todo and not (config.ami and config.key_name):
        raise HubswarmError("launch needs an AMI and a key pair: set HUBSWARM_AMI and HUBSWARM_KEY_NAME")
    for name in existing:
        with recorded(run, name, "launch"):
            pass
    if not todo:
        return []
    groups = ensure_groups(run, client)
    launched = []
    for role, name in todo:
        ids = [groups["internal"]] + ([groups["hub"]] if role == inventory.HUB else [])
        with recorded(run, name, "launch") as instance:
            instance.ensure(
                f"launch {config.instance_type} from {config.ami} ({role})",
                partial(launch_one, client, config, role, name, ids, launched),
            )
    if launched:
        wait_running(client, launched, deadline)
    if launched and wait_ssh:
        wait_ssh_on(run, client, launched, deadline)
    return launched


@task(
    help={
        "workers": "how many workers the cluster should have (default 1); existing ones count",
        "wait-ssh": "wait until port 22 answers on each new instance (default; --no-wait-ssh to skip)",
    }
)
def launch(c, workers=1, wait_ssh=True):
    """Launch the hub and workers the cluster lacks, tagged, with its security groups.

    Counts the cluster's running and pending instances by tag; launches only the
    missing ones (HUBSWARM_AMI, HUBSWARM_KEY_NAME, HUBSWARM_INSTANCE_TYPE,
    HUBSWARM_SUBNET_ID), runs security-groups first, then waits until they run
    and answer on port 22 (within HUBSWARM_LAUNCH_TIMEOUT seconds). New
    instances take IMDSv2 only with a hop limit of 1 (harden-metadata does the
    same for existing ones). Never stops or terminates anything.
    Example: fab launch --workers 3
    """
    with_ec2(launch_cluster, run_of(c), workers, wait_ssh)


# --- instance metadata -------------------------------------------------------


def metadata_fixes(options):
    """What to set so MetadataOptions ``options`` match HARDENED_METADATA: one line each, [] when they do."""
    return [
        f"set {key} to {wanted} (was {options.get(key, 'unset')})"
        for key, wanted in HARDENED_METADATA.items()
        if options.get(key) != wanted
    ]


def harden_instances(run, client):
    """Give each of the cluster's running or stopped instances HARDENED_METADATA, where it lacks it."""
    config = run.config
    found = [
        instance
        for role in (inventory.HUB, inventory.WORKER)
        for instance in inventory.describe(config, role, client, states=("running", "stopped"))
    ]
    if not found:
        run.recap.say(
            f"harden-metadata: no running or stopped instance tagged {config.tags.cluster_key}={config.cluster} "
            f"in region {config.region}"
        )
    for instance in found:
        with recorded(run, instance.name or instance.instance_id, "harden-metadata") as target:
            fixes = metadata_fixes(instance.metadata)
            target.ensure(
                fixes,
                fixes
                and partial(
                    client.modify_instance_metadata_options, InstanceId=instance.instance_id, **HARDENED_METADATA
                ),
            )


@task
def harden_metadata(c):
    """Make the cluster's instances serve metadata by IMDSv2 only, with a hop limit of 1.

    For each running or stopped instance found by its tags whose metadata
    options differ, sets HttpTokens=required, HttpPutResponseHopLimit=1 and
    HttpEndpoint=enabled (as launch does for new ones): the host still reads
    its metadata with a token, its containers (notebooks) cannot reach it, so
    they never see the instance role's credentials. Needs
    ec2:ModifyInstanceMetadataOptions.
    Example: fab harden-metadata
    """
    with_ec2(harden_instances, run_of(c))
