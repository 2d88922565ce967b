"""fab scale on the lab: the lab grows and shrinks its hosts to match.

The lab's EC2 API (tasks/lab/ec2_api.py) makes a lab host at the IP moto gives each worker scale
launches, and removes it when scale terminates the instance; the swarm follows. Each test gives
the lab back as it found it: a hub and 2 workers in the swarm.
"""

import pytest

from fabrun import fab
from student import Student
from tasks import lab as lab_module
from tasks.lab import ec2 as lab_ec2

QUICK = 300  # seconds for a fab run that launches nothing and joins nothing
TWO_WORKERS = {"hub": "Ready", "worker1": "Ready", "worker2": "Ready"}


def nodes(connect, hub_ip):
    """{hostname: status} from `docker node ls` on the hub."""
    out = connect(hub_ip).run("docker node ls --format '{{.Hostname}} {{.Status}}'", hide=True).stdout
    return dict(line.split() for line in out.splitlines())


def ec2_workers():
    """{Name: instance} of cluster lab's workers EC2 (the lab's moto) runs, or is starting."""
    filters = [
        {"Name": "tag:hubswarm:cluster", "Values": [lab_ec2.CLUSTER]},
        {"Name": "tag:hubswarm:role", "Values": ["worker"]},
        {"Name": "instance-state-name", "Values": ["running", "pending"]},
    ]
    reservations = lab_ec2.client().describe_instances(Filters=filters)["Reservations"]
    return {{t["Key"]: t["Value"] for t in i["Tags"]}["Name"]: i for r in reservations for i in r["Instances"]}


def lab_state(connect, hub_ip):
    """What scale may change: the swarm's nodes, the workers' instances, the lab's hosts."""
    instances = {name: i["InstanceId"] for name, i in ec2_workers().items()}
    hosts = {host: info["ip"] for host, info in lab_module.lab_containers().items()}
    return nodes(connect, hub_ip), instances, hosts


@pytest.fixture
def two_workers(lab, deploy_run, connect):
    """The deployed lab with its 2 workers in the swarm, given back so whatever the test did."""
    if nodes(connect, lab.hub_ip) != TWO_WORKERS:
        joined = fab("join-workers")
        assert joined.code == 0, joined.output
    yield lab
    lab_module.ensure_lab(workers=2)  # removes a worker3 host left behind, terminates its instance
    hub = connect(lab.hub_ip)
    for node in set(nodes(connect, lab.hub_ip)) - set(TWO_WORKERS):
        hub.run(f"docker node rm --force {node}", hide=True, warn=True)


def test_scale_launches_a_lab_host_joins_it_then_removes_it(two_workers, connect):
    lab = two_workers
    before = lab_state(connect, lab.hub_ip)
    assert sorted(before[1]) == ["lab-worker1", "lab-worker2"]

    check = fab("check", "scale", "--workers", "3", timeout=QUICK)
    assert check.code == 0, check.output
    assert {("lab-worker3", "launch"), ("lab-worker3", "join-workers")} <= set(check.changed())
    assert lab_state(connect, lab.hub_ip) == before

    up = fab("scale", "--workers", "3")
    assert up.code == 0, up.output
    worker3 = ec2_workers()["lab-worker3"]
    ip = worker3["PrivateIpAddress"]
    # The IP moto chose, not one of the fixed ones: the lab made the host there.
    assert ip not in lab.hosts.values()
    assert lab_module.lab_containers()["worker3"]["ip"] == ip
    assert {("lab-worker3", "launch"), (ip, "swarm-join")} <= set(up.changed())
    assert nodes(connect, lab.hub_ip) == {**TWO_WORKERS, "worker3": "Ready"}
    image = lab.env.get("HUBSWARM_IMAGE", "hubswarm/singleuser:6.1.1")
    inside = lab_module.docker(
        "exec", f"{lab_module.CONTAINER_PREFIX}worker3", "docker", "image", "inspect", "-f", "{{.Id}}", image
    )
    assert inside.startswith("sha256:")

    again = fab("scale", "--workers", "3", timeout=QUICK)
    assert again.code == 0 and again.changed() == [], again.output

    down = fab("scale", "--workers", "2", timeout=QUICK)
    assert down.code == 0, down.output
    assert ("lab-worker3", "terminate") in down.changed()
    assert nodes(connect, lab.hub_ip) == TWO_WORKERS
    [gone] = lab_ec2.client().describe_instances(InstanceIds=[worker3["InstanceId"]])["Reservations"][0]["Instances"]
    assert gone["State"]["Name"] in ("shutting-down", "terminated")
    assert "worker3" not in lab_module.lab_containers()
    assert lab_state(connect, lab.hub_ip) == before


def test_a_worker_running_a_notebook_is_not_removed(two_workers, lab_users, connect):
    lab = two_workers
    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    try:
        student.start_server()
        hub = connect(lab.hub_ip)
        where = hub.run(
            f"docker service ps --filter desired-state=running --format '{{{{.Node}}}}' jupyter-{student.name}",
            hide=True,
        ).stdout.split()[0]
        before = lab_state(connect, lab.hub_ip)

        refused = fab("scale", "--workers", "0", timeout=QUICK)
        assert refused.code == 1, refused.output
        # (another test's user may have a server running too: the line names every busy worker)
        [line] = [line for line in refused.output.splitlines() if line.endswith("or use --force")]
        assert f"lab-{where} runs" in line and student.name in line, line
        assert lab_state(connect, lab.hub_ip) == before
        assert student.answers()
    finally:
        student.stop_server()
