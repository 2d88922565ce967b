"""The lab itself: hosts look like fresh Debian 12 EC2 hosts and the EC2 API describes them."""

import shlex
from pathlib import Path

import pytest

from fabrun import fab, lab_aws
from tasks import lab as lab_module
from tasks.lab import ec2 as lab_ec2
from tasks.lab import imds as lab_imds

SPARE_IP = f"{lab_module.IP_PREFIX}100"


@pytest.fixture(params=["hub", "worker1", "worker2"])
def host_ip(request, lab):
    return lab.hosts[request.param]


def test_host_answers_ssh_as_admin_with_passwordless_sudo(connect, host_ip):
    with connect(host_ip) as connection:
        assert connection.run("id -un", hide=True).stdout.strip() == "admin"
        assert connection.run("sudo -n true", hide=True, warn=True).ok
        assert connection.run("echo $LANG", hide=True).stdout.strip() == "C.UTF-8"


def test_host_runs_systemd(connect, host_ip):
    with connect(host_ip) as connection:
        state = connection.run("timeout 30 systemctl is-system-running --wait", hide=True, warn=True).stdout
        assert state.strip() == "running"


@pytest.fixture
def spare_ip(lab):
    """A pristine lab host (same image as the fleet, not in EC2), removed after the test."""
    yield lab_module.spare_host("spare1", SPARE_IP)
    lab_module.remove_host("spare1")


def test_fresh_host_has_nothing_of_the_deployment(connect, spare_ip):
    """Checked on a spare: fleet hosts may already hold a deployment from earlier tests."""
    with connect(spare_ip) as connection:
        assert (
            connection.run("timeout 30 systemctl is-system-running --wait", hide=True, warn=True).stdout.strip()
            == "running"
        )
        for program in ("docker", "nginx", "node", "jupyterhub"):
            assert connection.run(f"command -v {program}", hide=True, warn=True).failed, program
        assert connection.run("hostname", hide=True).stdout.strip() == "spare1"


def test_recreated_host_is_fresh_with_a_new_known_host_key(lab, connect, spare_ip):
    with connect(spare_ip) as connection:
        connection.run("touch ~/marker", hide=True)
    old_key = lab.known_hosts_path.read_text()
    assert lab_module.recreate_host("spare1") == spare_ip
    assert lab.known_hosts_path.read_text() != old_key
    with connect(spare_ip) as connection:
        assert connection.run("test -e ~/marker", hide=True, warn=True).failed


def test_hosts_share_the_home_volume(lab, connect):
    with connect(lab.hub_ip) as hub, connect(lab.worker_ips[0]) as worker:
        hub.run("sudo -n sh -c 'echo shared > /mnt/nfs/home/.lab-test'", hide=True)
        assert worker.run("cat /mnt/nfs/home/.lab-test", hide=True).stdout.strip() == "shared"
        worker.run("sudo -n rm /mnt/nfs/home/.lab-test", hide=True)


def test_ec2_api_lists_exactly_the_running_lab_hosts(lab):
    env = lab.env
    ec2 = lab_aws(env, "ec2")

    def private_ips(role):
        filters = [
            {"Name": "tag:hubswarm:cluster", "Values": [env["HUBSWARM_CLUSTER"]]},
            {"Name": "tag:hubswarm:role", "Values": [role]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
        reservations = ec2.describe_instances(Filters=filters)["Reservations"]
        return sorted(instance["PrivateIpAddress"] for r in reservations for instance in r["Instances"])

    assert private_ips("hub") == [lab.hub_ip]
    assert private_ips("worker") == sorted(lab.worker_ips)


def test_ensure_lab_twice_keeps_the_same_containers(lab):
    before = {host: info["id"] for host, info in lab_module.lab_containers().items()}
    again = lab_module.ensure_lab(workers=2)
    after = {host: info["id"] for host, info in lab_module.lab_containers().items()}
    assert after == before
    assert again.hosts == lab.hosts


# --- instance metadata: the lab's stand-in, and nothing else at 169.254.0.0/16 -------------------

IMDS = "http://169.254.169.254/latest"
# IMDSv2 as the deployment asks (tasks/core/facts.py): a token, then the item; prints BODY\nSTATUS.
IMDS_GET = (
    "t=$(curl -sf -X PUT --max-time 5 -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' " + IMDS + "/api/token) "
    "&& printf 'X-aws-ec2-metadata-token: %s\\n' \"$t\" | curl -s --max-time 5 -w '\\n%{http_code}' -H @- "
)
IMDS_GET_NO_TOKEN = "curl -s --max-time 5 -w '\\n%{http_code}' "


def imds_get(connection, item, token=True):
    """(HTTP status, body) of meta-data/ITEM asked on the host behind CONNECTION."""
    command = (IMDS_GET if token else IMDS_GET_NO_TOKEN) + shlex.quote(f"{IMDS}/meta-data/{item}")
    body, _, status = connection.run(command, hide=True).stdout.rpartition("\n")
    return int(status), body


def moto_instance_id(host):
    filters = [{"Name": "tag:Name", "Values": [f"lab-{host}"]}, {"Name": "instance-state-name", "Values": ["running"]}]
    reservations = lab_ec2.client().describe_instances(Filters=filters)["Reservations"]
    ids = [instance["InstanceId"] for reservation in reservations for instance in reservation["Instances"]]
    assert len(ids) == 1, ids
    return ids[0]


@pytest.mark.parametrize("host", ["hub", "worker1"])
def test_host_reads_its_own_identity_from_instance_metadata(lab, connect, host):
    ip = lab.hosts[host]
    with connect(ip) as connection:
        assert imds_get(connection, "instance-id") == (200, moto_instance_id(host))
        assert imds_get(connection, "local-ipv4") == (200, ip)
        assert imds_get(connection, "placement/region") == (200, lab_ec2.REGION)
        assert imds_get(connection, "public-ipv4")[0] == 404  # a private instance, as lab.up makes it
        assert imds_get(connection, "instance-id", token=False)[0] == 401


def test_link_local_goes_to_the_stand_in_and_nowhere_else(connect, host_ip):
    with connect(host_ip) as connection:
        route = connection.run("ip route get 169.254.169.254", hide=True).stdout.split()
        assert route[:5] == ["169.254.169.254", "via", lab_imds.STANDIN_IP, "dev", "eth0"], route
        routes = connection.run("ip -4 route show table all", hide=True).stdout.splitlines()
        link_local = sorted(" ".join(line.split()) for line in routes if "169.254." in line)
        assert link_local == [f"169.254.169.254 via {lab_imds.STANDIN_IP} dev eth0", "blackhole 169.254.0.0/16"]
        other = connection.run("ip route get 169.254.170.2", hide=True, warn=True)
        assert other.failed and "Invalid argument" in other.stderr  # what a blackhole route answers
        assert connection.run("curl -s --max-time 5 http://169.254.170.2/", hide=True, warn=True).exited == 7


PROBE_IN_A_CONTAINER = """
import urllib.request as u
base = "http://169.254.169.254/latest"
ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
token = u.urlopen(u.Request(base + "/api/token", method="PUT", headers=ttl), timeout=10).read().decode()
for item in ("instance-id", "local-ipv4"):
    request = u.Request(base + "/meta-data/" + item, headers={"X-aws-ec2-metadata-token": token})
    print(u.urlopen(request, timeout=10).read().decode())
"""


def test_container_on_a_lab_host_gets_the_hosts_identity(lab, deploy_run, connect):
    """Packets from a container cross the host's FORWARD path and its Docker NAT, as on EC2 (every
    lab host is made alike: a worker, which has the notebook image, stands for them all).

    On a network of its own: the notebook fence keeps Docker's default bridge, where
    notebooks run, from the metadata (tests/lab/test_notebook_fence.py)."""
    host = "worker1"
    image = lab.env.get("HUBSWARM_IMAGE", "hubswarm/singleuser:6.1.1")
    command = (
        "{ docker network inspect lab-probe >/dev/null 2>&1 || docker network create lab-probe >/dev/null; } && "
        f"docker run --rm --network lab-probe {image} python3 -c {shlex.quote(PROBE_IN_A_CONTAINER)}; "
        "docker network rm lab-probe >/dev/null"
    )
    with connect(lab.hosts[host]) as connection:
        answer = connection.run(command, hide=True).stdout.split()
    assert answer == [moto_instance_id(host), lab.hosts[host]]


def test_spare_host_identity_can_be_changed_while_it_runs(lab, connect, spare_ip):
    made_up = lab_imds.identity(spare_ip)
    assert made_up["local-ipv4"] == spare_ip and made_up["instance-id"].startswith("i-")
    assert "public-hostname" not in made_up
    with connect(spare_ip) as connection:
        assert imds_get(connection, "instance-id") == (200, made_up["instance-id"])
        assert imds_get(connection, "public-hostname")[0] == 404
        lab_imds.set_identity(spare_ip, public_hostname="spare.lab.example", public_ipv4="203.0.113.7")
        assert imds_get(connection, "public-hostname") == (200, "spare.lab.example")
        assert imds_get(connection, "public-ipv4") == (200, "203.0.113.7")
    assert lab_imds.identity(lab.hub_ip)["instance-id"] == moto_instance_id("hub")
    assert "public-hostname" not in lab_imds.identity(lab.hub_ip)


# --- secrets stay out of what a failing test prints ------------------------------------------------

PASSWORD_KEYS = ("HUBSWARM_HUB_PASSWORD", "HUBSWARM_HUB_ADMIN_PASSWORD")


def _passwords_in_repr(obj, lab):
    """How many of the hub's passwords (from LAB's env) repr(OBJ) shows. Only masked objects are
    arguments: pytest prints them, and with --showlocals the test's locals, when an assert fails."""
    text = repr(obj)
    return sum(lab.env[key] in text for key in PASSWORD_KEYS)


def test_lab_info_repr_hides_the_hub_passwords():
    env = {"HUBSWARM_HUB_PASSWORD": "pw-sentinel-1", "HUBSWARM_HUB_ADMIN_PASSWORD": "pw-sentinel-2"}
    info = lab_module.LabInfo(
        hub_ip="10.213.0.10", worker_ips=[], env=env, key_path=Path("k"), known_hosts_path=Path("h")
    )
    assert _passwords_in_repr(info, info) == 0
    assert "10.213.0.10" in repr(info)


def test_fixture_objects_keep_passwords_out_of_repr(lab, lab_users):
    assert _passwords_in_repr(lab, lab) == 0
    assert _passwords_in_repr(lab_users, lab) == 0
    assert _passwords_in_repr(lab_users.secrets, lab) == 2  # the check itself finds them where they are


def test_harden_metadata_leaves_the_fleet_on_imdsv2_within_the_host(lab):
    """The lab's fleet is made as instances made by hand are (IMDSv1 allowed): fixed, then left alone."""
    first = fab("harden-metadata")
    assert first.code == 0, first.output
    reservations = lab_aws(lab.env, "ec2").describe_instances(
        Filters=[{"Name": "tag:hubswarm:cluster", "Values": [lab.env["HUBSWARM_CLUSTER"]]}]
    )["Reservations"]
    options = [i["MetadataOptions"] for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    assert options and all(o["HttpTokens"] == "required" and o["HttpPutResponseHopLimit"] == 1 for o in options)
    again = fab("harden-metadata")
    assert again.code == 0 and again.changed() == [], again.output
