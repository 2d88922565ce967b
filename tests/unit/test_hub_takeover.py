"""A new hub in the place of a lost one, as planned: its swarm state and the swarm's nodes (as a
surviving manager lists them) in, the entry it replaces or a one-line refusal out
(tasks/cluster/takeover.py); the surviving manager's view, as a step on a fake host."""

import pytest

from fakehost import node_info, parsed
from tasks.cluster import swarm_model, takeover
from tasks.cluster.swarm import SwarmState
from tasks.core import HubswarmError

HUB, W1, W2 = "10.0.0.5", "10.0.0.11", "10.0.0.12"
WORKERS = {"w1", "w2"}  # their node ids
NEW = SwarmState("inactive", False, "")


def nodes(hub_state="down", hub_status="unreachable", hub_address=HUB):
    """The swarm as worker1 (leader since the hub was lost) lists it: the lost hub, 2 workers."""
    answer = node_info("old", "manager", hub_state, "hub", address=hub_address, manager=hub_status)
    answer += node_info("w1", "manager", "ready", "worker1", address=W1, manager="leader")
    answer += node_info("w2", "manager", "ready", "worker2", address=W2, manager="reachable")
    return parsed(swarm_model.NODES, answer)


def test_a_new_host_at_the_lost_hubs_address_takes_its_place():
    lost = takeover.takeover_plan(NEW, nodes(), HUB, WORKERS, "new-hub")
    assert (lost.id, lost.hostname) == ("old", "hub")


def test_the_swarms_hub_itself_has_nothing_to_do():
    """A rerun on the new hub, or replace-hub on a hub that was never lost."""
    state = SwarmState("active", True, "new")
    swarm = [*nodes(), nodes()[0]._replace(id="new", state="ready", manager_status="reachable")]
    assert takeover.takeover_plan(state, swarm, HUB, WORKERS, "new-hub") == ""


REFUSALS = [
    # id, the new host's state, the swarm, its address, force, the refusal
    (
        "the hub is still up",
        NEW,
        nodes("ready", "reachable"),
        HUB,
        False,
        "the swarm still sees the hub at 10.0.0.5 (hub) up: it may still be running; wait until a "
        "manager's docker node ls shows it down, or pass --force",
    ),
    (
        "another address",
        NEW,
        nodes(),
        "10.0.0.99",
        False,
        "the swarm has no hub at 10.0.0.99 (the swarm's lost manager was at 10.0.0.5): the new hub takes "
        "the lost one's private address, where running notebooks reach the hub's API (launch it there "
        "once the old instance is terminated)",
    ),
    (
        "a worker of the cluster",
        SwarmState("active", True, "w1"),
        nodes(),
        W1,
        True,
        "new-hub is a worker of the cluster: the new hub is a host of its own",
    ),
    (
        "a worker of the swarm the cluster's tags do not name",
        SwarmState("active", False, "w9"),
        [*nodes(), nodes()[1]._replace(id="w9", role="worker", manager_status="")],
        "10.0.0.19",
        False,
        "new-hub is a worker of the swarm: the new hub is a host of its own",
    ),
    (
        "in another swarm",
        SwarmState("active", True, "elsewhere"),
        nodes(),
        HUB,
        False,
        "new-hub is in another swarm (state 'active'): make it leave (docker swarm leave --force) "
        "before it takes the hub's place",
    ),
    (
        "in a swarm's error state",
        SwarmState("error", False, ""),
        nodes(),
        HUB,
        True,
        "new-hub is in another swarm (state 'error'): make it leave (docker swarm leave --force) "
        "before it takes the hub's place",
    ),
]


@pytest.mark.parametrize(
    ("state", "swarm", "address", "force", "refusal"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_refusals_before_any_change(state, swarm, address, force, refusal):
    with pytest.raises(HubswarmError) as refused:
        takeover.takeover_plan(state, swarm, address, WORKERS, "new-hub", force)
    assert str(refused.value) == refusal


def test_force_takes_the_place_of_a_hub_the_swarm_still_sees_up():
    lost = takeover.takeover_plan(NEW, nodes("ready", "reachable"), HUB, WORKERS, "new-hub", force=True)
    assert lost.id == "old"


def node_answer(hub_state):
    return node_info("old", "manager", hub_state, "hub", address=HUB, manager="unreachable") + node_info(
        "w1", "manager", "ready", "worker1", address=W1, manager="leader"
    )


def test_a_surviving_manager_is_asked_until_it_sees_the_lost_hub_down(make_host, monkeypatch):
    survivor, runner = make_host({"swarm-nodes": node_answer("ready")}, address=W1)
    probes = []

    def probe(facts):
        probes.append(1)
        runner.answers["swarm-nodes"] = node_answer("ready" if len(probes) < 3 else "down")
        return runner.probe(facts)

    monkeypatch.setattr(survivor, "_probe", probe)
    monkeypatch.setattr(takeover.time, "sleep", lambda seconds: None)
    nodes = takeover.seen_down(survivor, HUB, "")
    assert len(probes) == 3 and [n.state for n in nodes if n.id == "old"] == ["down"]
    assert runner.calls == []


def test_a_lost_hub_the_swarm_still_sees_up_is_waited_for_no_longer_than_the_bound(make_host, monkeypatch):
    survivor, runner = make_host({"swarm-nodes": node_answer("ready")}, address=W1)
    clock = iter(range(0, 1000, 30))
    monkeypatch.setattr(takeover.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(takeover.time, "sleep", lambda seconds: None)
    nodes = takeover.seen_down(survivor, HUB, "", 120)
    assert [n.state for n in nodes if n.id == "old"] == ["ready"]  # the takeover then refuses, unless --force
    assert len(runner.probes) == 4  # 30, 60, 90 and 120 s after it began
