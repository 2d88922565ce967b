"""fab scale: the pure plan in a table, then the task against moto's in-process EC2.

The swarm side is fake hosts (``make_host``): a hub answering the swarm's
nodes and notebooks, and a worker made on demand for each instance the task
would reach. Nothing connects anywhere: not to the private addresses moto
invents for the instances either.
"""

import io
import json
from datetime import datetime, timezone

import pytest
from invoke.exceptions import Exit

from fakehost import homes_probe_done, hub_config, invocation, manager_info, swarm_info
from tasks.aws import ec2 as aws
from tasks.cli import inventory
from tasks.cluster import managers, swarm, swarm_model, workers
from tasks.core import Run, Step
from tasks.core.recap import Recap
from tasks.node import fence
from tasks.ops import scale

AMI = "ami-12c6146b"
HUB = "10.0.0.5"
NO_RESOURCES = swarm_model.Resources(0, 0)
SINCE = datetime(2026, 1, 1, tzinfo=timezone.utc)

# --- the plan ------------------------------------------------------------------------


def instance(name, ip):
    return inventory.Instance("worker", f"i-{name}", name, ip, "", "", "running")


def node(id_, hostname, address, state="ready", role="worker"):
    status = "reachable" if role == "manager" else ""
    return swarm_model.Node(id_, hostname, role, state, "active", address, {}, NO_RESOURCES, status)


def notebook(user, node_id, state="running"):
    return swarm_model.Task(f"s-{user}", node_id, state, SINCE, (), "", NO_RESOURCES)


HUB_NODE = node("n-hub", "hub", HUB, role="manager")


def cluster(workers, notebooks=(), names=None):
    """(instances, swarm) of workers ``{number: node state, or None when not in the swarm}``
    and ``notebooks`` (user, worker number, or "hub", or None for no node yet)."""
    names = names or {}
    instances, nodes = [], [HUB_NODE]
    for number, state in workers.items():
        ip = f"10.0.0.{10 + number}"
        instances.append(instance(names.get(number, f"c1-worker{number}"), ip))
        if state:
            nodes.append(node(f"n{number}", f"worker{number}", ip, state))
    placed = {None: "", "hub": "n-hub"}
    tasks = [notebook(user, placed.get(where, f"n{where}")) for user, where in notebooks]
    return instances, swarm_model.Swarm(nodes, tasks, {t.service: t.service[2:] for t in tasks})


READY3 = {1: "ready", 2: "ready", 3: "ready"}
FULL = [("carol", 1), ("dan", 1), ("erin", 1), ("frank", 2), ("gina", 2), ("hal", 2), ("alice", 3), ("bob", 3)]
W = "c1-worker{}".format

PLAN_CASES = [
    # id, workers, notebooks, wanted, force, (launch, join, remove, refused)
    ("as many as wanted", {1: "ready", 2: "ready"}, [], 2, False, ([], [], [], [])),
    ("up from none", {}, [], 2, False, ([W(1), W(2)], [], [], [])),
    (
        "up: the lowest free numbers, as launch picks them",
        {1: "ready", 3: "ready"},
        [],
        4,
        False,
        ([W(2), W(4)], [], [], []),
    ),
    ("a kept worker not in the swarm joins", {1: "ready", 2: None}, [], 2, False, ([], [W(2)], [], [])),
    ("a kept worker whose node is down joins again", {1: "down", 2: "ready"}, [], 3, False, ([W(3)], [W(1)], [], [])),
    ("down: idle ones, the highest number first", READY3, [], 1, False, ([], [], [W(3), W(2)], [])),
    ("down: a busy worker stays when an idle one can go", READY3, [("alice", 3)], 2, False, ([], [], [W(2)], [])),
    ("down: a worker never joined goes like an idle one", {1: "ready", 2: None}, [], 1, False, ([], [], [W(2)], [])),
    ("down: the one busy worker it needs is refused", READY3, FULL, 2, False, ([], [], [], [W(3)])),
    ("--force: the fewest notebooks go first", READY3, FULL, 2, True, ([], [], [W(3)], [])),
    ("--force down to none", READY3, FULL, 0, True, ([], [], [W(3), W(2), W(1)], [])),
    (
        "down to none refuses the busy, removes the idle",
        READY3,
        [("alice", 1)],
        0,
        False,
        ([], [], [W(3), W(2)], [W(1)]),
    ),
    (
        "a notebook placed on no node keeps nobody busy",
        {1: "ready", 2: "ready"},
        [("carol", None)],
        1,
        False,
        ([], [], [W(2)], []),
    ),
    (
        "notebooks on the hub keep no worker busy",
        {1: "ready"},
        [("alice", "hub"), ("bob", "hub")],
        0,
        False,
        ([], [], [W(1)], []),
    ),
]


@pytest.mark.parametrize(
    "workers_, notebooks, wanted, force, expected", [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES]
)
def test_plan(workers_, notebooks, wanted, force, expected):
    instances, seen = cluster(workers_, notebooks)
    todo = scale.plan(hub_config(cluster="c1"), instances, seen, wanted, force)
    names = [[w.name for w in group] for group in (todo.join, todo.remove, todo.refused)]
    assert (todo.launch, *names) == expected


def test_plan_a_name_launch_did_not_give_goes_first():
    instances, seen = cluster(READY3, names={2: "gpu-box"})
    todo = scale.plan(hub_config(cluster="c1"), instances, seen, 2)
    assert [w.name for w in todo.remove] == ["gpu-box"]
    assert todo.launch == []  # two kept: worker1, worker3


def test_plan_removes_every_node_entry_of_a_worker_a_manager_too():
    instances, seen = cluster({1: "ready", 2: "ready"})
    stale = node("n2-old", "worker2", "10.0.0.12", state="down")
    promoted = node("n2", "worker2", "10.0.0.12", role="manager")  # a worker promoted to manager
    seen = seen._replace(nodes=[*seen.nodes[:2], promoted, stale])
    [worker2] = scale.plan(hub_config(cluster="c1"), instances, seen, 1).remove
    assert [n.id for n in worker2.nodes] == ["n2", "n2-old"] and worker2.joined


@pytest.mark.parametrize(
    "notebooks, line",
    [
        ([("alice", 3), ("bob", 3)], "c1-worker3 runs 2 notebooks (alice, bob): stop them or use --force"),
        ([("carol", 3)], "c1-worker3 runs 1 notebook (carol): stop it or use --force"),
        (
            [("carol", 3), ("alice", 3), ("alice", 3), ("bob", 2)],
            "c1-worker2 runs 1 notebook (bob), c1-worker3 runs 3 notebooks (alice, carol): stop them or use --force",
        ),
    ],
    ids=["two users", "one notebook", "two workers, a user's two servers"],
)
def test_refusal(notebooks, line):
    instances, seen = cluster(READY3, notebooks)
    workers_ = {w.name: w for w in scale.workers_of(instances, seen)}
    busy = [workers_[name] for name in sorted({W(where) for _, where in notebooks})]
    assert scale.refusal(busy) == line


# --- the task, against moto --------------------------------------------------------------


LAUNCH = dict(cluster="c1", region="us-west-2", vpc_id="", subnet_id="", ami=AMI, key_name="hubswarm-key")


def config(**overrides):
    """The settings of cluster c1, launched from AMI with the key pair hubswarm-key."""
    return hub_config(**{**LAUNCH, "instance_type": "t3.medium", "launch_timeout": "30", **overrides})


def compact(*fields):
    return json.dumps(list(fields)) + "\n"


def nodes_answer(ips):
    """swarm-nodes: the hub, and a ready worker node per ``{number: ip}``; workers 1 and 2
    managers when there are 2 or more, as join-workers keeps them."""
    managers = {1, 2} if len(ips) >= 2 else set()
    lines = [
        compact(
            "n-hub",
            "hub",
            "manager",
            "ready",
            "active",
            HUB,
            None,
            1 << 32,
            2 * 10**9,
            manager_info("manager", "leader"),
        )
    ]
    lines += [
        compact(
            f"n{n}",
            f"worker{n}",
            "manager" if n in managers else "worker",
            "ready",
            "active",
            ip,
            {"hubswarm.notebooks": "true"},
            1 << 32,
            2 * 10**9,
            manager_info("manager" if n in managers else "worker"),
        )
        for n, ip in sorted(ips.items())
    ]
    return "".join(lines)


def tasks_answer(notebooks):
    """notebook-tasks: (user, worker number) each running."""
    return "".join(
        compact(f"s-{user}", f"n{n}", "running", "2026-01-01T09:00:00.5Z", None, "", {}) for user, n in notebooks
    )


def services_answer(notebooks):
    return "".join(compact(f"s-{user}", user) for user, _ in notebooks)


def moto_workers(ec2, states=("running",)):
    """{Name: Instance} of the cluster's workers in moto."""
    return {i.name: i for i in inventory.describe(config(), inventory.WORKER, ec2, states=states)}


def tags(ec2, instance_id):
    [raw] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
    return raw, {t["Key"]: t["Value"] for t in raw["Tags"]}


@pytest.fixture
def fleet(ec2, make_host, test_run, monkeypatch):
    """``fleet(count, notebooks)``: launch a hub and ``count`` workers in moto (none: keep
    what is there), and make the fake hub of a new invocation: its swarm has every worker
    moto runs as a ready node, with ``notebooks`` (user, worker number) placed on them.

    Returns the hub's runner. ``fleet.reached`` lists (sorted names) the instances each
    ``worker_hosts`` call asked for; ``fleet.runners`` the fake workers' runners by address.
    """
    in_swarm = {}  # address -> node id, as the latest hub sees them

    def make(count, notebooks=()):
        if count:
            aws.launch_cluster(Run(config(), recap=Recap(stream=io.StringIO())), ec2, count, wait_ssh=False)
        test_run.recap = Recap(stream=io.StringIO())
        make.reached.clear()
        ips = {int(name.removeprefix("c1-worker")): i.private_ip for name, i in moto_workers(ec2).items()}
        in_swarm.clear()
        in_swarm.update({ip: f"n{n}" for n, ip in ips.items()})
        answers = {
            "swarm-state": swarm_info("active", True, "n-hub"),
            "addresses": HUB,
            swarm_model.NODES.key: nodes_answer(ips),
            swarm_model.NOTEBOOK_TASKS.key: tasks_answer(notebooks),
            swarm_model.NOTEBOOK_SERVICES.key: services_answer(notebooks),
            **homes_probe_done(config()),
        }
        hub, runner = make_host(answers, address=HUB, config=config(), check=test_run.check)
        runner.prints["swarm join-token -q worker"] = "SWMTKN-1-scale\n"
        monkeypatch.setattr(scale, "hub_host", lambda c: hub)
        return runner

    def worker_hosts(run, instances):
        make.reached.append(sorted(i.name for i in instances))
        made = []
        for i in instances:
            state = swarm_info("active", False, in_swarm[i.private_ip]) if i.private_ip in in_swarm else swarm_info()
            answers = {"addresses": i.private_ip, "swarm-state": state}
            host, make.runners[i.private_ip] = make_host(
                answers, address=i.private_ip, config=config(), check=run.check
            )
            made.append(host)
        return made

    make.reached, make.runners = [], {}
    monkeypatch.setattr(scale, "worker_hosts", worker_hosts)
    monkeypatch.setattr(workers, "image_step", lambda run: Step("push-image", lambda h: None))
    monkeypatch.setattr(workers, "WORKER_SETUP", [])
    monkeypatch.setattr(fence, "notebook_fence", Step("notebook-fence", lambda h, hub_ip: None))
    return make


@pytest.fixture
def scale_to(test_run):
    """``scale_to(n, **options)``: ``fab scale --workers n`` (with --no-wait-ssh unless told)."""

    def run(count, check=False, **options):
        test_run.check = check
        options.setdefault("wait_ssh", False)
        scale.scale.body(invocation(test_run), workers=str(count), **options)

    return run


def changes(run):
    """[(host, task, changes)] of the records that changed something."""
    return [(r.host, r.task, r.changes) for r in run.recap.records if r.changes]


def test_scale_up_launches_and_joins_the_new_workers_then_nothing(ec2, fleet, scale_to, test_run):
    on_hub = fleet(1)
    before = moto_workers(ec2)
    scale_to(3)

    now = moto_workers(ec2)
    assert sorted(now) == ["c1-worker1", "c1-worker2", "c1-worker3"]
    assert now["c1-worker1"] == before["c1-worker1"]
    new = [now["c1-worker2"], now["c1-worker3"]]
    for worker in new:
        raw, tagged = tags(ec2, worker.instance_id)
        assert tagged == {"Name": worker.name, "hubswarm:cluster": "c1", "hubswarm:role": "worker"}
        assert (raw["InstanceType"], raw["KeyName"], raw["ImageId"]) == ("t3.medium", "hubswarm-key", AMI)
        assert [g["GroupName"] for g in raw["SecurityGroups"]] == ["hubswarm-c1-internal"]
        assert raw["MetadataOptions"]["HttpTokens"] == "required"
    # Only the new workers are reached, each joined with the hub's token on stdin.
    assert fleet.reached == [["c1-worker2", "c1-worker3"]]
    for worker in new:
        runner = fleet.runners[worker.private_ip]
        assert runner.commands == [swarm.JOIN_SCRIPT]
        assert json.loads(runner.calls[0].stdin)["JoinToken"] == "SWMTKN-1-scale"
    assert on_hub.commands == ["docker swarm join-token -q worker"]
    assert sorted((host, task) for host, task, _ in changes(test_run)) == sorted(
        [(w.name, "launch") for w in new] + [(w.private_ip, "swarm-join") for w in new]
    )

    on_hub = fleet(0)
    scale_to(3)
    assert changes(test_run) == [] and test_run.recap.failed() == []
    assert fleet.reached == [] and on_hub.calls == []
    assert moto_workers(ec2) == now


def test_scale_up_waits_for_ssh_on_the_new_workers_without_connecting(ec2, fleet, scale_to, monkeypatch):
    fleet(1)
    asked = []
    monkeypatch.setattr(aws, "ssh_answers", lambda address, deadline: asked.append(address) or True)
    scale_to(2, wait_ssh=True)
    assert asked == [moto_workers(ec2)["c1-worker2"].private_ip]


def test_scale_down_removes_idle_workers_then_nothing(ec2, fleet, scale_to, test_run):
    on_hub = fleet(3, [("alice", 1)])
    before = moto_workers(ec2)
    worker2, worker3 = before["c1-worker2"], before["c1-worker3"]
    scale_to(1)

    # worker1 and worker2 are managers: 2 nodes left, the hub stays the only one (worker2,
    # leaving, demoted first, then worker1: never 2 managers left)
    assert on_hub.commands == [
        managers.demote_command(["n2", "n1"]),
        swarm.drain_command("n3"),
        swarm.drain_command("n2"),
        swarm.node_rm_command("n3"),
        swarm.node_rm_command("n2"),
    ]
    assert fleet.reached == [["c1-worker2", "c1-worker3"]]
    assert [fleet.runners[w.private_ip].commands for w in (worker2, worker3)] == [[swarm.LEAVE_SCRIPT]] * 2
    assert moto_workers(ec2) == {"c1-worker1": before["c1-worker1"]}
    gone = moto_workers(ec2, states=("shutting-down", "terminated"))
    assert {name: i.instance_id for name, i in gone.items()} == {w.name: w.instance_id for w in (worker2, worker3)}
    done = changes(test_run)
    assert [task for _, task, _ in done] == [
        "swarm-managers",
        "drain",
        "drain",
        "leave",
        "leave",
        "node-rm",
        "node-rm",
        "terminate",
        "terminate",
    ]
    assert sorted(done) == sorted(
        [
            (HUB, "swarm-managers", ["demote worker2, worker1 to workers"]),
            (HUB, "drain", ["drain worker3"]),
            (HUB, "drain", ["drain worker2"]),
            (worker3.private_ip, "leave", ["leave the swarm"]),
            (worker2.private_ip, "leave", ["leave the swarm"]),
            (HUB, "node-rm", ["remove node worker3"]),
            (HUB, "node-rm", ["remove node worker2"]),
            ("c1-worker3", "terminate", [f"terminate {worker3.instance_id}"]),
            ("c1-worker2", "terminate", [f"terminate {worker2.instance_id}"]),
        ]
    )

    on_hub = fleet(0, [("alice", 1)])
    scale_to(1)
    assert changes(test_run) == [] and on_hub.calls == [] and fleet.reached == []
    assert moto_workers(ec2) == {"c1-worker1": before["c1-worker1"]}


def test_scale_down_promotes_a_ready_worker_before_a_manager_goes(ec2, fleet, scale_to, test_run):
    on_hub = fleet(3, [("alice", 1), ("bob", 3)])  # worker2, a manager, is the idle one
    scale_to(2)
    assert on_hub.commands == [
        managers.promote_command(["n3"]),
        managers.demote_command(["n2"]),
        swarm.drain_command("n2"),
        swarm.node_rm_command("n2"),
    ]
    assert (HUB, "swarm-managers", ["promote worker3 to managers", "demote worker2 to workers"]) in changes(test_run)
    assert sorted(moto_workers(ec2)) == ["c1-worker1", "c1-worker3"]


def test_a_busy_worker_is_refused_before_any_change(ec2, fleet, scale_to, test_run):
    on_hub = fleet(3, FULL)
    before = moto_workers(ec2)
    with pytest.raises(Exit) as refused:
        scale_to(2)
    assert refused.value.code == 1
    assert refused.value.message == "c1-worker3 runs 2 notebooks (alice, bob): stop them or use --force"
    assert on_hub.calls == [] and fleet.reached == [] and changes(test_run) == []
    assert moto_workers(ec2) == before


def test_force_drains_a_busy_worker_and_waits_for_its_notebooks_to_move(ec2, fleet, scale_to, monkeypatch):
    on_hub = fleet(3, FULL)
    worker3 = moto_workers(ec2)["c1-worker3"]
    moved = [(user, 1 if n == 3 else n) for user, n in FULL]
    slept = []

    def sleep(seconds):  # meanwhile, swarm moves alice's and bob's notebooks
        slept.append(seconds)
        on_hub.answers[swarm_model.NOTEBOOK_TASKS.key] = tasks_answer(moved)

    monkeypatch.setattr(scale.time, "sleep", sleep)
    scale_to(2, force=True)
    assert on_hub.commands == [swarm.drain_command("n3"), swarm.node_rm_command("n3")]
    assert (
        len(slept) == 1 and on_hub.probed.count(swarm_model.NOTEBOOK_TASKS.key) == 3
    )  # read, before and after the sleep
    assert fleet.runners[worker3.private_ip].commands == [swarm.LEAVE_SCRIPT]
    assert sorted(moto_workers(ec2)) == ["c1-worker1", "c1-worker2"]


def test_notebooks_that_do_not_move_stop_it_before_any_termination(ec2, fleet, scale_to, monkeypatch):
    on_hub = fleet(3, FULL)
    before = moto_workers(ec2)
    monkeypatch.setattr(scale, "DRAIN_SECONDS", 0)
    with pytest.raises(Exit) as stopped:
        scale_to(2, force=True)
    assert stopped.value.message == (
        f"1 host(s) failed; first: {HUB} drain-wait: 2 notebooks still on worker3 after 0 s drained: "
        "see 'docker node ps' on the hub, then scale again"
    )
    assert on_hub.commands == [swarm.drain_command("n3")] and fleet.reached == []
    assert moto_workers(ec2) == before


def test_check_mode_predicts_and_changes_nothing(ec2, fleet, scale_to, test_run):
    test_run.check = True
    on_hub = fleet(3, FULL)
    before = moto_workers(ec2)
    scale_to(1, check=True, force=True)
    assert on_hub.calls == [] and [r.calls for r in fleet.runners.values()] == [[], []]
    assert moto_workers(ec2) == before
    said = test_run.recap.stream.getvalue()
    for line in (
        f"[{HUB}] swarm-managers: would demote worker2, worker1 to workers",
        f"[{HUB}] drain: would drain worker3",
        f"[{HUB}] drain: would drain worker2",
        f"[{HUB}] drain-wait: ok",
        f"[{before['c1-worker3'].private_ip}] leave: would leave the swarm",
        f"[{HUB}] node-rm: would remove node worker2",
        f"[c1-worker3] terminate: would terminate {before['c1-worker3'].instance_id}",
    ):
        assert line in said

    on_hub = fleet(0)
    scale_to(4, check=True)
    assert on_hub.calls == [] and fleet.reached == [] and moto_workers(ec2) == before
    assert [(host, task) for host, task, _ in changes(test_run)] == [
        ("c1-worker4", "launch"),
        ("c1-worker4", "join-workers"),
    ]
    assert "[c1-worker4] join-workers: would set up, join the swarm and get the notebook image" in (
        test_run.recap.stream.getvalue()
    )


def test_a_hub_without_a_swarm_stops_it(ec2, make_host, test_run, monkeypatch, scale_to):
    hub, runner = make_host({"swarm-state": swarm_info()}, address=HUB, config=config())
    monkeypatch.setattr(scale, "hub_host", lambda c: hub)
    with pytest.raises(Exit, match=f"first: {HUB} read-swarm: {HUB} manages no swarm: run 'fab setup-hub' first"):
        scale_to(1)
    assert runner.calls == []


def test_a_swarm_that_lists_no_node_stops_it_before_any_change(ec2, fleet, scale_to, test_run):
    """Without a quorum the hub lists no node, not even itself: every worker would seem idle."""
    on_hub = fleet(2)
    on_hub.answers[swarm_model.NODES.key] = ""
    with pytest.raises(Exit, match=f"first: {HUB} read-swarm: the swarm's node list does not answer on the hub"):
        scale_to(0)
    assert on_hub.calls == [] and fleet.reached == [] and changes(test_run) == []
    assert len(moto_workers(ec2)) == 2


@pytest.mark.parametrize(
    "workers_, line",
    [
        (None, "scale needs --workers N: how many workers the cluster should have"),
        ("-1", "--workers must be a number of workers, 0 or more, not '-1'"),
        ("two", "--workers must be a number of workers, 0 or more, not 'two'"),
    ],
)
def test_worker_count(workers_, line):
    with pytest.raises(Exit) as err:
        scale.worker_count(workers_)
    assert err.value.message == line
    assert scale.worker_count("0") == 0 and scale.worker_count("12") == 12


def test_scale_takes_no_host(test_run):
    with pytest.raises(Exit, match="^scale finds the cluster by its EC2 tags: run it without -H$"):
        scale.scale.body(invocation(test_run, "10.0.0.6"), workers="2")


@pytest.mark.parametrize("gateway", [True, False])
def test_worker_hosts_are_reached_as_discovery_reaches_workers(test_run, monkeypatch, gateway):
    import fabric

    test_run.config = config(gateway=gateway, address="public")
    hub = fabric.Connection(HUB)
    monkeypatch.setattr(inventory, "gateway_for", lambda run: hub)
    found = [inventory.Instance("worker", "i-1", "c1-worker1", "10.0.0.11", "54.1.2.3", "", "running")]
    [host] = scale.worker_hosts(test_run, found)
    assert (host.connection.host, host.connection.gateway) == (("10.0.0.11", hub) if gateway else ("54.1.2.3", None))
    assert scale.worker_hosts(test_run, []) == []
