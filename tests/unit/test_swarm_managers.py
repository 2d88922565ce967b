"""The swarm's managers as planned: nodes in, promotions and demotions (or a refusal) out.

The planner of tasks/cluster/managers.py in a table (how many managers, which ones,
HUBSWARM_MANAGERS, nodes leaving, lost managers, the quorum), the step on a fake hub
(changes, check mode, a second run), and the promotion's wait for the new managers in
real bash with a stub docker.
"""

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakehost import node_info, parsed, swarm_info
from tasks.cluster import managers, swarm_model
from tasks.core import HubswarmError

STATES = {"ready", "down"}
AVAILABILITIES = {"active", "drain", "pause"}
STATUSES = {"leader", "reachable", "unreachable", "none"}


def swarm(*lines):
    """The swarm's nodes as the hub reads them, from "name role [state] [availability]
    [manager status]" lines: the name is the node's id and host name, its address
    10.0.0.5 for the hub and 10.0.0.1N for wN; a manager answers unless told (the hub leads)."""
    answer = ""
    for line in lines:
        name, role, *words = line.split()
        [state] = [w for w in words if w in STATES] or ["ready"]
        [availability] = [w for w in words if w in AVAILABILITIES] or ["active"]
        [status] = [w for w in words if w in STATUSES] or ["leader" if name == "hub" else None]
        address = "10.0.0.5" if name == "hub" else f"10.0.0.1{name[1:]}"
        manager = "" if status == "none" else status
        answer += node_info(name, role, state, name, {}, availability, address, manager)
    return parsed(swarm_model.NODES, answer)


HUB = "hub manager"
W12 = ("w1 manager", "w2 manager")
LOST_QUORUM = (
    "the swarm has lost its quorum: 2 of its 3 managers do not answer (w1, w2): "
    "bring them back first (swarm changes nothing until then)"
)

PLAN_CASES = [
    # id, nodes, HUBSWARM_MANAGERS, leaving, (promoted, demoted) or the refusal
    ("the hub alone", [HUB], (), (), ("", "")),
    ("1 worker: the hub alone stays manager", [HUB, "w1 worker"], (), (), ("", "")),
    ("2 workers: both promoted, 3 managers", [HUB, "w1 worker", "w2 worker"], (), (), ("w1 w2", "")),
    (
        "4 workers: the first 2 by name promoted",
        [HUB, "w3 worker", "w1 worker", "w4 worker", "w2 worker"],
        (),
        (),
        ("w1 w2", ""),
    ),
    ("3 managers: nothing to do", [HUB, *W12, "w3 worker"], (), (), ("", "")),
    (
        "managers an earlier run chose are kept, whatever their names",
        [HUB, "w1 worker", "w2 worker", "w3 manager", "w4 manager"],
        (),
        (),
        ("", ""),
    ),
    (
        "workers not ready, drained or paused are not promoted",
        [HUB, "w1 worker down", "w2 worker drain", "w3 worker pause", "w4 worker", "w5 worker"],
        (),
        (),
        ("w4 w5", ""),
    ),
    (
        "a lost manager: a ready worker takes its place first",
        [HUB, "w1 manager", "w2 manager down unreachable", "w3 worker"],
        (),
        (),
        ("w3", "w2"),
    ),
    (
        "a lost manager and no worker to take its place: the hub alone, the lost one first",
        [HUB, "w2 manager", "w1 manager down unreachable"],
        (),
        (),
        ("", "w1 w2"),
    ),
    (
        "3 managers, one down, a ready worker spare: it is promoted, then the dead one demoted",
        [HUB, "w1 manager", "w2 manager down unreachable", "w3 worker", "w4 worker down"],
        (),
        (),
        ("w3", "w2"),
    ),
    (
        "3 managers, one down, no ready worker spare: the dead one, then the other, demoted; the hub alone",
        [HUB, "w1 manager", "w2 manager down unreachable", "w3 worker down"],
        (),
        (),
        ("", "w2 w1"),
    ),
    (
        "3 managers, one down that still answers the group a moment: demoted all the same",
        [HUB, "w1 manager", "w2 manager down", "w3 worker"],
        (),
        (),
        ("w3", "w2"),
    ),
    (
        "a node demoted but still in the group: its demotion is waited for (not left counted)",
        [HUB, "w1 worker", "w2 worker reachable"],
        (),
        ("w1",),
        ("", "w2"),
    ),
    (
        "a node demoted but still in the group, chosen again: promoted back, 3 managers",
        [HUB, "w1 manager", "w2 worker reachable"],
        (),
        (),
        ("w2", ""),
    ),
    (
        "a drained manager: another takes its place",
        [HUB, "w1 manager", "w2 manager drain", "w3 worker"],
        (),
        (),
        ("w3", "w2"),
    ),
    (
        "a rejoined worker's old entry, a lost manager, goes; its new one is promoted",
        [HUB, "w1 manager", "w2 worker", "w9 manager down unreachable"],
        (),
        (),
        ("w2", "w9"),
    ),
    (
        "a manager promoted a moment ago is kept, not yet counted in the quorum",
        [HUB, "w1 manager none", "w2 manager none"],
        (),
        (),
        ("", ""),
    ),
    (
        "5 managers, 2 lost: a quorum still, the managers back to 3",
        [HUB, *W12, "w3 manager down unreachable", "w4 manager down unreachable"],
        (),
        (),
        ("", "w3 w4"),
    ),
    # a node about to leave (remove-worker, scale down)
    ("a worker leaves: the managers stay", [HUB, *W12, "w3 worker"], (), ("w3",), ("", "")),
    (
        "a manager leaves: a ready worker promoted first",
        [HUB, *W12, "w3 worker", "w4 worker"],
        (),
        ("w2",),
        ("w3", "w2"),
    ),
    (
        "3 managers, one leaves and 2 nodes stay: it, then the other, demoted; the hub alone, never 2",
        [HUB, *W12],
        (),
        ("w2",),
        ("", "w2 w1"),
    ),
    (
        "3 managers, one leaves and no ready worker to take its place: the hub alone",
        [HUB, *W12, "w3 worker down", "w4 worker drain"],
        (),
        ("w1",),
        ("", "w1 w2"),
    ),
    ("the last workers leave", [HUB, *W12], (), ("w1", "w2"), ("", "w1 w2")),
    (
        "a manager leaves while another is lost: the lost one goes first, a quorum answers throughout",
        [HUB, "w1 manager", "w2 manager down unreachable"],
        (),
        ("w1",),
        ("", "w2 w1"),
    ),
    ("a node the swarm does not know leaves: nothing to do", [HUB, *W12], (), ("w7",), ("", "")),
    # HUBSWARM_MANAGERS
    (
        "names the hub and 2 workers: those promoted",
        [HUB, "w1 worker", "w2 worker", "w3 worker", "w4 worker"],
        ("hub", "w3", "w4"),
        (),
        ("w3 w4", ""),
    ),
    (
        "names others than the managers: those promoted, then the others demoted",
        [HUB, *W12, "w3 worker", "w4 worker"],
        ("hub", "w3", "w4"),
        (),
        ("w3 w4", "w1 w2"),
    ),
    (
        "names the hub and 4 workers: 5 managers",
        [HUB, "w1 worker", "w2 worker", "w3 worker", "w4 worker"],
        ("hub", "w1", "w2", "w3", "w4"),
        (),
        ("w1 w2 w3 w4", ""),
    ),
    (
        "names a worker that is not ready: 2 would be even, the hub alone",
        [HUB, "w1 worker", "w2 worker down"],
        ("hub", "w1", "w2"),
        (),
        ("", ""),
    ),
    ("names the hub alone: no worker promoted", [HUB, "w1 worker", "w2 worker"], ("hub",), (), ("", "")),
    (
        "names a manager that leaves: the hub alone",
        [HUB, *W12, "w3 worker"],
        ("hub", "w1", "w2"),
        ("w2",),
        ("", "w2 w1"),
    ),
    # refused
    (
        "HUBSWARM_MANAGERS without the hub",
        [HUB, "w1 worker", "w2 worker"],
        ("w1", "w2", "w3"),
        (),
        "HUBSWARM_MANAGERS does not name the hub (hub, 10.0.0.5), always a manager: name it and 2 or 4 workers",
    ),
    (
        "removing a node while the quorum is lost",
        [HUB, "w1 manager down unreachable", "w2 manager down unreachable", "w3 worker"],
        (),
        ("w3",),
        LOST_QUORUM,
    ),
    (
        "2 managers (left by an older version), one lost: the quorum is lost already",
        [HUB, "w1 worker", "w2 manager down unreachable"],
        (),
        (),
        "the swarm has lost its quorum: 1 of its 2 managers do not answer (w2): "
        "bring them back first (swarm changes nothing until then)",
    ),
    (
        "keeping the managers while the quorum is lost",
        [HUB, "w1 manager unreachable", "w2 manager unreachable", "w3 worker"],
        (),
        (),
        LOST_QUORUM,
    ),
    ("the hub leaving", [HUB, *W12], (), ("hub",), "hub is the hub: only workers leave the swarm"),
    (
        "a node list without the hub's node (no leader to list the others)",
        [],
        (),
        (),
        "the swarm's node list does not answer on the hub: see 'docker node ls' there "
        "(its managers may have lost their quorum)",
    ),
]


@pytest.mark.parametrize("nodes, names, leaving, expected", [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_managers_plan(nodes, names, leaving, expected):
    if isinstance(expected, str):
        with pytest.raises(HubswarmError) as refused:
            managers.managers_plan(swarm(*nodes), "hub", names, leaving)
        assert str(refused.value) == expected
        return
    promoted, demoted = expected
    plan = managers.managers_plan(swarm(*nodes), "hub", names, leaving)
    assert [command for _, command in plan.changes] == [
        managers.promote_command(promoted.split()) if promoted else "",
        managers.demote_command(demoted.split()) if demoted else "",
    ]


# --- every plan, on random swarms: 1, 3 or 5 managers, a quorum after every step -----------------


def node(name, role, state="ready", availability="active", status=""):
    address = "10.0.0.5" if name == "hub" else f"10.0.0.1{name[1:]}"
    return swarm_model.Node(name, name, role, state, availability, address, {}, swarm_model.Resources(0, 0), status)


@st.composite
def swarms(draw):
    """(nodes, names, leaving): the hub leading, up to 7 workers in any role, state,
    availability and place in the managers' group (demoted ones not yet out of it, promoted
    ones not yet in it, lost ones), HUBSWARM_MANAGERS unset or naming the hub and 0, 2 or 4."""
    workers = [
        node(
            f"w{i}",
            draw(st.sampled_from(["manager", "worker"])),
            draw(st.sampled_from(["ready", "down"])),
            draw(st.sampled_from(["active", "active", "drain", "pause"])),
            draw(st.sampled_from(["", "reachable", "unreachable"])),
        )
        for i in range(1, draw(st.integers(0, 7)) + 1)
    ]
    names = ()
    if workers and draw(st.booleans()):
        picked = draw(st.lists(st.sampled_from([w.id for w in workers]), unique=True, max_size=4))
        names = ("hub", *picked[: len(picked) // 2 * 2])
    leaving = tuple(draw(st.lists(st.sampled_from([w.id for w in workers]), unique=True))) if workers else ()
    return [node("hub", "manager", status="leader"), *workers], names, leaving


def quorate(group):
    """Whether the managers' group {id: answers} can change: a quorum of it answers."""
    return sum(group.values()) >= managers.quorum(len(group))


@settings(max_examples=500, deadline=None)
@given(swarms())
def test_every_plan_ends_with_1_3_or_5_managers_and_keeps_a_quorum_at_every_step(swarm_):
    nodes, names, leaving = swarm_
    group = {n.id: managers.answers(n) for n in nodes if n.manager_status}
    if not quorate(group):
        with pytest.raises(HubswarmError, match="^the swarm has lost its quorum"):
            managers.managers_plan(nodes, "hub", names, leaving)
        return
    plan = managers.managers_plan(nodes, "hub", names, leaving)
    kept = {n.id for n in plan.managers}
    assert len(kept) in (1, 3, 5) and plan.managers[0].id == "hub"
    assert not kept & set(leaving)
    assert all(managers.may_manage(n) for n in plan.managers[1:])
    # Each promotion, then each demotion, one at a time: the group can make it (a quorum answers
    # before) and still changes after it.
    for promoted in plan.promoted:
        assert quorate(group)
        group[promoted.id] = True
        assert quorate(group)
    for demoted in plan.demoted:
        assert quorate(group)
        group.pop(demoted.id, None)
        assert quorate(group)
    # The group ends the kept managers, all answering (but those promoted a moment ago that
    # are not in it yet, and join it as they come).
    assert set(group) <= kept and all(group.values())
    assert kept - set(group) <= {n.id for n in nodes if n.role == "manager" and not n.manager_status}


def test_the_plan_says_which_nodes_by_name():
    nodes = swarm(HUB, "w1 manager", "w2 manager down unreachable", "w3 worker")
    assert [what for what, _ in managers.managers_plan(nodes, "hub").changes] == [
        "promote w3 to managers",
        "demote w2 (unreachable) to workers",
    ]


def test_hubswarm_managers_names_nodes_by_address_name_or_id():
    answer = (
        node_info("n-hub", "manager", "ready", "ip-10-0-0-5", address="10.0.0.5", manager="leader")
        + node_info("n-a", "worker", "ready", "Worker-A", address="10.0.0.11")
        + node_info("n-b", "worker", "ready", "worker-b", address="10.0.0.12")
        + node_info("n-c", "worker", "ready", "worker-c", address="10.0.0.13")
    )
    names = ["10.0.0.5", "worker-a", "n-c"]  # normalised: lower-cased
    plan = managers.managers_plan(parsed(swarm_model.NODES, answer), "n-hub", names)
    assert plan.changes[0] == ("promote Worker-A, worker-c to managers", managers.promote_command(["n-a", "n-c"]))
    assert plan.unmatched == []


def test_names_that_are_no_ready_node_are_told():
    nodes = swarm(HUB, "w1 worker", "w2 worker down", "w3 worker")
    plan = managers.managers_plan(nodes, "hub", ["hub", "w1", "w2", "w9", "w3"], leaving=["w3"])
    assert plan.unmatched == ["w2", "w9", "w3"]


# --- the step on the hub ---------------------------------------------------------------------

NODES = swarm_model.NODES.key
HUB_STATE = swarm_info("active", True, "hub")


def answer(*lines):
    """swarm() lines as the nodes fact's answer."""
    return "".join(
        node_info(n.id, n.role, n.state, n.hostname, {}, n.availability, n.address, n.manager_status)
        for n in swarm(*lines)
    )


def test_the_step_promotes_then_a_second_run_changes_nothing(make_host):
    hub, runner = make_host({"swarm-state": HUB_STATE, NODES: answer(HUB, "w1 worker", "w2 worker")})
    managers.swarm_managers(hub)
    assert runner.commands == [managers.promote_command(["w1", "w2"])]
    assert hub.record.changes == ["promote w1, w2 to managers"]

    again, runner = make_host({"swarm-state": HUB_STATE, NODES: answer(HUB, *W12)})
    managers.swarm_managers(again)
    assert runner.calls == [] and again.record.changes == []


def test_check_mode_predicts_the_promotions_and_runs_nothing(make_host, recap_out):
    hub, runner = make_host({"swarm-state": HUB_STATE, NODES: answer(HUB, *W12, "w3 worker")}, check=True)
    managers.swarm_managers(hub, ("w2",))
    assert runner.calls == []
    assert hub.record.changes == ["promote w3 to managers", "demote w2 to workers"]
    said = recap_out.getvalue()
    assert "would promote w3 to managers" in said and "would demote w2 to workers" in said


def test_a_hub_without_a_swarm(make_host):
    hub, runner = make_host({"swarm-state": swarm_info()}, check=True)
    managers.swarm_managers(hub)  # setup-hub would make it the manager: nothing to predict yet
    assert hub.record.changes == []
    hub, runner = make_host({"swarm-state": swarm_info()})
    with pytest.raises(HubswarmError, match=r"^10.0.0.5 manages no swarm yet: run 'fab setup-hub'"):
        managers.swarm_managers(hub)
    assert runner.calls == []


def test_a_refusal_comes_before_any_change(make_host):
    """The step's preflight plans too: run_steps stops every host before its first change."""
    lost = answer(HUB, "w1 manager unreachable", "w2 manager unreachable")
    hub, runner = make_host({"swarm-state": HUB_STATE, NODES: lost})
    with pytest.raises(HubswarmError, match="^the swarm has lost its quorum"):
        managers.swarm_managers.check_first(hub)
    assert runner.calls == []


def test_names_that_are_no_ready_node_are_said_every_run(make_host, recap_out):
    hub, runner = make_host({"swarm-state": HUB_STATE, NODES: answer(HUB, *W12)}, managers="hub,w1,w2,w3,w4")
    managers.swarm_managers(hub)
    assert runner.calls == []
    said = recap_out.getvalue()
    assert "choose the managers without w3: HUBSWARM_MANAGERS names it, and it is no ready node" in said
    assert "without w4" in said


# --- the promotion's wait, in real bash ------------------------------------------------------

# The stub answers "docker node inspect" as Docker does while a promoted node joins the managers:
# no manager status, then reachable, from the call in $JOINS_AFTER on (never when it is 0).
DOCKER = """#!{bash}
printf '%s\\n' "$*" >> "$LOG"
case "$1 $2" in
  "node promote") ;;
  "node inspect")
    count=$(( $(cat "$COUNT" 2>/dev/null || echo 0) + 1 )); echo "$count" > "$COUNT"
    [ "$JOINS_AFTER" != 0 ] && [ "$count" -ge "$JOINS_AFTER" ] && echo reachable ;;
  *) exit 1 ;;
esac
"""


@pytest.mark.parametrize("joins_after, rc, inspections", [(1, 0, 2), (3, 0, 4), (0, 1, managers.REACHABLE_SECONDS)])
def test_a_promotion_waits_until_each_node_answers_as_a_manager(tmp_path, joins_after, rc, inspections):
    bash = shutil.which("bash")
    stubs, log = tmp_path / "bin", tmp_path / "argv.log"
    stubs.mkdir()
    (stubs / "docker").write_text(DOCKER.format(bash=bash))
    (stubs / "sleep").write_text(f"#!{bash}\nexit 0\n")  # no real waiting here
    for name in ("docker", "sleep"):
        (stubs / name).chmod(0o755)
    for name in ("seq", "cat"):
        (stubs / name).symlink_to(shutil.which(name))
    done = subprocess.run(
        [bash, "-c", managers.promote_command(["n-a", "n b"])],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={"PATH": str(stubs), "LOG": str(log), "COUNT": str(tmp_path / "count"), "JOINS_AFTER": str(joins_after)},
    )
    assert done.returncode == rc, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "node promote -- n-a n b"
    template = "{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}"
    assert calls[1:] == [f"node inspect -f {template} -- n-a"] * (inspections - 1 if rc == 0 else inspections) + (
        [f"node inspect -f {template} -- n b"] if rc == 0 else []
    )
    if rc:
        assert done.stderr.strip() == (
            f"node n-a does not answer as a manager {managers.REACHABLE_SECONDS} s after its promotion: "
            "see docker node ls"
        )


# Docker demotes in the background: "docker node inspect" shows the node in the managers' group
# ("reachable") until the call in $LEAVES_AFTER (never when it is 0), then none.
DEMOTING = """#!{bash}
printf '%s\\n' "$*" >> "$LOG"
case "$1 $2" in
  "node demote") ;;
  "node inspect")
    count=$(( $(cat "$COUNT" 2>/dev/null || echo 0) + 1 )); echo "$count" > "$COUNT"
    if [ "$LEAVES_AFTER" = 0 ] || [ "$count" -lt "$LEAVES_AFTER" ]; then echo reachable; fi ;;
  *) exit 1 ;;
esac
"""


@pytest.mark.parametrize("leaves_after, rc", [(1, 0), (3, 0), (0, 1)])
def test_a_demotion_waits_until_the_node_left_the_managers_before_the_next(tmp_path, leaves_after, rc):
    bash = shutil.which("bash")
    stubs, log = tmp_path / "bin", tmp_path / "argv.log"
    stubs.mkdir()
    (stubs / "docker").write_text(DEMOTING.format(bash=bash))
    (stubs / "sleep").write_text(f"#!{bash}\nexit 0\n")
    for name in ("docker", "sleep"):
        (stubs / name).chmod(0o755)
    for name in ("seq", "cat"):
        (stubs / name).symlink_to(shutil.which(name))
    done = subprocess.run(
        [bash, "-c", managers.demote_command(["n-a", "n b"])],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={"PATH": str(stubs), "LOG": str(log), "COUNT": str(tmp_path / "count"), "LEAVES_AFTER": str(leaves_after)},
    )
    assert done.returncode == rc, done.stderr
    calls = log.read_text().splitlines()
    inspect = f"node inspect -f {managers.REACHABILITY} -- "
    if rc == 0:  # n b demoted only once n-a is out; it is out at once (the count is past)
        assert calls == ["node demote -- n-a", *[inspect + "n-a"] * leaves_after, "node demote -- n b", inspect + "n b"]
    else:
        assert calls == ["node demote -- n-a", *[inspect + "n-a"] * managers.REACHABLE_SECONDS]
        assert done.stderr.strip() == (
            f"node n-a is still a manager {managers.REACHABLE_SECONDS} s after its demotion: see docker node ls"
        )
