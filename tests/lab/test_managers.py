"""The swarm's managers on the lab: after deploy (a hub and 2 workers) the hub and both workers
manage the swarm, `fab status` shows them and their quorum, a second join-workers changes
nothing, check mode predicts a promotion, and notebooks still start on the workers only."""

import re

from fabrun import fab
from student import Student

THREE = {"hub", "worker1", "worker2"}


def manager_statuses(connect, hub_ip):
    """{hostname: its MANAGER STATUS in `docker node ls` on the hub} ("" for a worker)."""
    out = connect(hub_ip).run("docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'", hide=True).stdout
    return {words[0]: " ".join(words[1:]) for words in map(str.split, out.splitlines())}


def test_the_hub_and_both_workers_manage_the_swarm(lab, deploy_run, connect):
    statuses = manager_statuses(connect, lab.hub_ip)
    assert set(statuses) == THREE, statuses
    assert sorted(statuses.values()) == ["Leader", "Reachable", "Reachable"], statuses


def test_status_shows_the_managers_and_their_quorum(lab, deploy_run):
    run = fab("status")
    assert run.code == 0, run.output
    [row] = [re.split(r" {2,}", line.strip()) for line in run.output.splitlines() if line.startswith("swarm ")]
    assert row == ["swarm", "managers", "3 up", "managers 3 (hub, worker1, worker2), quorum 2, tolerates 1 lost"]


def test_a_second_join_workers_changes_nothing(lab, deploy_run):
    again = fab("join-workers")
    assert again.code == 0, again.output
    assert again.changed() == [], again.output


def test_check_mode_predicts_the_promotions_then_join_workers_makes_them(lab, deploy_run, connect):
    hub = connect(lab.hub_ip)
    hub.run("docker node demote worker1 worker2", hide=True)
    try:
        assert manager_statuses(connect, lab.hub_ip) == {"hub": "Leader", "worker1": "", "worker2": ""}
        unhealthy = fab("status")
        assert unhealthy.code == 1, unhealthy.output
        assert "swarm managers: not as kept: fab join-workers would promote worker1, worker2 to managers" in (
            unhealthy.output
        )

        check = fab("check", "join-workers")
        assert check.code == 0, check.output
        assert check.changed() == [(lab.hub_ip, "swarm-managers")], check.output
        assert "swarm-managers: would promote worker1, worker2 to managers" in check.output
        assert manager_statuses(connect, lab.hub_ip)["worker1"] == ""
    finally:
        kept = fab("join-workers")
    assert kept.code == 0, kept.output
    assert kept.changed() == [(lab.hub_ip, "swarm-managers")], kept.output
    statuses = manager_statuses(connect, lab.hub_ip)  # promote waits until they answer
    assert sorted(statuses.values()) == ["Leader", "Reachable", "Reachable"], statuses


def test_a_notebook_still_starts_on_a_worker(lab, deploy_run, lab_users, connect):
    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    try:
        student.start_server()
        placed = connect(lab.hub_ip).run(
            f"docker service ps --filter desired-state=running --format '{{{{.Node}}}}' jupyter-{student.name}",
            hide=True,
        )
        assert placed.stdout.split()[0] in {"worker1", "worker2"}, placed.stdout  # a manager, never the hub
        assert student.answers()
    finally:
        student.stop_server()
