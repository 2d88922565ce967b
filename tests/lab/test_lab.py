"""The lab itself: hosts look like fresh Debian 12 EC2 hosts and the EC2 API describes them."""

import boto3
import pytest

from tasks import lab as lab_module

SPARE_IP = "10.213.0.100"


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
        assert connection.run("timeout 30 systemctl is-system-running --wait", hide=True, warn=True).stdout.strip() == "running"
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


def test_unknown_host_key_is_rejected(lab, connect):
    """Strict host key checking: a host whose key is not in known_hosts is refused."""
    connection = connect(lab.hub_ip)
    connection.client.get_host_keys().clear()
    with pytest.raises(Exception, match="not found in known_hosts"):
        connection.open()


def test_ec2_api_lists_exactly_the_running_lab_hosts(lab):
    env = lab.env
    ec2 = boto3.client(
        "ec2", endpoint_url=env["AWS_ENDPOINT_URL_EC2"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )

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
