"""The lab's EC2 API: a local moto server holding one instance per lab host, plus decoys, and
the lab's Route53 (the same server) holding the hosted zone of the hub's lab name.

The deployment finds its hosts through the EC2 API (tags `hubswarm:cluster`, `hubswarm:role`,
state running). The lab answers that API with moto on 127.0.0.1, seeded so that each lab
host has a running instance whose PrivateIpAddress is the host's real IP, plus decoys the
deployment must ignore: a stopped worker of cluster `lab` and a running hub and worker of
cluster `other`. The server is the lab's own (tasks/lab/ec2_api.py): for each worker that
`fab scale` launches it makes a lab host at the address moto gave, and removes it when the
instance is terminated.
"""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from invoke.exceptions import Exit

from .docker import GATEWAY_IP, LAB_DIR, NETWORK_PREFIX, PROJECT_ROOT, SLOT, make_lab_dir

REGION = "us-west-2"
VPC_CIDR = "10.213.0.0/16"
SUBNET_CIDR = f"{NETWORK_PREFIX}0/24"
IMAGE_ID = "ami-12c6146b"
CLUSTER = "lab"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
MOTO_PID_FILE = LAB_DIR / "moto.pid"
MOTO_LOG_FILE = LAB_DIR / "moto.log"
MOTO_START_SECONDS = 30
# Where the lab's EC2 API says what it is; a plain moto_server does not answer there.
API_PATH = "/lab-ec2-api"
API_MODULE = "tasks.lab.ec2_api"
# The launch settings `fab launch` and `fab scale` need (moto checks neither the AMI nor the key).
KEY_NAME = "hubswarm-lab"
GONE = ("terminated", "shutting-down")

# Name, private IP, cluster, role, state: instances the deployment must NOT pick as lab hosts.
DECOYS = [
    ("lab-decoy-stopped", f"{NETWORK_PREFIX}200", CLUSTER, "worker", "stopped"),
    ("other-hub", f"{NETWORK_PREFIX}201", "other", "hub", "running"),
    ("other-worker1", f"{NETWORK_PREFIX}202", "other", "worker", "running"),
]


def urlopen(url, timeout, method=None):
    """A request to the lab's EC2 API. urllib.request loads here, for lab work only:
    importing it costs every `fab` start 5 ms."""
    import urllib.request

    return urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout)


def moto_port():
    """Port of the lab's moto_server: env HUBSWARM_LAB_MOTO_PORT, default 5055 (the next ones for
    the labs of other slots)."""
    return int(os.environ.get("HUBSWARM_LAB_MOTO_PORT", str(5055 + SLOT)))


def endpoint():
    """EC2 endpoint URL of the lab's moto_server."""
    return f"http://127.0.0.1:{moto_port()}"


def host_endpoint():
    """The same, as the lab's hosts reach it: at this machine's address on the lab network."""
    return f"http://{GATEWAY_IP}:{moto_port()}"


def moto_answers():
    """True when a moto_server answers on the lab port."""
    try:
        with urlopen(f"{endpoint()}/moto-api/data.json", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _port_taken():
    """True when something accepts connections on the lab port (cheaper than asking moto)."""
    try:
        with socket.create_connection(("127.0.0.1", moto_port()), timeout=2):
            return True
    except OSError:
        return False


def api_code():
    """What the lab's EC2 API should run: this checkout's lab code (it makes hosts with this
    checkout's key, known_hosts and metadata identities)."""
    sha = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {"project": str(PROJECT_ROOT), "code": sha.hexdigest()[:12]}


def api_identity():
    """What the lab's EC2 API on the lab port says it runs ({**api_code(), "pid": ...}); None when
    nothing, or something else (a plain moto_server), answers there."""
    try:
        with urlopen(f"{endpoint()}{API_PATH}", timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def ensure_moto():
    """Reuse this checkout's EC2 API answering on the lab port, or start it detached (pid and log
    in .lab/). Anything else answering there (a plain moto_server, an older or other checkout's
    API) is stopped first: it would not make hosts for the instances scale launches."""
    wanted = api_code()
    found = api_identity()
    if found and {key: found.get(key) for key in wanted} == wanted:
        return
    if found or _port_taken():
        _stop_listener(found)
    make_lab_dir()
    command = [sys.executable, "-m", API_MODULE, "--port", str(moto_port()), "--also-on", GATEWAY_IP]
    with open(MOTO_LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    MOTO_PID_FILE.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + MOTO_START_SECONDS
    while (api_identity() or {}).get("pid") != process.pid:
        if process.poll() is not None or time.monotonic() > deadline:
            raise Exit(f"lab: the lab's EC2 API did not start on port {moto_port()}; see .lab/moto.log", code=1)
        time.sleep(0.2)


def _is_lab_api(pid):
    """Whether process PID is a moto server (plain, or the lab's EC2 API): the only kind the lab stops."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"moto" in cmdline or API_MODULE.encode() in cmdline


def _listener_pid(port):
    """The pid of the process listening on TCP PORT (IPv4), from /proc; None when not found."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return None


def _stop_listener(found):
    """Stop the moto server answering on the lab port (FOUND: its identity, when it is a lab API)."""
    pid = (found or {}).get("pid") or _listener_pid(moto_port())
    if not (pid and _is_lab_api(pid)):
        raise Exit(
            f"lab: port {moto_port()} is taken by {f'pid {pid}' if pid else 'a process not seen here'}, not a moto "
            "server: stop it, or give the lab another port (HUBSWARM_LAB_MOTO_PORT)",
            code=1,
        )
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + MOTO_START_SECONDS
    while _port_taken():
        if time.monotonic() > deadline:
            raise Exit(f"lab: the old moto server on port {moto_port()} (pid {pid}) did not stop", code=1)
        time.sleep(0.2)


def stop_moto():
    """Stop the EC2 API the lab started (the one in .lab/moto.pid), if it still runs."""
    if not MOTO_PID_FILE.exists():
        return
    pid = int(MOTO_PID_FILE.read_text())
    if _is_lab_api(pid):
        os.kill(pid, signal.SIGTERM)
    MOTO_PID_FILE.unlink()


def client(service="ec2"):
    """boto3 client of SERVICE for the lab's moto_server (explicit fake credentials; ~/.aws is not read)."""
    import boto3  # here, not at the top: boto3 costs ~0.1 s of every fab start

    return boto3.client(service, region_name=REGION, endpoint_url=endpoint(), **FAKE_CREDENTIALS)


def _instances(ec2, gone=False):
    """All instances not terminated (GONE: only the terminated ones), as a list of (name, instance dict)."""
    found = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if (instance["State"]["Name"] in GONE) == gone:
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
    urlopen(f"{endpoint()}/moto-api/reset", timeout=10, method="POST")


def ensure_instances(hosts):
    """Make moto hold exactly one running instance per lab host, plus the decoys; return the lab
    subnet's id.

    HOSTS maps host name (`hub`, `worker1`...) to private IP. Missing instances are added; lab
    workers beyond HOSTS (those `fab scale` launched too) are terminated; if moto's state
    contradicts the lab (a duplicate, a wrong IP or state, no unique lab subnet, a missing one's
    IP held by another instance, even a terminated one) it is reset and seeded again.
    """
    wanted = {
        f"lab-{host}": (ip, CLUSTER, "hub" if host == "hub" else "worker", "running") for host, ip in hosts.items()
    }
    wanted.update({name: (ip, cluster, role, state) for name, ip, cluster, role, state in DECOYS})
    ec2 = client()
    existing = _instances(ec2)
    subnet_id = _subnet_id(ec2)
    names = [name for name, _ in existing]
    # A missing one's IP must be free, and moto keeps even a terminated instance's IP for good.
    held = {instance.get("PrivateIpAddress") for _, instance in existing + _instances(ec2, gone=True)}
    consistent = (
        subnet_id is not None
        and all(
            names.count(name) == 1
            and instance.get("PrivateIpAddress") == wanted[name][0]
            and instance["State"]["Name"] in (wanted[name][3], "pending")
            for name, instance in existing
            if name in wanted
        )
        and not any(ip in held for name, (ip, *_) in wanted.items() if name not in names)
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
    return subnet_id


def ensure_hosted_zone(name):
    """Make moto's Route53 hold a public hosted zone NAME (with no record of the lab's own: the
    deployment makes them); return its id."""
    route53 = client("route53")
    listed = route53.list_hosted_zones_by_name(DNSName=name)["HostedZones"]
    found = [zone["Id"] for zone in listed if zone["Name"] == f"{name}."]
    if not found:
        found = [route53.create_hosted_zone(Name=name, CallerReference=f"lab-{time.time_ns()}")["HostedZone"]["Id"]]
    return found[0].rsplit("/", 1)[-1]


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
