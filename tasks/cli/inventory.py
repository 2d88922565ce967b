"""The cluster's hosts, found in EC2 by their tags (boto3, standard credential chain)."""

from dataclasses import dataclass, field

from fabric import Connection, task

from ..core import HubswarmError, fail
from ..settings import validate

HUB, WORKER, NODE = "hub", "worker", "node"


@dataclass(frozen=True)
class Instance:
    role: str
    instance_id: str
    name: str
    private_ip: str
    public_ip: str
    public_dns: str
    state: str
    # EC2's MetadataOptions (HttpTokens, HttpPutResponseHopLimit, HttpEndpoint...), as described.
    metadata: dict = field(default_factory=dict, compare=False, repr=False)

    def address(self, choice):
        """The address to reach it by: ``private`` (default), ``public`` or ``dns``."""
        value = {"private": self.private_ip, "public": self.public_ip, "dns": self.public_dns}[choice]
        return value or self.private_ip


def aws_client(config, service, region=None):
    """A boto3 client of ``service`` with the configured profile and region, or ``region`` (the
    standard credential chain; its endpoint as boto3 finds it, e.g. AWS_ENDPOINT_URL_EC2)."""
    import boto3  # here, not at the top: boto3 costs ~0.1 s of every fab start, -H runs need none

    session = boto3.session.Session(profile_name=config.profile or None, region_name=region or config.region)
    return session.client(service)


def ec2_client(config):
    """An EC2 client of the configured profile and region."""
    return aws_client(config, "ec2")


def describe(config, role, client=None, states=("running",)):
    """Instances of ``role`` in the configured cluster in ``states``, every page."""
    client = client or ec2_client(config)
    tags = config.tags
    filters = [
        {"Name": f"tag:{tags.cluster_key}", "Values": [config.cluster]},
        {"Name": f"tag:{tags.role_key}", "Values": [tags[role]]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    found = []
    for page in client.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for raw in reservation["Instances"]:
                names = [t["Value"] for t in raw.get("Tags", []) if t["Key"] == "Name"]
                found.append(
                    Instance(
                        role=role,
                        instance_id=raw["InstanceId"],
                        name=names[0] if names else "",
                        private_ip=raw.get("PrivateIpAddress", ""),
                        public_ip=raw.get("PublicIpAddress", ""),
                        public_dns=raw.get("PublicDnsName", ""),
                        state=raw["State"]["Name"],
                        metadata=raw.get("MetadataOptions", {}),
                    )
                )
    return sorted(found, key=lambda i: (i.name, i.instance_id))


def searched(config, role):
    tags = config.tags
    return (
        f"tags {tags.cluster_key}={config.cluster}, {tags.role_key}={tags[role]}, state running, region {config.region}"
    )


def find(config, role, client=None):
    """Instances of ``role``; exactly one hub, at least one worker."""
    try:
        instances = describe(config, role, client)
    except HubswarmError:
        raise
    except Exception as exc:  # botocore's many errors: credentials, endpoint, region
        raise discovery_failed(exc) from None
    if role == HUB and len(instances) != 1:
        count = "no instance" if not instances else f"{len(instances)} instances"
        raise HubswarmError(
            f"{count} found as the hub ({searched(config, role)}): tag exactly one running "
            f"instance, or name the hub: -H (--hub where -H names the workers or nodes)"
        )
    if role == WORKER and not instances:
        raise HubswarmError(
            f"no worker found ({searched(config, role)}): tag the workers, or name them: -H (--workers for deploy)"
        )
    return instances


def discovery_failed(exc):
    return HubswarmError(f"EC2 discovery failed ({type(exc).__name__}: {exc}): check AWS credentials and region")


def client_of(run):
    """The run's EC2 client."""
    if run.ec2 is None:
        try:
            run.ec2 = ec2_client(run.config)
        except Exception as exc:  # boto3's: an unknown profile, no region
            raise discovery_failed(exc) from None
    return run.ec2


def found(run, role):
    """:func:`find` once per run: a chain's tasks (deploy's steps, the gateway) ask EC2
    once. A task that launches or terminates instances forgets it (aws.with_ec2)."""
    if role not in run.found:
        run.found[role] = find(run.config, role, client_of(run))
    return run.found[role]


def connections(run, role):
    """One Connection per host of ``role`` (hub, worker, or node: both), reached
    as configured; workers go through the hub when ``gateway`` is set."""
    roles = [HUB, WORKER] if role == NODE else [role]
    return reach(run, [instance for each in roles for instance in found(run, each)])


def reach(run, instances):
    """One Connection per instance, reached as configured; workers go through the hub when ``gateway`` is set."""
    settings, config = run.config, run.connection_config
    gateway = gateway_for(run) if settings.gateway and any(i.role == WORKER for i in instances) else None
    return [
        Connection(instance.private_ip, config=config, gateway=gateway)
        if instance.role == WORKER and gateway
        else Connection(instance.address(settings.address), config=config)
        for instance in instances
    ]


def gateway_for(run):
    """The hub's connection, opened (host key checked) before worker threads share it."""
    hub = found(run, HUB)[0]
    address = hub.address(run.config.address)
    outside = validate.lab_problem(run.config, [address])
    if outside:  # checked before it is opened
        raise HubswarmError(outside)
    host = run.connect(address)
    host.open()
    return host.connection


@task
def hosts(c):
    """Print the cluster found by its EC2 tags: role, instance id, name, addresses, state."""
    config = validate.checked(c.config.hubswarm)
    rows = [("ROLE", "INSTANCE", "NAME", "PRIVATE", "PUBLIC", "STATE")]
    for role in (HUB, WORKER):
        try:
            found = find(config, role)
        except HubswarmError as exc:
            if role == HUB:
                fail(str(exc))
            print(f"note: {exc}")
            found = []
        rows += [
            (i.role, i.instance_id, i.name, i.private_ip, i.public_ip or i.public_dns or "-", i.state) for i in found
        ]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
