"""Swarm membership as planned: probe answers in, (what to say, command) out.

The planners of tasks/swarm.py in tables (join, init, labels and stale
entries, drain, leave, remove), then the steps and the join-workers and
remove-worker tasks on fake hosts (``make_host``), asserting the exact
commands each host is asked to run.
"""

import io
import json
import subprocess
from types import SimpleNamespace

import pytest
from invoke.exceptions import Exit

from fakehost import homes_probe_done, hub_config, invocation, node_info, parsed, swarm_info
from tasks.cluster import homes_probe, managers, swarm, swarm_model, workers
from tasks.core import HubswarmError, Run, Step
from tasks.node import fence, images

HUB, WORKER = "10.0.0.5", "10.0.0.6"
INFO = swarm.JoinInfo(f"{HUB}:2377", "SWMTKN-1-abcdef", frozenset({"hubnode", "w1"}))
JOIN = swarm.JOIN_SCRIPT
LEAVE = swarm.LEAVE_SCRIPT
ADD = "docker node update --label-add hubswarm.notebooks=true -- {} >/dev/null"
RM_LABEL = "docker node update --label-rm hubswarm.notebooks -- {} >/dev/null"
NODE_RM = "docker node rm -- {} >/dev/null"
YES = '{"hubswarm.notebooks": "true"}'
NODES = swarm_model.NODES.key


def details(*lines):
    """A NODES answer from "id role state hostname labels-json" lines."""
    found = [line.split(" ", 4) for line in lines]
    return "".join(
        node_info(id_, role, state, hostname, json.loads(labels)) for id_, role, state, hostname, labels in found
    )


HUB_NODE = node_info("hubnode", "manager", "ready", "hub", address=HUB, manager="leader")
HUB_STATE = swarm_info("active", True, "hubnode")


def worker2(at, role="worker", manager=None):
    """A NODES answer from the hub: the hub and node worker2 (id w2) at ``at``: "address
    availability"; None: no such node. ``role`` and ``manager`` as :func:`fakehost.node_info`'s."""
    if at is None:
        return HUB_NODE
    address, availability = at.split()
    return HUB_NODE + node_info("w2", role, "ready", "worker2", None, availability, address, manager)


def records(host):
    """{(host, task): changes} of the run so far, and the failed (host, task, error)."""
    recs = host.run.recap.records
    return (
        {(r.host, r.task): r.changes for r in recs if r.task != "test-step"},
        [(r.host, r.task, r.error) for r in recs if r.error],
    )


# --- join: fresh node, member, foreign swarm, error/pending state ----------------------

JOIN_CASES = [
    # id, state answer, rejoin, (what, script)
    ("fresh node", swarm_info(), False, (f"join the swarm at {HUB}:2377", JOIN)),
    ("fresh node, --rejoin changes nothing", swarm_info(), True, (f"join the swarm at {HUB}:2377", JOIN)),
    ("member of ours", swarm_info("active", False, "w1"), False, ("", "")),
    ("member of ours, --rejoin leaves it in place", swarm_info("active", False, "w1"), True, ("", "")),
    (
        "foreign swarm, --rejoin",
        swarm_info("active", False, "other"),
        True,
        (f"leave its active swarm and join the one at {HUB}:2377", f"{LEAVE}; {JOIN}"),
    ),
    (
        "manager of a foreign swarm, --rejoin",
        swarm_info("active", True, "other"),
        True,
        (f"leave its active swarm and join the one at {HUB}:2377", f"{LEAVE}; {JOIN}"),
    ),
    (
        "error state, --rejoin",
        swarm_info("error", False, "w9"),
        True,
        (f"leave its error swarm and join the one at {HUB}:2377", f"{LEAVE}; {JOIN}"),
    ),
    (
        "pending state, --rejoin",
        swarm_info("pending"),
        True,
        (f"leave its pending swarm and join the one at {HUB}:2377", f"{LEAVE}; {JOIN}"),
    ),
    ("no answer at all (Docker down) counts as inactive", "", False, (f"join the swarm at {HUB}:2377", JOIN)),
]


@pytest.mark.parametrize("state, rejoin, plan", [c[1:] for c in JOIN_CASES], ids=[c[0] for c in JOIN_CASES])
def test_join_plan(state, rejoin, plan):
    assert swarm.join_plan(parsed(swarm.SWARM_STATE, state), INFO, rejoin, "worker1") == plan


@pytest.mark.parametrize(
    "state, message",
    [
        (
            swarm_info("active", False, "other"),
            "worker1 is in another swarm: pass --rejoin to make it leave and join this cluster",
        ),
        (swarm_info("active", True, "other"), "worker1 is in another swarm: pass --rejoin"),
        (swarm_info("error", False, "w9"), "worker1 is in swarm state 'error': pass --rejoin"),
        (swarm_info("pending"), "worker1 is in swarm state 'pending': pass --rejoin"),
        (swarm_info("locked", False, "w1"), "worker1 is in swarm state 'locked': pass --rejoin"),
    ],
    ids=["foreign swarm", "foreign manager", "error", "pending", "locked"],
)
def test_join_plan_refuses_without_rejoin(state, message):
    with pytest.raises(HubswarmError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        swarm.join_plan(parsed(swarm.SWARM_STATE, state), INFO, False, "worker1")


@pytest.mark.parametrize(
    "state, rejoin, commands",
    [
        (swarm_info(), False, [JOIN]),
        (swarm_info("active", False, "w1"), False, []),
        (swarm_info("active", False, "other"), True, [f"{LEAVE}; {JOIN}"]),
    ],
    ids=["fresh", "member", "foreign --rejoin"],
)
def test_swarm_join_step(make_host, state, rejoin, commands):
    host, runner = make_host({"addresses": WORKER, "swarm-state": state}, address=WORKER)
    swarm.swarm_join(host, INFO, rejoin)
    assert runner.commands == commands
    for call in runner.calls:  # the token travels on stdin only
        assert json.loads(call.stdin) == {
            "ListenAddr": "0.0.0.0:2377",
            "AdvertiseAddr": WORKER,
            "RemoteAddrs": [f"{HUB}:2377"],
            "JoinToken": "SWMTKN-1-abcdef",
        }
        assert "SWMTKN" not in call.command


def test_swarm_join_refusal_runs_nothing(make_host):
    host, runner = make_host({"addresses": WORKER, "swarm-state": swarm_info("active", False, "other")}, address=WORKER)
    with pytest.raises(HubswarmError, match="pass --rejoin"):
        swarm.swarm_join(host, INFO)
    assert runner.commands == []


# --- init on the hub ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "state, result",
    [
        (swarm_info(), "docker swarm init --advertise-addr 10.0.0.5 >/dev/null"),
        (swarm_info("active", True, "hubnode"), ""),
        (
            swarm_info("active", False, "w1"),
            HubswarmError("hub is a worker in another swarm: make it leave (docker swarm leave)"),
        ),
        (swarm_info("error"), HubswarmError("hub swarm state is 'error': look at 'docker info' there")),
        (swarm_info("pending"), HubswarmError("hub swarm state is 'pending'")),
    ],
    ids=["fresh", "our manager", "worker elsewhere", "error", "pending"],
)
def test_init_command(state, result):
    if isinstance(result, Exception):
        with pytest.raises(HubswarmError) as err:
            swarm.init_command(parsed(swarm.SWARM_STATE, state), HUB, "hub")
        assert str(err.value).startswith(str(result))
    else:
        assert swarm.init_command(parsed(swarm.SWARM_STATE, state), HUB, "hub") == result


# --- the join token on the hub ---------------------------------------------------------


def token_answer(runner, token="SWMTKN-1-abcdef"):
    """The fake runner answering `docker swarm join-token -q worker` with ``token``."""

    def exec_(command, stdin=None):
        rc, out, err = runner(command, stdin)
        if "docker swarm join-token -q worker" in command:
            out = token + "\n"
        return rc, out, err

    return exec_


def test_join_info_on_our_manager(make_host):
    host, runner = make_host(
        {
            "addresses": HUB,
            "swarm-state": swarm_info("active", True, "hubnode"),
            NODES: details("hubnode manager ready hub {}", "w1 worker ready worker1 {}"),
        }
    )
    host._exec = token_answer(runner)
    info = swarm.join_info(host)
    assert info == swarm.JoinInfo(f"{HUB}:2377", "SWMTKN-1-abcdef", frozenset({"hubnode", "w1"}))
    assert runner.commands == ["docker swarm join-token -q worker"]
    assert "SWMTKN" not in repr(info)


@pytest.mark.parametrize("state", [swarm_info(), swarm_info("active", False, "w1"), swarm_info("error")])
def test_join_info_needs_a_manager(make_host, state):
    host, runner = make_host({"addresses": HUB, "swarm-state": state})
    with pytest.raises(HubswarmError, match=f"^{HUB} manages no swarm yet: run 'fab setup-hub'"):
        swarm.join_info(host)
    assert runner.commands == []


@pytest.mark.parametrize(
    "state, nodes", [(swarm_info(), frozenset()), (swarm_info("active", True, "hubnode"), frozenset({"hubnode"}))]
)
def test_join_info_check_mode_reads_no_token(make_host, state, nodes):
    host, runner = make_host(
        {"addresses": HUB, "swarm-state": state, NODES: details("hubnode manager ready hub {}")}, check=True
    )
    assert swarm.join_info(host) == swarm.JoinInfo(f"{HUB}:2377", "", nodes)
    assert runner.calls == []


# --- labels and stale entries: down, drained, rejoined, the hub taking notebooks ------

NODE_CASES = [
    # id, NODES answer, hub takes notebooks, commands (labels, then stale removal)
    (
        "new workers get the label, the hub none",
        details("hubnode manager ready hub {}", "w1 worker ready worker1 {}", "w2 worker ready worker2 null"),
        False,
        [swarm.side_by_side([ADD.format("w1"), ADD.format("w2")])],
    ),
    ("converged", details("hubnode manager ready hub {}", f"w1 worker ready worker1 {YES}"), False, []),
    (
        "a label other than true is set to true",
        details("hubnode manager ready hub null", 'w1 worker ready worker1 {"hubswarm.notebooks": "false"}'),
        False,
        [ADD.format("w1")],
    ),
    (
        "the hub also takes notebooks: label added",
        details("hubnode manager ready hub {}", f"w1 worker ready worker1 {YES}"),
        True,
        [ADD.format("hubnode")],
    ),
    (
        "the hub also takes notebooks: converged",
        details(f"hubnode manager ready hub {YES}", f"w1 worker ready worker1 {YES}"),
        True,
        [],
    ),
    (
        "the hub no longer takes notebooks: label removed",
        details(f"hubnode manager ready hub {YES}", f"w1 worker ready worker1 {YES}"),
        False,
        [RM_LABEL.format("hubnode")],
    ),
    (
        "workers promoted to managers still take notebooks",
        details("hubnode manager ready hub {}", f"w1 manager ready worker1 {YES}", "w2 manager ready worker2 {}"),
        False,
        [ADD.format("w2")],
    ),
    (
        "any value of the label on the hub is removed",
        details('hubnode manager ready hub {"hubswarm.notebooks": "no", "zone": "a"}'),
        False,
        [RM_LABEL.format("hubnode")],
    ),
    (
        "a down node (not rejoined) is kept and labelled",
        details("hubnode manager ready hub {}", "w1 worker down worker1 {}"),
        False,
        [ADD.format("w1")],
    ),
    (
        "a drained node keeps its label",
        details("hubnode manager ready hub {}", f"w1 worker ready worker1 {YES}"),
        False,
        [],
    ),
    (
        "stale entry after a rejoin under the same hostname is removed, not labelled",
        details("hubnode manager ready hub {}", f"w1new worker ready worker1 {YES}", "w1old worker down worker1 null"),
        False,
        [NODE_RM.format("w1old")],
    ),
    (
        "rejoined node labelled and two stale entries removed",
        details(
            "hubnode manager ready hub {}",
            "w1c worker ready worker1 {}",
            "w1a worker down worker1 null",
            f"w1b worker down worker1 {YES}",
        ),
        False,
        [ADD.format("w1c"), NODE_RM.format("w1a") + " && " + NODE_RM.format("w1b")],
    ),
    (
        "a lost hub's entry at the address of the new one (another hostname) is removed",
        node_info("hubnode", "manager", "ready", "ip-10-0-0-5", address=HUB, manager="leader")
        + node_info("old", "worker", "down", "hub", address=HUB)
        + node_info("w1", "worker", "ready", "worker1", {"hubswarm.notebooks": "true"}, address=WORKER),
        False,
        [NODE_RM.format("old")],
    ),
    (
        "two down entries, none rejoined: none removed",
        details("hubnode manager ready hub {}", f"w1a worker down worker1 {YES}", f"w1b worker down worker1 {YES}"),
        False,
        [],
    ),
    ("no nodes at all (not a manager)", "", False, []),
]


@pytest.mark.parametrize("answer, hub_takes, commands", [c[1:] for c in NODE_CASES], ids=[c[0] for c in NODE_CASES])
def test_swarm_nodes(make_host, answer, hub_takes, commands):
    hub_state = swarm_info("active", True, "hubnode")
    host, runner = make_host(
        {NODES: answer, "swarm-state": hub_state, **homes_probe_done()}, hub_takes_notebooks=hub_takes
    )
    swarm.swarm_nodes(host)
    assert runner.commands == commands
    plan = swarm.nodes_plan(parsed(swarm_model.NODES, answer), "hubnode", hub_takes)
    assert [c for _, c in plan if c] == commands
    assert [what for what, c in plan if c] == host.record.changes


def test_nodes_plan_says_what_it_does():
    plan = swarm.nodes_plan(
        parsed(swarm_model.NODES, details("a worker ready w {}", "b worker down w null")), "hubnode", False
    )
    assert plan == [
        ("set notebook placement labels", ADD.format("a")),
        ("remove 1 stale node entries", NODE_RM.format("b")),
    ]


def test_stale_nodes():
    nodes = parsed(
        swarm_model.NODES, details("n1 worker down w1 null", "n2 worker ready w1 {}", "n3 worker down w3 {}")
    )
    assert swarm.stale_nodes(nodes) == ["n1"]


# --- remove-worker: drain, leave, remove ---------------------------------------------

DRAIN = "docker node update --availability drain worker2 >/dev/null"
FORCE_RM = "docker node rm --force worker2 >/dev/null"

DRAIN_CASES = [
    ("present, active", f"{WORKER} active", (WORKER, "drain worker2", DRAIN)),
    ("present, paused", f"{WORKER} pause", (WORKER, "drain worker2", DRAIN)),
    ("already drained", f"{WORKER} drain", (WORKER, "", "")),
    ("gone", None, (None, "", "")),
]


@pytest.mark.parametrize("at, plan", [c[1:] for c in DRAIN_CASES], ids=[c[0] for c in DRAIN_CASES])
def test_drain_plan(at, plan):
    node = swarm_model.find_node(parsed(swarm_model.NODES, worker2(at)), "worker2")
    assert swarm.drain_plan(node, "worker2") == plan


@pytest.mark.parametrize(
    "state, plan",
    [
        (swarm_info("active", False, "w2"), ("leave the swarm", LEAVE)),
        (swarm_info("error"), ("leave the swarm", LEAVE)),
        (swarm_info("pending"), ("leave the swarm", LEAVE)),
        (swarm_info(), ("", "")),
        ("", ("", "")),
    ],
    ids=["member", "error", "pending", "left already", "no answer"],
)
def test_leave_plan(state, plan):
    assert swarm.leave_plan(parsed(swarm.SWARM_STATE, state)) == plan


def test_remove_plan_quotes_the_name():
    assert swarm.remove_plan("worker2") == ("remove node worker2", FORCE_RM)
    assert swarm.remove_plan("a b") == ("remove node a b", "docker node rm --force 'a b' >/dev/null")


def test_drain_and_remove_by_id_say_the_name(make_host):
    """scale names nodes by id (a rejoined host leaves a second entry of its hostname)."""
    nodes = node_info("n3", "worker", "ready", "worker3", address=WORKER) + node_info("n4", "worker", "down", "worker3")
    host, runner = make_host({NODES: nodes})
    assert swarm.drain(host, "worker3", "n3") == WORKER
    swarm.remove_node(host, "worker3", "n3")
    assert runner.commands == [
        "docker node update --availability drain n3 >/dev/null",
        "docker node rm --force n3 >/dev/null",
    ]
    assert host.record.changes == ["drain worker3", "remove node worker3"]


REMOVE_CASES = [
    # id, hub's node answer, worker's swarm state, hub commands, worker commands
    ("present node", f"{WORKER} active", swarm_info("active", False, "w2"), [DRAIN, FORCE_RM], [LEAVE]),
    ("already drained", f"{WORKER} drain", swarm_info("active", False, "w2"), [FORCE_RM], [LEAVE]),
    ("drained, left, still listed", f"{WORKER} drain", swarm_info(), [FORCE_RM], []),
    ("gone", None, None, [], None),
]


@pytest.fixture
def remove_run(make_host, monkeypatch):
    """(hub, worker runner, run): ``run()`` runs the remove-worker task with these fakes."""

    def make(node_answer, worker_state, others="", **worker2_node):
        nodes = worker2(node_answer, **worker2_node) + others
        hub, hub_runner = make_host({NODES: nodes, "swarm-state": HUB_STATE}, address=HUB)
        worker, worker_runner = make_host({"swarm-state": worker_state}, address=WORKER)
        reached = []

        def connect(address):
            reached.append(address)
            return worker

        monkeypatch.setattr(workers, "hub_for", lambda c: hub)
        monkeypatch.setattr(hub.run, "connect", connect)
        c = invocation(hub.run)
        return hub, hub_runner, worker_runner, reached, lambda: workers.remove_worker.body(c, "worker2")

    return make


@pytest.mark.parametrize(
    "node, state, on_hub, on_worker", [c[1:] for c in REMOVE_CASES], ids=[c[0] for c in REMOVE_CASES]
)
def test_remove_worker(remove_run, node, state, on_hub, on_worker):
    hub, hub_runner, worker_runner, reached, remove = remove_run(node, state)
    remove()
    assert hub_runner.commands == on_hub
    if on_worker is None:  # gone: the worker is not even reached
        assert reached == [] and worker_runner.probes == []
    else:
        assert reached == [WORKER]
        assert worker_runner.commands == on_worker
    changes, failed = records(hub)
    assert failed == []
    assert changes[(HUB, "drain")] == (["drain worker2"] if DRAIN in on_hub else [])
    if on_worker is not None:
        assert changes[(WORKER, "leave")] == (["leave the swarm"] if on_worker else [])
        assert changes[(HUB, "node-rm")] == ["remove node worker2"]


def test_remove_worker_whose_leave_fails_still_removes_the_node(remove_run):
    hub, hub_runner, worker_runner, _, remove = remove_run(f"{WORKER} active", swarm_info("active", False, "w2"))
    worker_runner.fail_on["swarm leave"] = (1, "Error response from daemon: context deadline exceeded")
    with pytest.raises(Exit) as err:
        remove()
    assert hub_runner.commands == [DRAIN, FORCE_RM]
    assert "1 host(s) failed; first: 10.0.0.6 leave: leave the swarm failed (exit 1)" in err.value.message


def test_remove_worker_stops_when_the_drain_fails(remove_run):
    hub, hub_runner, worker_runner, reached, remove = remove_run(f"{WORKER} active", swarm_info("active", False, "w2"))
    hub_runner.fail_on["--availability drain"] = (1, "Error: node worker2 not found")
    with pytest.raises(Exit, match="first: 10.0.0.5 drain: drain worker2 failed"):
        remove()
    assert reached == [] and hub_runner.commands == [DRAIN]


def test_remove_worker_check_mode_changes_nothing(make_host, monkeypatch):
    hub, hub_runner = make_host({NODES: worker2(f"{WORKER} active"), "swarm-state": HUB_STATE}, address=HUB, check=True)
    worker, worker_runner = make_host({"swarm-state": swarm_info("active", False, "w2")}, address=WORKER, check=True)
    monkeypatch.setattr(workers, "hub_for", lambda c: hub)
    monkeypatch.setattr(hub.run, "connect", lambda address: worker)
    workers.remove_worker.body(invocation(hub.run), "worker2")
    assert hub_runner.calls == [] and worker_runner.calls == []
    changes, _ = records(hub)
    assert changes == {
        (HUB, "swarm-managers"): [],
        (HUB, "drain"): ["drain worker2"],
        (WORKER, "leave"): ["leave the swarm"],
        (HUB, "node-rm"): ["remove node worker2"],
    }


WORKER1 = node_info("w1", "manager", "ready", "worker1", address="10.0.0.7")
WORKER3 = node_info("w3", "worker", "ready", "worker3", address="10.0.0.8")


def test_removing_a_manager_promotes_a_ready_worker_in_its_place_first(remove_run):
    hub, hub_runner, worker_runner, _, remove = remove_run(
        f"{WORKER} active", swarm_info("active", True, "w2"), WORKER1 + WORKER3, role="manager"
    )
    remove()
    assert hub_runner.commands == [
        managers.promote_command(["w3"]),
        managers.demote_command(["w2"]),
        DRAIN,
        FORCE_RM,
    ]
    assert worker_runner.commands == [LEAVE]
    assert records(hub)[0][(HUB, "swarm-managers")] == ["promote worker3 to managers", "demote worker2 to workers"]


def test_removing_a_manager_while_the_quorum_is_lost_changes_nothing(remove_run):
    lost = node_info("w1", "manager", "down", "worker1", address="10.0.0.7", manager="unreachable")
    hub, hub_runner, worker_runner, reached, remove = remove_run(
        f"{WORKER} active", swarm_info("active", True, "w2"), lost, role="manager", manager="unreachable"
    )
    with pytest.raises(Exit) as refused:
        remove()
    assert refused.value.message == (
        "1 host(s) failed; first: 10.0.0.5 swarm-managers: the swarm has lost its quorum: 2 of its 3 managers "
        "do not answer (worker1, worker2): bring them back first (swarm changes nothing until then)"
    )
    assert hub_runner.calls == [] and reached == []


# --- run_on: one step, what it returned ---------------------------------------------------


def test_run_on_returns_what_the_step_returned(make_host):
    host, runner = make_host({"swarm-state": swarm_info("active", True, "n")})
    probed = Step("probe-me", lambda h: h.fact(swarm.SWARM_STATE), probes=lambda h: [swarm.SWARM_STATE])
    assert workers.run_on(host, probed) == swarm.SwarmState("active", True, "n")
    assert runner.probes == [["swarm-state"]]


def test_run_on_stops_the_run_when_the_step_fails(make_host):
    host, _ = make_host({"addresses": HUB, "swarm-state": swarm_info()})
    with pytest.raises(Exit, match=f"1 host\\(s\\) failed; first: {HUB} join-token: {HUB} manages no swarm yet"):
        workers.read_join_info(host)


def test_read_join_info(make_host):
    host, runner = make_host(
        {
            "addresses": HUB,
            "swarm-state": swarm_info("active", True, "hubnode"),
            NODES: details("hubnode manager ready hub {}"),
        }
    )
    host._exec = token_answer(runner)
    assert workers.read_join_info(host) == swarm.JoinInfo(f"{HUB}:2377", "SWMTKN-1-abcdef", frozenset({"hubnode"}))
    assert records(host)[0] == {(HUB, "join-token"): []}


# --- join-workers, whole --------------------------------------------------------------------


@pytest.fixture
def join_run(make_host, monkeypatch):
    def make(worker_states, **config):
        hub, hub_runner = make_host(
            {
                "addresses": HUB,
                "swarm-state": swarm_info("active", True, "hubnode"),
                NODES: details(
                    "hubnode manager ready hub {}", f"w1 worker ready worker1 {YES}", "w2 worker ready worker2 {}"
                ),
                **homes_probe_done(),
            },
            address=HUB,
            **config,
        )
        hub._exec = token_answer(hub_runner)
        made = [
            make_host({"addresses": address, "swarm-state": state}, address=address, **config)
            for address, state in worker_states
        ]
        monkeypatch.setattr(workers, "hub_host", lambda c, hub_arg=None: hub)
        monkeypatch.setattr(workers, "hosts_for", lambda c, role: [w for w, _ in made])
        hub.images_to = []
        monkeypatch.setattr(
            workers, "image_step", lambda run: Step("push-image", lambda h: hub.images_to.append(h.name))
        )
        monkeypatch.setattr(workers, "WORKER_SETUP", [])
        hub.fenced_for = []
        monkeypatch.setattr(
            fence, "notebook_fence", Step("notebook-fence", lambda h, hub_ip: hub.fenced_for.append(hub_ip))
        )
        return hub, hub_runner, [r for _, r in made]

    return make


def test_join_workers(join_run):
    hub, hub_runner, (r1, r2) = join_run([(WORKER, swarm_info("active", False, "w1")), ("10.0.0.7", swarm_info())])
    workers.join_workers.body(invocation(hub.run))
    assert r1.commands == []
    assert r2.commands == [JOIN]
    assert json.loads(r2.calls[0].stdin)["JoinToken"] == "SWMTKN-1-abcdef"
    # Both workers promoted: the hub and they are the swarm's 3 managers.
    assert hub_runner.commands == [
        "docker swarm join-token -q worker",
        managers.promote_command(["w1", "w2"]),
        ADD.format("w2"),
    ]
    # for the token, again once the workers joined, and once they were promoted
    assert hub_runner.probed.count(NODES) == 3
    assert set(hub.fenced_for) == {HUB}  # notebooks reach the hub's API at its swarm address
    assert sorted(hub.images_to) == [WORKER, "10.0.0.7"]  # the hub runs no notebook


def test_workers_the_caller_made_ready_only_join(join_run):
    """deploy makes the workers ready while the hub is set up: the join is all that is left."""
    hub, _, (r1,) = join_run([("10.0.0.7", swarm_info())])
    ready_with = Step("push-image", lambda h: hub.images_to.append(h.name))
    workers.join(hub.run, hub, workers.hosts_for(None, None), ready_with=ready_with)
    assert r1.commands == [JOIN]
    assert hub.images_to == [] and hub.fenced_for == []


def test_a_hub_that_takes_notebooks_gets_the_image_too(join_run):
    hub, _, _ = join_run([(WORKER, swarm_info("active", False, "w1"))], hub_takes_notebooks=True)
    workers.join_workers.body(invocation(hub.run))
    assert sorted(hub.images_to) == [HUB, WORKER]


def test_join_workers_foreign_worker_needs_rejoin(join_run):
    hub, hub_runner, (r1,) = join_run([(WORKER, swarm_info("active", False, "other"))])
    c = invocation(hub.run)
    with pytest.raises(Exit, match="1 host\\(s\\) failed; first: 10.0.0.6 swarm-join: 10.0.0.6 is in another swarm"):
        workers.join_workers.body(c)
    assert r1.commands == []
    assert hub_runner.commands[-1] == ADD.format("w2")  # the hub's steps still ran
    hub, hub_runner, (r1,) = join_run([(WORKER, swarm_info("active", False, "other"))])
    workers.join_workers.body(c, rejoin=True)
    assert r1.commands == [f"{LEAVE}; {JOIN}"]


# --- the task plumbing: hub_host, image_step, hosts, push/pull ----------------------------


def test_hub_host(monkeypatch, make_host, test_run):
    make_host({})
    from tasks.settings import validate

    monkeypatch.setattr(validate, "lab_problem", lambda config, addresses: "")
    monkeypatch.setattr(workers, "found_hosts", lambda run, role: [("found", role)])
    for c in (invocation(test_run), invocation(test_run, WORKER, "10.0.0.7")):  # -H names workers
        assert workers.hub_host(c, "10.9.9.9").name == "10.9.9.9"
        assert workers.hub_host(c) == ("found", "hub")
    monkeypatch.setattr(validate, "lab_problem", lambda config, addresses: "not a lab host")
    with pytest.raises(Exit, match="not a lab host"):
        workers.hub_host(c, "10.9.9.9")


PROFILE_IMAGE = "registry.example.com/course/gpu:1"


def image_run(tmp_path, profiles=""):
    """A run that pushes hubswarm/singleuser:1, with a profiles file holding ``profiles`` (YAML)."""
    path = tmp_path / "profiles.yaml"
    if profiles:
        path.write_text(profiles)
    profiles_file = str(path) if profiles else ""
    return Run(
        hub_config(image_source="push", image="hubswarm/singleuser:1", image_base="base:1", profiles=profiles_file)
    )


def test_image_step(monkeypatch, tmp_path):
    c = image_run(tmp_path)
    assert workers.image_step(c, "pull") is images.pull_image
    made = []
    monkeypatch.setattr(images, "push_image", SimpleNamespace(bind=lambda wanted: made.append(wanted) or "push"))
    monkeypatch.setattr(images, "build_local", lambda image, base, project: "sha256:built")
    assert workers.image_step(c) == "push"
    c.check = True
    monkeypatch.setattr(images, "existing_image_id", lambda image: "sha256:existing")
    assert workers.image_step(c) == "push"
    assert made == [{"hubswarm/singleuser:1": "sha256:built"}, {"hubswarm/singleuser:1": "sha256:existing"}]
    c.check = False

    def broken(*args):
        raise HubswarmError("docker build failed")

    monkeypatch.setattr(images, "build_local", broken)
    with pytest.raises(Exit, match="docker build failed"):
        workers.image_step(c)


@pytest.mark.parametrize("check", [False, True])
def test_a_push_sends_every_profiles_image_as_it_is_here(monkeypatch, tmp_path, check):
    profiles = f"- name: small\n- name: gpu\n  image: {PROFILE_IMAGE}\n- name: again\n  image: {PROFILE_IMAGE}\n"
    c = image_run(tmp_path, profiles)
    c.check = check
    monkeypatch.setattr(images, "push_image", SimpleNamespace(bind=lambda wanted: wanted))
    monkeypatch.setattr(images, "build_local", lambda image, base, project: "sha256:built")
    monkeypatch.setattr(images, "existing_image_id", lambda image: "sha256:existing")
    monkeypatch.setattr(images, "local_image_id", {PROFILE_IMAGE: "sha256:gpu"}.__getitem__)
    built = "sha256:existing" if check else "sha256:built"
    assert workers.image_step(c) == {"hubswarm/singleuser:1": built, PROFILE_IMAGE: "sha256:gpu"}


@pytest.mark.parametrize("check", [False, True])
def test_a_push_stops_before_any_build_when_a_profiles_image_is_not_here(monkeypatch, tmp_path, check):
    c = image_run(tmp_path, f"- name: gpu\n  image: {PROFILE_IMAGE}\n")
    c.check = check
    built = []
    monkeypatch.setattr(images, "build_local", lambda *args: built.append(args))
    monkeypatch.setattr(images, "existing_image_id", lambda *args: built.append(args))

    def missing(*args, what):
        raise HubswarmError(f"{what} failed: Error: No such image: {PROFILE_IMAGE}")

    monkeypatch.setattr(images, "local_docker", missing)
    with pytest.raises(Exit) as stopped:
        workers.image_step(c)
    assert str(stopped.value.message) == (
        f"{PROFILE_IMAGE}, a profile's image, is not on this machine: pull or build it here "
        f"(docker pull {PROFILE_IMAGE}), or set HUBSWARM_IMAGE_SOURCE=pull"
    )
    assert built == []


def test_a_push_streams_each_image_a_node_lacks_from_this_machine(monkeypatch, make_host, tmp_path):
    c = image_run(tmp_path, f"- name: gpu\n  image: {PROFILE_IMAGE}\n")
    monkeypatch.setattr(images, "saved_image", lambda image: io.BytesIO(f"saved {image}".encode()))
    facts = {images.image_id_fact("hubswarm/singleuser:1").key: "", images.image_id_fact(PROFILE_IMAGE).key: ""}
    host, runner = make_host(facts, config=c.config)
    images.push_image(host, {"hubswarm/singleuser:1": "sha256:" + "1" * 64, PROFILE_IMAGE: "sha256:" + "2" * 64})
    assert [(call.script, call.stdin) for call in runner.calls] == [
        ("docker load -q >/dev/null", "saved hubswarm/singleuser:1"),
        ("docker load -q >/dev/null", f"saved {PROFILE_IMAGE}"),
    ]


def test_hosts_table(monkeypatch, capsys):
    from tasks.cli import inventory

    monkeypatch.setattr(inventory.validate, "checked", lambda section: "cfg")
    found = {
        inventory.HUB: [inventory.Instance("hub", "i-1", "hub", "10.0.0.5", "54.1.2.3", "", "running")],
        inventory.WORKER: HubswarmError("no running worker tagged hubswarm:cluster=x"),
    }

    def find(config, role):
        if isinstance(found[role], Exception):
            raise found[role]
        return found[role]

    monkeypatch.setattr(inventory, "find", find)
    c = SimpleNamespace(config=SimpleNamespace(hubswarm=None))
    inventory.hosts.body(c)
    assert capsys.readouterr().out.splitlines() == [
        "note: no running worker tagged hubswarm:cluster=x",
        "ROLE  INSTANCE  NAME  PRIVATE   PUBLIC    STATE",
        "hub   i-1       hub   10.0.0.5  54.1.2.3  running",
    ]
    found[inventory.HUB] = HubswarmError("no running hub")
    with pytest.raises(Exit, match="no running hub"):
        inventory.hosts.body(c)


@pytest.mark.parametrize("task, source", [(workers.push_image, "push"), (workers.pull_image, "pull")])
def test_push_and_pull_image_on_every_node(monkeypatch, test_run, task, source):
    ran = []
    monkeypatch.setattr(workers, "hosts_for", lambda c, role: [f"{role}-hosts"])
    monkeypatch.setattr(workers, "image_step", lambda c, s: f"{s}-step")
    monkeypatch.setattr(workers, "run_steps", lambda hosts, steps: ran.append((hosts, steps)) or [])
    task.body(invocation(test_run))
    assert ran == [(["node-hosts"], [f"{source}-step"])]


@pytest.mark.parametrize(
    "commands, rc, ran",
    [
        pytest.param(["echo a >>log", "echo b >>log"], 0, {"a", "b"}, id="all-run"),
        pytest.param(["false", "echo b >>log"], 1, {"b"}, id="one-fails-the-others-run"),
        pytest.param(["echo a >>log", "exit 3"], 1, {"a"}, id="the-last-fails"),
        pytest.param(["echo a >>log"], 0, {"a"}, id="one"),
    ],
)
def test_side_by_side_runs_every_command_and_fails_when_one_did(tmp_path, commands, rc, ran):
    done = subprocess.run(["bash", "-c", swarm.side_by_side(commands)], cwd=tmp_path, check=False)
    assert done.returncode == rc
    assert set((tmp_path / "log").read_text().split()) == ran


IMAGE, MARK = "hubswarm/singleuser:6.1.1", "/mnt/nfs/home/.hubswarm-homes"


@pytest.mark.parametrize(
    "held, command",
    [
        ("", homes_probe.create_command(IMAGE, MARK)),
        (f"{IMAGE} {MARK}", ""),
        (f"{IMAGE}@sha256:{'a' * 64} {MARK}", ""),  # swarm added the image's digest
        (
            f"hubswarm/singleuser:5.5.4 {MARK}",
            "docker service rm hubswarm-homes >/dev/null && " + homes_probe.create_command(IMAGE, MARK),
        ),
        (
            f"{IMAGE} /elsewhere/.hubswarm-homes",
            "docker service rm hubswarm-homes >/dev/null && " + homes_probe.create_command(IMAGE, MARK),
        ),
    ],
)
def test_the_homes_probe_is_made_again_when_its_image_or_mark_moved(held, command):
    assert homes_probe.probe_command(held, IMAGE, MARK) == command


def test_the_homes_probe_runs_as_no_one_where_notebooks_may_run():
    created = homes_probe.create_command(IMAGE, MARK)
    for part in (
        "--mode global",
        "--constraint 'node.labels.hubswarm.notebooks == true'",
        f"--mount type=bind,source={MARK},target=/hubswarm-homes,readonly",
        "--user 65534:65534 --read-only --cap-drop ALL",
        "--no-resolve-image",
        f"-- {IMAGE} sleep infinity",
    ):
        assert part in created
