"""The lab's EC2 instance metadata service: a stand-in at 169.254.169.254 that only lab hosts reach.

The container hubswarm-lab-imds (labelled hubswarm.lab=1, so `lab.down` removes it) sits on the lab
network at STANDIN_IP, holds 169.254.169.254 on its loopback and runs files/lab-imds/imds.py (IMDSv2:
token, then items) from the lab host image. Every lab host routes 169.254.169.254 via STANDIN_IP and
blackholes the rest of 169.254.0.0/16 (files/lab/imds-route, a oneshot unit run at each boot): no
lab host, nor a container inside one, ever reaches this machine's own link-local services.

Each caller gets the identity of its source IP from .lab/imds/identities.json, which the stand-in
re-reads on every request: ensure_lab writes the fleet's (moto instance id, lab IP, no public
address), spare_host a made-up one; tests change them with set_identity. A host whose instance has
an instance profile holding a role (in moto) gets that role's credentials, made up (moto checks
none), as EC2 gives them: the lab's EC2 API writes them after each change (write_roles).

The same container is the lab's DNS (files/lab-imds/dns.py on STANDIN_IP:53, every lab host's
resolver, and the lab ACME server's for DNS-01). A name in a hosted zone of the lab's Route53
that holds A records is answered from them, a TXT question from its TXT records: .lab/imds/zones.json, which the lab's EC2 API (moto, which holds them) rewrites after each
change of records (write_zones) and which the DNS re-reads on every question. Where no such zone
holds it, the hub's lab name and every name under it (its users' servers') resolve to the hub,
as the records an operator makes for subdomains would; other names are asked upstream.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import subprocess
import time

from invoke.exceptions import Exit

from .docker import LAB_DIR, LAB_LABEL, NAME, NETWORK_PREFIX, PROJECT_ROOT, docker

CONTAINER = f"{NAME}-imds"
# The name every lab host knows it by, in its /etc/hosts (files/lab/imds-route reads it).
HOSTS_NAME = "hubswarm-lab-imds"
STANDIN_IP = f"{NETWORK_PREFIX}2"
METADATA_ADDRESS = "169.254.169.254"
SERVER_DIR = PROJECT_ROOT / "files" / "lab-imds"
DATA_DIR = LAB_DIR / "imds"
IDENTITIES_PATH = DATA_DIR / "identities.json"
ZONES_PATH = DATA_DIR / "zones.json"
CONFIG_LABEL = "hubswarm.lab.imds"
# The metadata items of an instance's role (iam/info, iam/security-credentials/ROLE).
IAM = "iam/"
REGION = "us-west-2"
START_SECONDS = 30


def _start(names_under):
    """The stand-in's command: the lab's DNS answering each name of NAMES_UNDER ({name: address})
    and every name under it in the background, then the metadata service. Its own network
    namespace is sealed too: link-local goes nowhere but to itself."""
    names = " ".join(shlex.quote(f"{name}={address}") for name, address in sorted(names_under.items()))
    return (
        f"ip route replace blackhole 169.254.0.0/16 && ip addr replace {METADATA_ADDRESS}/32 dev lo "
        f"&& {{ python3 -u /srv/imds/dns.py {names} & }} && exec python3 -u /srv/imds/imds.py"
    )


# Asked from inside the stand-in, from 169.254.169.254 itself: binding to it fails unless the address
# is already local there, so this can never reach another metadata service.
_READY = (
    "import http.client as h; "
    f"c = h.HTTPConnection('{METADATA_ADDRESS}', 80, timeout=2, source_address=('{METADATA_ADDRESS}', 0)); "
    "c.request('PUT', '/latest/api/token', headers={'X-aws-ec2-metadata-token-ttl-seconds': '5'}); "
    "assert c.getresponse().status == 200"
)


def _config_hash(image, start):
    """What the running stand-in was made from: the image, the server, its folders (another
    checkout of the project has its own) and the start command."""
    sha = hashlib.sha256(f"{image}\0{STANDIN_IP}\0{start}\0".encode())
    # The mounted folders themselves, not only their paths: a clone made again at the same
    # path has new folders, which a running stand-in's mounts would not see.
    for folder in (SERVER_DIR, DATA_DIR):
        st = folder.stat()
        sha.update(f"{folder}\0{st.st_dev}:{st.st_ino}\0".encode())
    for path in sorted(p for p in SERVER_DIR.iterdir() if p.is_file()):
        sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:12]


def ensure_standin(image, network, names_under):
    """Make the stand-in run (created from IMAGE on NETWORK, or recreated when out of date) and
    answer, its DNS answering each name of NAMES_UNDER ({name: address}) and every name under it
    where the lab's Route53 holds no record for them."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if not IDENTITIES_PATH.exists():
        _write({})
    start = _start(names_under)
    wanted = _config_hash(image, start)
    found = docker(
        "container",
        "inspect",
        "--format",
        f'{{{{index .Config.Labels "{CONFIG_LABEL}"}}}} {{{{.State.Running}}}}',
        CONTAINER,
        check=False,
    )
    config, _, running = found.partition(" ")
    if found and config != wanted:
        docker("container", "rm", "--force", CONTAINER)
        found = ""
    if not found:
        docker(
            "container",
            "run",
            "--detach",
            "--name",
            CONTAINER,
            "--hostname",
            "imds",
            "--label",
            LAB_LABEL,
            "--label",
            f"{CONFIG_LABEL}={wanted}",
            "--restart",
            "unless-stopped",
            "--network",
            network,
            "--ip",
            STANDIN_IP,
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_ADMIN",
            "--cap-add",
            "NET_BIND_SERVICE",
            "--volume",
            f"{SERVER_DIR}:/srv/imds:ro",
            "--volume",
            f"{DATA_DIR}:/srv/imds-data:ro",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            start,
        )
    elif running != "true":
        docker("container", "start", CONTAINER)
    deadline = time.monotonic() + START_SECONDS
    while not _answers():
        if time.monotonic() > deadline:
            logs = docker("logs", "--tail", "20", CONTAINER, check=False)
            raise Exit(f"lab: the metadata stand-in {CONTAINER} does not answer: {logs}", code=1)
        time.sleep(0.2)


def _answers():
    """True when the stand-in gives a token."""
    try:
        command = ["docker", "exec", CONTAINER, "python3", "-c", _READY]
        return subprocess.run(command, capture_output=True, timeout=10, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def standin_state():
    """`running`, `exited`... of the stand-in container, or `absent`."""
    return docker("container", "inspect", "--format", "{{.State.Status}}", CONTAINER, check=False) or "absent"


@contextlib.contextmanager
def _locked():
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read():
    try:
        return json.loads(IDENTITIES_PATH.read_text())
    except FileNotFoundError:
        return {}


def _write(identities):
    _replace(IDENTITIES_PATH, identities)


def _replace(path, data):
    """Replace the JSON file PATH in one step (the stand-in may read it at any moment)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = DATA_DIR / f".{path.stem}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)


def write_zones(zones):
    """The lab's DNS answers from ZONES from now on: {zone: {"A": {record name: [addresses]},
    "TXT": {record name: [[strings of one value], ...]}}}, the A and TXT records of every hosted
    zone the lab's Route53 holds (names lower-cased, without the final dot; a type the zone has
    no record of left out)."""
    _replace(ZONES_PATH, zones)


def identity(ip):
    """The metadata items the stand-in serves to IP ({} when it has none)."""
    return dict(_read().get(ip, {}))


def _item_name(key):
    """`public_hostname` -> `public-hostname`, `placement__region` -> `placement/region`."""
    return key.replace("__", "/").replace("_", "-")


def set_identity(ip, items=None, *, replace=False, **named):
    """Give IP these metadata items (dict ITEMS and/or keywords, `placement__region=` for
    `placement/region`); an item set to None is removed. REPLACE drops every other item.
    Returns IP's identity as served from now on."""
    changes = {**(items or {}), **{_item_name(key): value for key, value in named.items()}}
    with _locked():
        current = _read()
        merged = {} if replace else dict(current.get(ip, {}))
        merged.update(changes)
        current[ip] = {key: str(value) for key, value in merged.items() if value is not None}
        _write(current)
        return dict(current[ip])


def forget(*ips):
    """The stand-in no longer knows IPS (their hosts are gone)."""
    with _locked():
        current = _read()
        if any(ip in current for ip in ips):
            _write({ip: items for ip, items in current.items() if ip not in ips})


def host_identity(ip, instance_id, instance_type="t3.medium", image_id="ami-12c6146b", zone=f"{REGION}a"):
    """The items EC2 gives a private instance (no public-ipv4 / public-hostname)."""
    local_hostname = f"ip-{ip.replace('.', '-')}.{REGION}.compute.internal"
    return {
        "instance-id": instance_id,
        "ami-id": image_id,
        "instance-type": instance_type,
        "local-ipv4": ip,
        "local-hostname": local_hostname,
        "hostname": local_hostname,
        "placement/region": REGION,
        "placement/availability-zone": zone,
    }


def made_up_instance_id():
    return "i-0" + secrets.token_hex(8)


def role_items(instance_id, role):
    """The metadata items of the role an instance's instance profile holds: ROLE, moto's
    {InstanceProfileArn, InstanceProfileId, RoleName}. The stand-in serves them with their times."""
    made_up = hashlib.sha256(f"{instance_id}\0{role['RoleName']}".encode()).hexdigest()
    info = {k: role[k] for k in ("InstanceProfileArn", "InstanceProfileId")}
    credentials = {
        "Type": "AWS-HMAC",
        "AccessKeyId": "ASIA" + made_up[:16].upper(),
        "SecretAccessKey": made_up[16:56],
        "Token": made_up,
    }
    return {
        "iam/info": json.dumps({"Code": "Success", **info}),
        f"iam/security-credentials/{role['RoleName']}": json.dumps({"Code": "Success", **credentials}),
    }


def _role_of(items):
    """The items of an identity that are its role's."""
    return {item: value for item, value in items.items() if item.startswith(IAM)}


def write_roles(roles):
    """Give each host the credentials of the role its instance's instance profile holds, and no
    other: ROLES maps instance id -> moto's {InstanceProfileArn, InstanceProfileId, RoleName}."""
    with _locked():
        current = _read()
        wanted = {}
        for ip, items in current.items():
            role = roles.get(items.get("instance-id"))
            wanted[ip] = {item: value for item, value in items.items() if not item.startswith(IAM)}
            wanted[ip].update(role_items(items["instance-id"], role) if role else {})
        if wanted != current:
            _write(wanted)


def write_fleet(instances):
    """Set the fleet's identities: INSTANCES maps IP -> EC2 instance dict (moto's). The items of
    other hosts (spares) stay. Items a test added to a fleet host (a public-hostname...) are
    dropped: the fleet is private, as `lab.up` makes it. Its role stays while its instance is the
    same (moto holds that instance's profile still)."""
    with _locked():
        current = _read()
        for ip, instance in instances.items():
            was = current.get(ip, {})
            current[ip] = host_identity(
                ip,
                instance["InstanceId"],
                instance.get("InstanceType", "t3.medium"),
                instance.get("ImageId", "ami-12c6146b"),
                instance.get("Placement", {}).get("AvailabilityZone", f"{REGION}a"),
            )
            if was.get("instance-id") == instance["InstanceId"]:
                current[ip].update(_role_of(was))
        if current != _read():
            _write(current)


def remove():
    """Remove the identities and the zones (the stand-in container itself goes with everything labelled)."""
    for path in (IDENTITIES_PATH, ZONES_PATH, DATA_DIR / ".lock"):
        path.unlink(missing_ok=True)
