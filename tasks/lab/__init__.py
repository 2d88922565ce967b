"""The lab: a hub and N workers that behave like fresh Debian 12 EC2 hosts, on this machine.

Each lab host is a Docker container labelled hubswarm.lab=1 running systemd as PID 1 and sshd,
with login user `admin` (passwordless sudo, the lab's own ed25519 key), a fixed IP on the docker
network `hubswarm-lab` (10.213.0.0/24: hub .10, workerN .10+N) and the power to run its own
Docker daemon. A local moto server answers the EC2 API for them (see tasks/lab/ec2.py), and
Route53 too, with a hosted zone (LAB_ZONE) for the hub's lab name, from whose records the lab's
DNS answers (tasks/lab/imds.py); `.lab/lab.env` points the deployment at all of it. That EC2 API
is the lab's own (tasks/lab/ec2_api.py): for each worker `fab scale` launches it makes a lab host
at the IP moto gave the instance (follow_launch), and removes it when the instance is terminated
(follow_termination); ensure_lab brings the lab back to its fixed hosts.

Shared storage: the docker volume hubswarm-lab-home is mounted at /mnt/nfs/home in every host,
standing in for EFS (the kernel here has no NFS client). Lab-only speedup: the docker volume
hubswarm-lab-apt shares downloaded .deb files between hosts (files/lab/apt-shared-cache), and
hubswarm-lab-pip, -uv and -npm are root's pip, uv and npm caches on every host; like the
images, they survive `lab.down` unless --images is given.

Instance metadata: every lab host reaches 169.254.169.254 only through the lab's stand-in
(tasks/lab/imds.py), with its own identity; the rest of 169.254.0.0/16 is blackholed in every host.

Several labs can run side by side (bin/test runs two): HUBSWARM_LAB_SLOT=N (1 to 9) names
everything of lab N apart from the first's (slot 0, the default): its folder .lab-N, network
hubswarm-labN on 10.213.N.0/24, containers hubswarm-labN-*, label hubswarm.lab=N+1, and its EC2
API on port 5055+N. The images and download caches serve them all.

Python API (used by tests and bench): ensure_lab, recreate_host, spare_host, remove_host, destroy;
follow_launch and follow_termination are the EC2 API's.
"""

import io
import ipaddress
import re
import secrets
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dotenv import dotenv_values
from invoke import Collection, task
from invoke.exceptions import Exit

from . import ec2 as lab_ec2
from . import image as lab_image
from . import imds as lab_imds
from .docker import (
    GATEWAY_IP,
    LAB_DIR,
    LAB_LABEL,
    NAME,
    NETWORK_PREFIX,
    docker,
    docker_answers,
    ensure_docker_daemon,
    make_lab_dir,
)

NETWORK = NAME
SUBNET = f"{NETWORK_PREFIX}0/24"
IP_PREFIX = NETWORK_PREFIX
HUB_HOST_NUMBER = 10
CONTAINER_PREFIX = f"{NAME}-"
# The fleet hosts the tests run on Debian 13 (trixie), so every deployment they make proves a
# mixed cluster; the others, and every host of `fab lab.up` without --mixed, run Debian 12.
MIXED = ("worker2",)
HOME_VOLUME = f"{NAME}-home"
HOMES_PATH = "/mnt/nfs/home"
LAB_DOMAIN = "hub.lab.example"
# The lab's Route53 hosted zone that holds it (as example.com holds hub.example.com).
LAB_ZONE = LAB_DOMAIN.split(".", 1)[1]
APT_VOLUME = "hubswarm-lab-apt"
APT_SHARED_PATH = "/var/cache/apt/lab-shared"
# Lab-only speedup, like the apt cache: every hub the tests make again downloads the same
# wheels and npm packages, so root's pip, uv and npm caches are shared (all are safe to share).
DOWNLOAD_CACHES = {
    "hubswarm-lab-pip": "/root/.cache/pip",
    "hubswarm-lab-uv": "/root/.cache/uv",
    "hubswarm-lab-npm": "/root/.npm",
}
CACHE_LABEL = "hubswarm.lab.cache=1"
KEY_PATH = LAB_DIR / "id_ed25519"
KNOWN_HOSTS_PATH = LAB_DIR / "known_hosts"
ENV_PATH = LAB_DIR / "lab.env"
ADMIN_UID = 1000
BOOT_SECONDS = 90
# A host made for a launch is booted before the EC2 API answers, well within botocore's 60 s
# read timeout: a client that gave up would launch again.
FOLLOW_BOOT_SECONDS = 40

# What `docker run --privileged` would give, minus CAP_SYS_RESOURCE which this machine lacks:
# systemd as PID 1 and a Docker daemon inside (see FIELD-NOTES).
HOST_RUN_FLAGS = [
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--device-cgroup-rule",
    "a *:* rwm",
    "--tmpfs",
    "/run:exec,mode=755",
    "--tmpfs",
    "/run/lock",
    "--tmpfs",
    "/tmp:exec,mode=1777",
    "--volume",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]


@dataclass
class LabInfo:
    """Where the lab is: host IPs, the environment for the deployment, SSH key and known_hosts."""

    hub_ip: str
    worker_ips: list
    env: dict = field(repr=False)  # holds the hub's passwords: never in a test's output
    key_path: Path
    known_hosts_path: Path
    #: The hosts this ensure_lab made (pristine: nothing deployed on them yet).
    fresh: frozenset = frozenset()

    @property
    def hosts(self):
        """Host name (`hub`, `worker1`...) to IP, hub first."""
        workers = {f"worker{number}": ip for number, ip in enumerate(self.worker_ips, start=1)}
        return {"hub": self.hub_ip, **workers}


# On EC2 the hub has a machine of its own; here it shares this one's CPUs with the workers,
# whose starting notebooks would take them all. A CPU weight 8 times a worker's gives the
# hub what its own machine would, so the lab measures the hub, not the sharing.
HUB_CPU_FLAGS = ("--cpu-shares", "8192")


def host_ip(host):
    """Fixed IP of a fleet host: hub 10.213.0.10, workerN 10.213.0.(10+N)."""
    if host == "hub":
        return f"{IP_PREFIX}{HUB_HOST_NUMBER}"
    if host.startswith("worker") and host[len("worker") :].isdigit():
        return f"{IP_PREFIX}{HUB_HOST_NUMBER + int(host[len('worker') :])}"
    raise Exit(f"lab: unknown lab host {host!r} (expected hub or workerN)", code=1)


def host_suite(host, debian13=MIXED):
    """The Debian release fleet host HOST runs: 13 for the hosts DEBIAN13 names, else 12."""
    return lab_image.DEBIAN_13 if host in debian13 else lab_image.DEBIAN_12


def fleet(workers):
    """Host name to IP for a hub and WORKERS workers."""
    return {host: host_ip(host) for host in ["hub", *(f"worker{n}" for n in range(1, workers + 1))]}


def lab_containers():
    """Lab containers, as host name -> {container, id, state, ip, role}."""
    # Filtered on the host label too: images built FROM the lab image inherit its label.
    rows = docker(
        "container",
        "ls",
        "--all",
        "--filter",
        "label=hubswarm.lab.host",
        "--filter",
        f"label={LAB_LABEL}",
        "--format",
        '{{.Names}}\t{{.ID}}\t{{.State}}\t{{.Label "hubswarm.lab.host"}}\t{{.Label "hubswarm.lab.ip"}}'
        '\t{{.Label "hubswarm.lab.role"}}\t{{.Label "hubswarm.lab.suite"}}',
    )
    containers = {}
    for row in rows.splitlines():
        # (an empty last label loses its tab to the output's stripping)
        name, container_id, state, host, ip, role, suite = (row.split("\t") + [""])[:7]
        containers[host] = {
            "container": name,
            "id": container_id,
            "state": state,
            "ip": ip,
            "role": role,
            # Hosts made before the lab had Debian 13 ran 12.
            "suite": suite or lab_image.DEBIAN_12,
        }
    return containers


def _ensure_key():
    """Create the lab's SSH key pair in .lab/ if missing."""
    make_lab_dir()
    if KEY_PATH.exists():
        KEY_PATH.chmod(0o600)  # ssh refuses a key others can read
        return
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    KEY_PATH.with_suffix(".pub").write_bytes(public + b" hubswarm-lab\n")
    KEY_PATH.touch(mode=0o600)
    KEY_PATH.write_bytes(private)
    return True


def _push_authorized_key(container):
    """Install the lab public key as admin's authorized_keys (owner admin, mode 0600)."""
    data = KEY_PATH.with_suffix(".pub").read_bytes()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("authorized_keys")
        info.size, info.mode, info.uid, info.gid = len(data), 0o600, ADMIN_UID, ADMIN_UID
        tar.addfile(info, io.BytesIO(data))
    result = subprocess.run(
        ["docker", "cp", "--archive", "-", f"{container}:/home/admin/.ssh"],
        input=archive.getvalue(),
        capture_output=True,
    )
    if result.returncode != 0:
        raise Exit(f"lab: cannot install the SSH key in {container}: {result.stderr.decode().strip()}", code=1)


def _ensure_network_and_volumes():
    """Create the lab network and shared volumes if missing."""
    if not docker("network", "ls", "--quiet", "--filter", f"name=^{NETWORK}$"):
        docker("network", "create", "--label", LAB_LABEL, "--subnet", SUBNET, "--gateway", GATEWAY_IP, NETWORK)
    docker("volume", "create", "--label", LAB_LABEL, HOME_VOLUME)
    for volume in (APT_VOLUME, *DOWNLOAD_CACHES):
        docker("volume", "create", "--label", CACHE_LABEL, volume)


def _create_host(host, ip, role, suite=lab_image.DEBIAN_12):
    """Create and start a fresh lab host container on Debian SUITE (without waiting for it to boot)."""
    image = lab_image.ensure_image(suite)
    container = f"{CONTAINER_PREFIX}{host}"
    docker_volume = f"{container}-docker"
    docker("volume", "create", "--label", LAB_LABEL, docker_volume)
    docker(
        "container",
        "create",
        "--name",
        container,
        "--hostname",
        host,
        "--label",
        LAB_LABEL,
        "--label",
        f"hubswarm.lab.host={host}",
        "--label",
        f"hubswarm.lab.ip={ip}",
        "--label",
        f"hubswarm.lab.role={role}",
        "--label",
        f"hubswarm.lab.suite={suite}",
        "--network",
        NETWORK,
        "--ip",
        ip,
        *HOST_RUN_FLAGS,
        *(HUB_CPU_FLAGS if role == "hub" else ()),
        "--volume",
        f"{HOME_VOLUME}:{HOMES_PATH}",
        "--volume",
        f"{APT_VOLUME}:{APT_SHARED_PATH}",
        *(flag for volume, path in DOWNLOAD_CACHES.items() for flag in ("--volume", f"{volume}:{path}")),
        # The lab's stand-in for the hub's public DNS name (letsencrypt checks it on the hub).
        "--add-host",
        f"{LAB_DOMAIN}:{host_ip('hub')}",
        # The lab's DNS, which answers for the hub's zone (files/lab-imds/dns.py).
        "--dns",
        lab_imds.STANDIN_IP,
        # Where the host routes 169.254.169.254 (files/lab/imds-route, at every boot).
        "--add-host",
        f"{lab_imds.HOSTS_NAME}:{lab_imds.STANDIN_IP}",
        # An ext4-backed /var/lib/docker lets the host's own Docker use overlay2, as on EC2.
        "--volume",
        f"{docker_volume}:/var/lib/docker",
        image,
    )
    _push_authorized_key(container)
    docker("container", "start", container)


def _remove_container(host):
    """Remove a lab host container and its /var/lib/docker volume."""
    container = f"{CONTAINER_PREFIX}{host}"
    docker("container", "rm", "--force", "--volumes", container, check=False)
    docker("volume", "rm", "--force", f"{container}-docker", check=False)


def _wait_booted(host, seconds=BOOT_SECONDS):
    """Wait until systemd in HOST finished booting; raise Exit if it did not or a unit failed."""
    container = f"{CONTAINER_PREFIX}{host}"
    deadline = time.monotonic() + seconds
    state = ""
    while time.monotonic() < deadline:
        state = docker("exec", container, "systemctl", "is-system-running", "--wait", check=False, timeout=seconds)
        if state in ("running", "degraded"):
            break
        time.sleep(0.2)
    if state != "running":
        failed = docker("exec", container, "systemctl", "--failed", "--no-legend", check=False)
        raise Exit(f"lab: {container} did not boot cleanly (systemd: {state or 'no answer'}) {failed}", code=1)


def _sealed(host):
    """True when HOST routes 169.254.169.254 via the stand-in and blackholes the rest of 169.254.0.0/16."""
    routes = docker("exec", f"{CONTAINER_PREFIX}{host}", "ip", "-4", "route", "show", "table", "main", check=False)
    lines = {" ".join(line.split()) for line in routes.splitlines()}
    return {f"{lab_imds.METADATA_ADDRESS} via {lab_imds.STANDIN_IP} dev eth0", "blackhole 169.254.0.0/16"} <= lines


def _check_sealed(host):
    if not _sealed(host):
        raise Exit(f"lab: {CONTAINER_PREFIX}{host} has no route to the metadata stand-in (imds-route.service)", code=1)


def _ensure_standin():
    """The metadata stand-in, up before any lab host boots."""
    lab_imds.ensure_standin(lab_image.ensure_image(), NETWORK, {LAB_DOMAIN: host_ip("hub")})


def _write_known_hosts():
    """Rewrite .lab/known_hosts from the host keys of all running lab hosts."""
    lines = []
    for _host, info in sorted(lab_containers().items()):
        if info["state"] == "running":
            key = docker("exec", info["container"], "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
            key_type, key_data = key.split()[:2]
            lines.append(f"{info['ip']} {key_type} {key_data}\n")
    tmp = KNOWN_HOSTS_PATH.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(KNOWN_HOSTS_PATH)


USERLIST_PATH = LAB_DIR / "userlist"
LAB_USERLIST = "teacher@lab.example admin\nstudent1@lab.example\nstudent2@lab.example\n"


def _lab_passwords():
    """The lab hub's shared passwords and metrics token: kept from the current lab.env, else made now."""
    old = dotenv_values(ENV_PATH) if ENV_PATH.is_file() else {}
    return {
        "HUBSWARM_HUB_PASSWORD": old.get("HUBSWARM_HUB_PASSWORD") or secrets.token_urlsafe(12),
        "HUBSWARM_HUB_ADMIN_PASSWORD": old.get("HUBSWARM_HUB_ADMIN_PASSWORD") or secrets.token_urlsafe(32),
        "HUBSWARM_METRICS_TOKEN": old.get("HUBSWARM_METRICS_TOKEN") or secrets.token_hex(32),
    }


def lab_env(subnet_id):
    """Environment that points the deployment at the lab (written to .lab/lab.env); SUBNET_ID is
    the lab subnet's in moto, where `fab scale` launches."""
    if not USERLIST_PATH.is_file():
        USERLIST_PATH.write_text(LAB_USERLIST)
    return {
        "AWS_ENDPOINT_URL_EC2": lab_ec2.endpoint(),
        # The same moto answers Route53 (its zone LAB_ZONE), IAM and S3 (the hub's backups, read from
        # here): boto3's own settings, as for EC2.
        "AWS_ENDPOINT_URL_ROUTE_53": lab_ec2.endpoint(),
        "AWS_ENDPOINT_URL_IAM": lab_ec2.endpoint(),
        "AWS_ENDPOINT_URL_S3": lab_ec2.endpoint(),
        # ...and the hub's own AWS clients, which reach it on the lab network.
        "HUBSWARM_HUB_AWS_ENDPOINTS": lab_ec2.host_endpoint(),
        "AWS_DEFAULT_REGION": lab_ec2.REGION,
        "AWS_ACCESS_KEY_ID": lab_ec2.FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": lab_ec2.FAKE_CREDENTIALS["aws_secret_access_key"],
        "HUBSWARM_CLUSTER": lab_ec2.CLUSTER,
        "HUBSWARM_SSH_USER": "admin",
        "HUBSWARM_SSH_KEY": str(KEY_PATH),
        "HUBSWARM_KNOWN_HOSTS": str(KNOWN_HOSTS_PATH),
        "HUBSWARM_LAB": "1",
        # Its settings apply to its hosts only: a target outside this subnet stops the run.
        "HUBSWARM_LAB_SUBNET": SUBNET,
        "HUBSWARM_SUBNET_ID": subnet_id,
        "HUBSWARM_AMI": lab_ec2.IMAGE_ID,
        "HUBSWARM_KEY_NAME": lab_ec2.KEY_NAME,
        "HUBSWARM_HOMES_PATH": HOMES_PATH,
        # Its hosts are reached by address: users' servers share the hub's origin, unless a test
        # gives the hub the lab's DNS name (LAB_DOMAIN), under which the lab's DNS answers too,
        # and maybe the lab's Route53 zone (HUBSWARM_ROUTE53_ZONE=LAB_ZONE) to keep its records.
        "HUBSWARM_SINGLE_ORIGIN": "1",
        "HUBSWARM_USERLIST": str(USERLIST_PATH),
        # No registry in the lab: the notebook image is built here on the lab's base and pushed.
        "HUBSWARM_IMAGE_SOURCE": "push",
        "HUBSWARM_IMAGE_BASE": lab_image.image_tag(),
        **_lab_passwords(),
    }


def _write_env(env):
    make_lab_dir()
    lines = ["# Written by `fab lab.up`; fabfile.py loads it after .env. Removed by `fab lab.down`.\n"]
    lines += [f'{key}="{value}"\n' for key, value in env.items()]
    ENV_PATH.touch(mode=0o600)
    ENV_PATH.write_text("".join(lines))


def ensure_lab(workers=2, debian13=MIXED):
    """Bring the lab to a hub and WORKERS workers, all booted, registered in EC2; return LabInfo.
    The hosts DEBIAN13 names run Debian 13 (its image is built only when one does), the rest 12;
    DEBIAN13 None keeps each host's release (a new host runs Debian 12).

    Idempotent: existing hosts are kept (started if stopped), missing ones created, workers
    beyond WORKERS removed, whatever `fab scale` made: a host at another IP than its fixed one is
    made again, and EC2's extra workers are terminated. Spare hosts (spare_host) are left alone.
    """
    ensure_docker_daemon()
    _ensure_key()
    _ensure_network_and_volumes()
    _ensure_standin()
    wanted = fleet(workers)
    containers = lab_containers()
    made, suites = set(), {}
    for host, info in containers.items():
        if info["role"] == "worker" and host not in wanted:
            _remove_container(host)
            lab_imds.forget(info["ip"])
    for host, ip in wanted.items():
        # Made on the other Debian release, or by `fab scale` at the IP moto gave it.
        kept = containers[host]["suite"] if host in containers else lab_image.DEBIAN_12
        suite = suites[host] = kept if debian13 is None else host_suite(host, debian13)
        if host in containers and (containers[host]["suite"], containers[host]["ip"]) != (suite, ip):
            _remove_container(host)
            lab_imds.forget(containers[host]["ip"])
            del containers[host]
        if host not in containers:
            _create_host(host, ip, "hub" if host == "hub" else "worker", suite)
            made.add(host)
        else:
            if containers[host]["state"] != "running":
                docker("container", "start", containers[host]["container"])
            if host == "hub":  # (a hub made before it had its CPU weight)
                docker("container", "update", *HUB_CPU_FLAGS, containers[host]["container"])
            # Always: another checkout of the project may have put its own key there.
            _push_authorized_key(containers[host]["container"])
    for host, ip in wanted.items():
        _wait_booted(host)
        if not _sealed(host):
            # Made before the lab had a metadata stand-in: it could reach this machine's own.
            print(f"lab: {host} has no route to the metadata stand-in: recreating it", file=sys.stderr)
            _remove_container(host)
            _create_host(host, ip, "hub" if host == "hub" else "worker", suites[host])
            made.add(host)
            _wait_booted(host)
            _check_sealed(host)
    _write_known_hosts()
    lab_ec2.ensure_moto()
    subnet_id = lab_ec2.ensure_instances(wanted)  # (may reset moto: the zone too)
    lab_ec2.ensure_hosted_zone(LAB_ZONE)
    by_name = lab_ec2.lab_instances()
    lab_imds.write_fleet({ip: by_name[f"lab-{host}"] for host, ip in wanted.items()})
    env = lab_env(subnet_id)
    _write_env(env)
    return LabInfo(
        hub_ip=wanted["hub"],
        worker_ips=[ip for host, ip in wanted.items() if host != "hub"],
        env=env,
        key_path=KEY_PATH,
        known_hosts_path=KNOWN_HOSTS_PATH,
        fresh=frozenset(made),
    )


def recreate_host(host):
    """Throw lab host HOST (`hub`, `worker1`, a spare...) away and boot a fresh one, same name and IP.

    Its EC2 instance and metadata identity are kept; .lab/known_hosts gets the new host key.
    Returns the IP.
    """
    [ip] = recreate_hosts(host)
    return ip


def recreate_hosts(*hosts):
    """:func:`recreate_host` for each of HOSTS, booting side by side; their IPs."""
    containers = lab_containers()
    _ensure_standin()
    ips = []
    for host in hosts:
        existing = containers.get(host)
        ips.append(existing["ip"] if existing else host_ip(host))
        _remove_container(host)
        _create_host(
            host,
            ips[-1],
            existing["role"] if existing else ("hub" if host == "hub" else "worker"),
            existing["suite"] if existing else host_suite(host),
        )
    for host in hosts:
        _wait_booted(host)
        _check_sealed(host)
    _write_known_hosts()
    return ips


def reboot_host(host):
    """Reboot lab host HOST (its container restarts; its disk and Docker state stay) and wait until it is up."""
    docker("container", "restart", "--time", "5", f"{CONTAINER_PREFIX}{host}")
    _wait_booted(host)


def spare_host(host, ip):
    """Boot a fresh lab host HOST at IP that is NOT registered in EC2; return IP.

    For tests that need a pristine host. Any previous spare of that name is thrown away. Use IPs
    from 10.213.0.100-199 (fleet hosts use .10 upwards, EC2 decoys .200 upwards). Its instance
    metadata is that of a fresh private instance with a made-up id; change it with
    lab_imds.set_identity(IP, public_hostname=...).
    """
    ensure_docker_daemon()
    _ensure_key()
    _ensure_network_and_volumes()
    _ensure_standin()
    _remove_container(host)
    lab_imds.set_identity(ip, lab_imds.host_identity(ip, lab_imds.made_up_instance_id()), replace=True)
    _create_host(host, ip, "spare")
    _wait_booted(host)
    _check_sealed(host)
    _write_known_hosts()
    return ip


def remove_host(host):
    """Remove lab host HOST (typically a spare), its known_hosts entry and its metadata; EC2 is not touched."""
    existing = lab_containers().get(host)
    _remove_container(host)
    if existing:
        lab_imds.forget(existing["ip"])
    _write_known_hosts()


# Never a host's: the network's own address, docker's gateway, the metadata stand-in, broadcast.
NOT_FOR_HOSTS = {f"{IP_PREFIX}0", GATEWAY_IP, lab_imds.STANDIN_IP, f"{IP_PREFIX}255"}


def follow_launch(host, ip, instance_id):
    """Make lab worker HOST (`worker3`...) at IP, where EC2 launched INSTANCE_ID: booted, sealed,
    in known_hosts, serving that instance's metadata. Refused (Exit) when the lab cannot put it
    there: a name that is not workerN, an IP outside the lab or taken, a host of that name.
    For the lab's EC2 API (tasks/lab/ec2_api.py), which calls it for each worker `fab scale` launches.
    """
    if not re.fullmatch(r"worker[0-9]+", host):
        raise Exit(f"lab: instance {instance_id} is named lab-{host}, not lab-workerN: no lab host for it", code=1)
    if not ip or ipaddress.ip_address(ip) not in ipaddress.ip_network(SUBNET) or ip in NOT_FOR_HOSTS:
        raise Exit(f"lab: EC2 put {instance_id} at {ip}, where no lab host can be", code=1)
    for other, info in lab_containers().items():
        if other == host or info["ip"] == ip:
            raise Exit(f"lab: EC2 put {instance_id} ({host}) at {ip}, but lab host {other} is at {info['ip']}", code=1)
    lab_imds.set_identity(ip, lab_imds.host_identity(ip, instance_id), replace=True)
    try:
        _create_host(host, ip, "worker")
        _wait_booted(host, FOLLOW_BOOT_SECONDS)
        _check_sealed(host)
        _write_known_hosts()
    except BaseException:
        _remove_container(host)
        lab_imds.forget(ip)
        raise


def follow_termination(ip):
    """EC2 terminated the worker instance at IP: remove the lab worker there (never the hub nor a
    spare), its metadata identity and its known_hosts entry. Returns the hosts removed."""
    gone = [host for host, info in lab_containers().items() if info["ip"] == ip and info["role"] == "worker"]
    for host in gone:
        _remove_container(host)
    if gone:
        lab_imds.forget(ip)
        _write_known_hosts()
    return gone


def destroy(images=False):
    """Remove everything labelled as this lab (the first's: hubswarm.lab=1): containers with the
    metadata stand-in and the hosts made for `fab scale`, network, volumes; stop its EC2 API.

    With IMAGES, also remove the lab images and the apt cache volume.
    """
    if containers := docker("container", "ls", "--all", "--quiet", "--filter", f"label={LAB_LABEL}").split():
        docker("container", "rm", "--force", "--volumes", *containers)
    if networks := docker("network", "ls", "--quiet", "--filter", f"label={LAB_LABEL}").split():
        docker("network", "rm", *networks)
    for label in [LAB_LABEL, CACHE_LABEL] if images else [LAB_LABEL]:
        if volumes := docker("volume", "ls", "--quiet", "--filter", f"label={label}").split():
            docker("volume", "rm", "--force", *volumes)
    if images:
        lab_image.remove_images()
    lab_ec2.stop_moto()
    lab_imds.remove()
    for path in (ENV_PATH, KNOWN_HOSTS_PATH):
        path.unlink(missing_ok=True)


@task(help={"workers": "number of worker hosts (default 2)", "mixed": "worker2 on Debian 13, as the tests run it"})
def up(c, workers=2, mixed=False):
    """Create the lab (or bring it to the wanted shape): a hub and N workers on this machine.

    Each host is a container behaving like a fresh Debian EC2 host (a new one 12; --mixed: worker2 on 13) (systemd, sshd, user
    `admin` with sudo); the lab's EC2 API (moto) answers for them. Idempotent: running it
    again keeps the same hosts; a larger --workers adds workers, a smaller one removes the extra
    ones. Writes .lab/lab.env, which later `fab` commands load.
    """
    info = ensure_lab(workers=int(workers), debian13=MIXED if mixed else None)
    print(f"lab is up: hub {info.hub_ip}, workers {' '.join(info.worker_ips) or '(none)'}")
    print(
        f"EC2 API: {info.env['AWS_ENDPOINT_URL_EC2']} (moto, cluster `lab`), {lab_ec2.host_endpoint()} from the lab's hosts"
    )
    folder = LAB_DIR.name
    print(f"Later `fab` commands in this project load {folder}/lab.env and so deploy to the lab.")
    print(f"SSH by hand: ssh -i {folder}/id_ed25519 -o UserKnownHostsFile={folder}/known_hosts admin@{info.hub_ip}")
    print("See it with `fab lab.status`; remove it with `fab lab.down`.")


@task(help={"images": "also remove the lab images and the apt cache volume (next lab.up rebuilds)"})
def down(c, images=False):
    """Remove the lab: everything labelled as this lab, the lab's EC2 API and .lab/lab.env.

    Images and the apt cache are kept unless --images is given.
    """
    destroy(images=images)
    print("lab removed" + (" (images and apt cache too)" if images else ""))


@task
def status(c):
    """Show the lab hosts (container state, IP, systemd state) and the EC2 API endpoint."""
    containers = lab_containers() if docker_answers() else {}
    print(f"{'HOST':<10} {'CONTAINER':<10} {'IP':<14} SYSTEMD")
    for host, info in sorted(containers.items(), key=lambda item: tuple(map(int, item[1]["ip"].split(".")))):
        systemd = "-"
        if info["state"] == "running":
            systemd = docker("exec", info["container"], "systemctl", "is-system-running", check=False) or "?"
        print(f"{host:<10} {info['state']:<10} {info['ip']:<14} {systemd}")
    if not containers:
        print("(no lab hosts)")
    standin = lab_imds.standin_state() if docker_answers() else "absent"
    print(f"instance metadata: {lab_imds.METADATA_ADDRESS} via {lab_imds.STANDIN_IP} ({lab_imds.CONTAINER}: {standin})")
    count = lab_ec2.running_lab_instances()
    answer = f"{count} running instances of cluster lab" if count is not None else "not answering"
    print(f"EC2 API {lab_ec2.endpoint()}: {answer}")


ns = Collection("lab", up, down, status)
