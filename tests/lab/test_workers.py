"""join-workers on real lab hosts: discovery by tag, parallel joins, faults, images."""

import json
import subprocess
import time

from fabrun import fab
from tasks import lab as lab_module

CONTAINER = lab_module.CONTAINER_PREFIX + "{}"


def nodes(connect, hub_ip):
    """{hostname: status} from `docker node ls` on the hub."""
    out = connect(hub_ip).run("docker node ls --format '{{.Hostname}} {{.Status}}'", hide=True).stdout
    return dict(line.split() for line in out.splitlines())


def managers(connect, hub_ip):
    """The hostnames `docker node ls` on the hub shows a manager status for."""
    out = connect(hub_ip).run("docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'", hide=True).stdout
    return {words[0] for words in map(str.split, out.splitlines()) if len(words) > 1}


def wait_until_a_worker_on_its_disk(connect, ip, seconds=60):
    """Until the node at ``ip`` holds a worker's certificate: a demoted node restarted before it
    has one comes back as a manager for a moment and can stall the managers' group (swarm's own
    race, about 2 s after a demotion)."""
    subject = "openssl x509 -noout -subject -in /var/lib/docker/swarm/certificates/swarm-node.crt"
    deadline = time.monotonic() + seconds
    while "OU=swarm-worker" not in connect(ip).sudo(subject, hide=True).stdout.replace(" ", ""):
        assert time.monotonic() < deadline, f"{ip} holds no worker's certificate {seconds} s after its demotion"
        time.sleep(0.5)


def join_token(connect, hub_ip):
    return connect(hub_ip).run("docker swarm join-token -q worker", hide=True).stdout.strip()


def test_workers_found_by_tag_join_and_are_ready(lab, cluster_run, connect):
    assert cluster_run.code == 0, cluster_run.output
    assert nodes(connect, lab.hub_ip) == {"hub": "Ready", "worker1": "Ready", "worker2": "Ready"}
    hosts = {host for host, _, _ in cluster_run.rows()}
    assert hosts == {lab.hub_ip, *lab.worker_ips}


def test_second_run_changes_nothing(cluster_run):
    again = fab("setup-hub", "join-workers")
    assert again.code == 0, again.output
    assert again.changed() == []


def test_notebook_image_is_the_same_on_every_worker(lab, cluster_run, connect):
    """(The hub, which runs no notebook unless HUBSWARM_HUB_TAKES_NOTEBOOKS says so, needs none.)"""
    image = lab.env.get("HUBSWARM_IMAGE", "hubswarm/singleuser:6.1.1")
    ids = {
        ip: connect(ip).run(f"docker image inspect --format '{{{{.Id}}}}' {image}", hide=True).stdout.strip()
        for ip in lab.worker_ips
    }
    assert len(set(ids.values())) == 1 and all(ids.values()), ids


def wait_until_down(connect, hub_ip, node, seconds=120):
    """Until the hub's swarm sees ``node`` down (it misses a few heartbeats first)."""
    deadline = time.monotonic() + seconds
    while nodes(connect, hub_ip).get(node) != "Down":
        assert time.monotonic() < deadline, f"the swarm still sees {node} up after {seconds} s"
        time.sleep(2)


def test_one_worker_down_does_not_stop_the_other(lab, cluster_run, connect):
    worker1, worker2 = lab.worker_ips[:2]
    # worker1 leaves, so this run has a join to do (the managers are handed over first: the
    # hub alone manages the 2 nodes left); worker2 becomes unreachable.
    removed = fab("remove-worker", "--name", "worker1")
    assert removed.code == 0, removed.output
    assert managers(connect, lab.hub_ip) == {"hub"}  # never 2: worker2 alone down would stop them
    wait_until_a_worker_on_its_disk(connect, worker2)
    subprocess.run(["docker", "stop", CONTAINER.format("worker2")], check=True, capture_output=True)
    try:
        wait_until_down(connect, lab.hub_ip, "worker2")  # else the hub would promote it
        faulty = fab("join-workers")
    finally:
        subprocess.run(["docker", "start", CONTAINER.format("worker2")], check=True, capture_output=True)
    assert faulty.code != 0
    assert (worker1, "swarm-join") in faulty.changed()
    assert [host for host, _ in faulty.failed()] == [worker2]
    assert nodes(connect, lab.hub_ip)["worker1"] == "Ready"

    lab_ready = fab("lab.up")  # waits until worker2 has booted again
    assert lab_ready.code == 0, lab_ready.output
    assert lab_module.lab_containers()["worker2"]["suite"] == "trixie"  # lab.up kept its release
    healed = fab("join-workers")
    assert healed.code == 0, healed.output
    assert healed.failed() == []
    assert nodes(connect, lab.hub_ip) == {"hub": "Ready", "worker1": "Ready", "worker2": "Ready"}
    assert managers(connect, lab.hub_ip) == {"hub", "worker1", "worker2"}


def test_no_output_contains_the_join_token(lab, cluster_run, connect):
    token = join_token(connect, lab.hub_ip)
    again = fab("join-workers")
    assert token not in cluster_run.output
    assert token not in again.output


def test_remove_worker_then_join_again(lab, cluster_run, connect):
    removed = fab("remove-worker", "--name", "worker2")
    assert removed.code == 0, removed.output
    assert "worker2" not in nodes(connect, lab.hub_ip)
    assert managers(connect, lab.hub_ip) == {"hub"}  # worker1 demoted with it: never 2 managers
    state = connect(lab.worker_ips[1]).run("docker info --format '{{.Swarm.LocalNodeState}}'", hide=True)
    assert state.stdout.strip() == "inactive"
    again = fab("remove-worker", "--name", "worker2")
    assert again.code == 0 and again.changed() == []

    rejoined = fab("join-workers")  # still tagged as a worker: it comes back
    assert rejoined.code == 0, rejoined.output
    assert nodes(connect, lab.hub_ip)["worker2"] == "Ready"
    assert managers(connect, lab.hub_ip) == {"hub", "worker1", "worker2"}


def test_hosts_lists_the_cluster_found_by_tag(lab, cluster_run):
    run = fab("hosts")
    assert run.code == 0, run.output
    lines = run.output.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["hub", "worker", "worker"]
    assert {line.split()[3] for line in lines[1:]} == {lab.hub_ip, *lab.worker_ips}
    assert "decoy" not in run.output and "other" not in run.output


def test_workers_reached_through_the_hub_as_gateway(lab, cluster_run):
    run = fab("join-workers", env={"HUBSWARM_GATEWAY": "1"})
    assert run.code == 0, run.output
    assert {host for host, _, _ in run.rows()} == {lab.hub_ip, *lab.worker_ips}
    assert run.changed() == []


def test_check_mode_on_the_converged_cluster_would_change_nothing(lab, deploy_run):
    run = fab("check", "deploy")
    assert run.code == 0, run.output
    assert "check mode: nothing was changed" in run.output
    assert run.changed() == []


def test_named_hosts_run_in_parallel_with_one_recap(lab, deploy_run):
    run = fab("-H", ",".join(lab.worker_ips), "notebook-fence", "--hub", lab.hub_ip)
    assert run.code == 0, run.output
    assert run.output.count("RECAP") == 1
    assert {host for host, task, _ in run.rows() if task == "notebook-fence"} == set(lab.worker_ips)


def test_deploy_with_the_hub_named(lab, deploy_run):
    run = fab("-H", lab.hub_ip, "deploy")
    assert run.code == 0, run.output
    assert run.changed() == []
    assert {host for host, task, _ in run.rows() if task == "swarm-join"} == set(lab.worker_ips)


def test_every_nodes_docker_rotates_container_logs(lab, deploy_run, connect):
    """A notebook printing without end cannot fill its node's disk (each container keeps at most
    3 files of 10 MB), and the operator's own daemon.json settings stay."""
    for ip in [lab.hub_ip, *lab.worker_ips]:
        node = connect(ip)
        assert node.run("docker info --format '{{.LoggingDriver}}'", hide=True).stdout.strip() == "local", ip
        settings = json.loads(node.run("cat /etc/docker/daemon.json", hide=True).stdout)
        assert settings["log-opts"] == {"max-size": "10m", "max-file": "3"}, ip
