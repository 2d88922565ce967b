"""The lab's EC2 API: a local moto_server holding one instance per lab host, plus decoys.

The deployment finds its hosts through the EC2 API (tags `hubswarm:cluster`, `hubswarm:role`,
state running). The lab answers that API with moto_server on 127.0.0.1, seeded so that each lab
host has a running instance whose PrivateIpAddress is the host's real IP, plus decoys the
deployment must ignore: a stopped worker of cluster `lab` and a running hub and worker of
cluster `other`.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from invoke.exceptions import Exit

from .docker import LAB_DIR

REGION = "us-west-2"
VPC_CIDR = "10.213.0.0/16"
SUBNET_CIDR = "10.213.0.0/24"
IMAGE_ID = "ami-12c6146b"
CLUSTER = "lab"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
MOTO_PID_FILE = LAB_DIR / "moto.pid"
MOTO_LOG_FILE = LAB_DIR / "moto.log"
MOTO_START_SECONDS = 30

# Name, private IP, cluster, role, state: instances the deployment must NOT pick as lab hosts.
DECOYS = [
    ("lab-decoy-stopped", "10.213.0.200", CLUSTER, "worker", "stopped"),
    ("other-hub", "10.213.0.201", "other", "hub", "running"),
    ("other-worker1", "10.213.0.202", "other", "worker", "running"),
]


def moto_port():
    """Port of the lab's moto_server: env HUBSWARM_LAB_MOTO_PORT, default 5055."""
    return int(os.environ.get("HUBSWARM_LAB_MOTO_PORT", "5055"))


def endpoint():
    """EC2 endpoint URL of the lab's moto_server."""
    return f"http://127.0.0.1:{moto_port()}"


def moto_answers():
    """True when a moto_server answers on the lab port."""
    try:
        with urllib.request.urlopen(f"{endpoint()}/moto-api/data.json", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def ensure_moto():
    """Reuse the moto_server answering on the lab port, or start one detached (pid and log in .lab/)."""
    if moto_answers():
        return
    LAB_DIR.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port())]
    with open(MOTO_LOG_FILE, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    MOTO_PID_FILE.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + MOTO_START_SECONDS
    while not moto_answers():
        if process.poll() is not None or time.monotonic() > deadline:
            raise Exit(f"lab: moto_server did not start on port {moto_port()}; see .lab/moto.log", code=1)
        time.sleep(0.2)


def stop_moto():
    """Stop the moto_server the lab started (the one in .lab/moto.pid), if it still runs."""
    if not MOTO_PID_FILE.exists():
        return
    pid = int(MOTO_PID_FILE.read_text())
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"moto" in cmdline.read_bytes():
        os.kill(pid, signal.SIGTERM)
    MOTO_PID_FILE.unlink()


def client():
    """boto3 EC2 client for the lab's moto_server (explicit fake credentials; ~/.aws is not read)."""
    import boto3  # here, not at the top: boto3 costs ~0.1 s of every fab start

    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint(), **FAKE_CREDENTIALS)


def _instances(ec2):
    """All instances not terminated, as a list of (name, instance dict)."""
    found = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] not in ("terminated", "shutting-down"):
                    tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
                    found.append((tags.get("Name", ""), instance))
    return found


def _subnet_id(ec2):
    """The lab subnet's id, or None when moto does not hold exactly one lab VPC and subnet."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": [VPC_CIDR]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": [SUBNET_CIDR]}])["Subnets"]
    return subnets[0]["SubnetId"] if len(vpcs) == 1 and len(subnets) == 1 else None


def _create_subnet(ec2):
    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "lab"}])
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=SUBNET_CIDR, AvailabilityZone=f"{REGION}a")
    return subnet["Subnet"]["SubnetId"]


def _run_instance(ec2, subnet_id, name, ip, cluster, role, state):
    tags = [
        {"Key": "Name", "Value": name},
        {"Key": "hubswarm:cluster", "Value": cluster},
        {"Key": "hubswarm:role", "Value": role},
    ]
    instance = ec2.run_instances(
        ImageId=IMAGE_ID,
        InstanceType="t3.medium",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        PrivateIpAddress=ip,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[instance["InstanceId"]])


def reset_moto():
    """Clear every resource held by the lab's moto_server."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint()}/moto-api/reset", method="POST"), timeout=10)


def ensure_instances(hosts):
    """Make moto hold exactly one running instance per lab host, plus the decoys.

    HOSTS maps host name (`hub`, `worker1`...) to private IP. Missing instances are added; lab
    workers beyond HOSTS are terminated; if moto's state contradicts the lab (a duplicate, a
    wrong IP or state, no unique lab subnet) it is reset and seeded again.
    """
    wanted = {
        f"lab-{host}": (ip, CLUSTER, "hub" if host == "hub" else "worker", "running") for host, ip in hosts.items()
    }
    wanted.update({name: (ip, cluster, role, state) for name, ip, cluster, role, state in DECOYS})
    ec2 = client()
    existing = _instances(ec2)
    subnet_id = _subnet_id(ec2)
    names = [name for name, _ in existing]
    consistent = subnet_id is not None and all(
        names.count(name) == 1
        and instance.get("PrivateIpAddress") == wanted[name][0]
        and instance["State"]["Name"] in (wanted[name][3], "pending")
        for name, instance in existing
        if name in wanted
    )
    if not consistent:
        reset_moto()
        subnet_id, existing = _create_subnet(ec2), []
    present = {name for name, _ in existing}
    for name, spec in wanted.items():
        if name not in present:
            _run_instance(ec2, subnet_id, name, *spec)
    extra = [
        instance["InstanceId"] for name, instance in existing if name.startswith("lab-worker") and name not in wanted
    ]
    if extra:
        ec2.terminate_instances(InstanceIds=extra)


def lab_instances():
    """Instances of the lab's own hosts (Name `lab-<host>`, not terminated), by Name."""
    return {
        name: instance
        for name, instance in _instances(client())
        if name.startswith("lab-") and not name.startswith("lab-decoy")
    }


def running_lab_instances():
    """Number of running instances tagged hubswarm:cluster=lab, or None when moto does not answer."""
    if not moto_answers():
        return None
    filters = [
        {"Name": "tag:hubswarm:cluster", "Values": [CLUSTER]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    pages = client().get_paginator("describe_instances").paginate(Filters=filters)
    return sum(len(reservation["Instances"]) for page in pages for reservation in page["Reservations"])
