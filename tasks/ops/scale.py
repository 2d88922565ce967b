"""``fab scale``: the cluster's workers brought to N, launched and joined, or drained and terminated.

:func:`plan` is pure: the cluster's worker instances (EC2), the swarm as the
hub sees it and N in; the workers to launch, to join, to remove, and the busy
ones a scale down would need, out. The EC2 side goes through :mod:`tasks.aws.ec2`,
the swarm side through the steps of :mod:`tasks.cluster.swarm` and :mod:`tasks.cluster.workers`.
"""

import time
from functools import partial
from typing import NamedTuple

from fabric import task

from ..aws import ec2 as aws
from ..cli import inventory
from ..cli.invocation import run_of, targets
from ..cluster import managers, swarm
from ..cluster.swarm_model import NODES, NOTEBOOK_SERVICES, NOTEBOOK_TASKS, swarm_of
from ..cluster.workers import hub_host, join
from ..core import HubswarmError, fail, run_on, run_steps, step, stop_if_failed
from ..core.changes import recorded
from ..core.words import plural

# How long swarm may take to move the notebooks off drained workers (the --help of scale says 2 minutes).
DRAIN_SECONDS = 120


@step("read-swarm", probes=lambda host: [swarm.SWARM_STATE, NODES, NOTEBOOK_TASKS, NOTEBOOK_SERVICES])
def read_swarm(host):
    """The hub's :class:`~tasks.cluster.swarm_model.Swarm`. A hub that manages no swarm, or whose
    swarm lists no node (not even the hub: its managers lost their quorum), cannot tell which
    worker is idle: an error."""
    state, manager, _ = host.fact(swarm.SWARM_STATE)
    if not (state == "active" and manager):
        raise HubswarmError(
            f"{host.name} manages no swarm: run 'fab setup-hub' first (scale asks it which workers run notebooks)"
        )
    seen = swarm_of(host)
    if not seen.nodes:
        raise HubswarmError(managers.UNLISTED)
    return seen


class Worker(NamedTuple):
    """A worker instance with its swarm node entries (at its private address: more than one
    after a rejoin) and the user of each notebook placed there."""

    instance: inventory.Instance
    nodes: tuple
    notebooks: tuple

    @property
    def name(self):
        return self.instance.name or self.instance.instance_id

    @property
    def joined(self):
        """Whether the swarm has it as a ready node (else it is down or never joined)."""
        return any(node.state == "ready" for node in self.nodes)


def workers_of(instances, seen):
    """A :class:`Worker` per instance, from the hub's :class:`~tasks.cluster.swarm_model.Swarm` ``seen``: nodes are
    matched by address, managers too (a worker may be one; the hub is no worker instance)."""
    found = []
    for instance in instances:
        nodes = tuple(n for n in seen.nodes if instance.private_ip and n.address == instance.private_ip)
        ids = {n.id for n in nodes}
        users = sorted(seen.users.get(t.service, t.service) for t in seen.tasks if t.node in ids)
        found.append(Worker(instance, nodes, tuple(users)))
    return found


def removal_order(config, worker):
    """Which worker goes first: the fewest notebooks (idle ones first), then a name
    ``launch`` did not give, then the highest worker number (names stay 1..N)."""
    number = worker.name.removeprefix(f"{config.cluster}-worker")
    numbered = number.isdigit()
    return (len(worker.notebooks), numbered, -int(number) if numbered else 0, worker.name)


class Plan(NamedTuple):
    """What scale does: ``launch`` (names), ``join`` (kept :class:`Worker` the swarm
    does not have ready), ``remove`` and ``refused`` (busy ones, without --force)."""

    launch: list
    join: list
    remove: list
    refused: list


def plan(config, instances, seen, wanted, force=False):
    """The :class:`Plan` that brings the worker ``instances`` (running or pending) to ``wanted``,
    from the hub's :class:`~tasks.cluster.swarm_model.Swarm` ``seen``; busy workers are removed only with ``force``."""
    ordered = sorted(workers_of(instances, seen), key=lambda w: removal_order(config, w))
    extra = ordered[: max(0, len(ordered) - wanted)]
    refused = [] if force else [w for w in extra if w.notebooks]
    return Plan(
        launch=aws.missing_names(config, inventory.WORKER, aws.names(instances), wanted),
        join=sorted((w for w in ordered[len(extra) :] if not w.joined), key=lambda w: w.name),
        remove=[w for w in extra if w not in refused],
        refused=refused,
    )


def refusal(busy):
    """The one line that refuses to remove the ``busy`` workers."""
    said = ", ".join(
        f"{w.name} runs {plural(len(w.notebooks), 'notebook')} ({', '.join(sorted(set(w.notebooks)))})" for w in busy
    )
    them = "it" if sum(len(w.notebooks) for w in busy) == 1 else "them"
    return f"{said}: stop {them} or use --force"


# --- the changes ---------------------------------------------------------------------


def worker_instances(run, client):
    """The cluster's workers as ``launch`` counts them: running or pending."""
    return inventory.describe(run.config, inventory.WORKER, client, states=aws.PRESENT)


def worker_hosts(run, instances):
    """The run's hosts for the worker ``instances``, reached as discovery reaches workers."""
    try:
        connections = inventory.reach(run, instances)
    except HubswarmError as exc:
        fail(str(exc))
    return targets(run, connections)


@step("drain-wait")
def notebooks_gone(host, nodes):
    """On the hub: wait, up to DRAIN_SECONDS, until no notebook is placed on the drained ``nodes``."""
    ids = {n.id for n in nodes}
    deadline = time.monotonic() + DRAIN_SECONDS
    while not host.check:  # check mode drained nothing: nothing moves
        left = [t for t in host.fact(NOTEBOOK_TASKS) if t.node in ids]
        if not left:
            return
        if time.monotonic() >= deadline:
            raise HubswarmError(
                f"{plural(len(left), 'notebook')} still on {', '.join(n.hostname for n in nodes)} "
                f"after {DRAIN_SECONDS} s drained: see 'docker node ps' on the hub, then scale again"
            )
        time.sleep(2)
        host.forget()  # the next fact is asked again


def terminate(run, client, leaving):
    """Terminate the instances of the ``leaving`` workers, each in the recap."""
    for worker in leaving:
        instance_id = worker.instance.instance_id
        with recorded(run, worker.name, "terminate") as instance:
            instance.ensure(f"terminate {instance_id}", partial(client.terminate_instances, InstanceIds=[instance_id]))


def shrink(run, hub, leaving):
    """Remove the ``leaving`` workers: hand their managers' place to others, drain their nodes,
    wait for their notebooks to move, make the ready ones leave, remove their nodes,
    terminate their instances.

    A refused hand-over (the managers lost their quorum) stops before any change; a failed
    drain or wait stops before anything is terminated; a worker that fails to leave is still
    removed and terminated, and fails the run at the end.
    """
    nodes = [n for w in leaving for n in w.nodes]  # none for a worker that never joined
    if nodes:
        hand_over = managers.swarm_managers.bind(tuple(n.id for n in nodes))
        drains = [swarm.drain.bind(n.hostname, n.id) for n in nodes]
        stop_if_failed(run_steps([hub], [hand_over, *drains, notebooks_gone.bind(nodes)]))
    failed = run_steps(worker_hosts(run, [w.instance for w in leaving if w.joined]), [swarm.leave])
    if nodes:
        stop_if_failed(run_steps([hub], [swarm.remove_node.bind(n.hostname, n.id) for n in nodes]))
    aws.with_ec2(terminate, run, leaving)
    stop_if_failed(failed)


def predict_join(run, names):
    """Check mode: the workers it would launch would then join (nothing to probe on them yet)."""
    for name in names:
        with recorded(run, name, "join-workers") as worker:
            worker.changed("set up, join the swarm and get the notebook image")


def grow(run, hub, todo, wanted, wait_ssh):
    """Launch the missing workers, then join-workers on them and on the kept workers the swarm lacks."""
    launched = aws.with_ec2(aws.launch_cluster, run, wanted, wait_ssh) if todo.launch else []
    new = [i for i in aws.with_ec2(worker_instances, run) if i.instance_id in launched] if launched else []
    joining = [w.instance for w in todo.join] + new
    if joining:
        join(run, hub, worker_hosts(run, joining))
    if run.check:
        predict_join(run, todo.launch)


def worker_count(text):
    """``--workers`` as a number, 0 or more; a one-line error otherwise."""
    if text is None:
        fail("scale needs --workers N: how many workers the cluster should have")
    if not str(text).isdigit():
        fail(f"--workers must be a number of workers, 0 or more, not {text!r}")
    return int(text)


@task(
    help={
        "workers": "how many workers the cluster should have (0 or more)",
        "force": "remove workers running notebooks too (swarm starts those notebooks again elsewhere)",
        "wait-ssh": "wait until port 22 answers on each new instance reachable from here (default; --no-wait-ssh to skip)",
    }
)
def scale(c, workers=None, force=False, wait_ssh=True):
    """Bring the cluster to N workers: launch and join the missing ones, or remove idle ones.

    Up: launches the missing tagged workers as `launch` does (lowest free
    numbers), waits for SSH where it is reachable from here, then runs
    join-workers on them (and on any kept worker the swarm does not have
    ready), and promotes workers to keep the swarm's managers as join-workers
    does. Down: picks idle workers (no notebook placed on them), highest
    worker number first; a manager among them is demoted first, another ready
    worker promoted in its place when there is one (refused in one line when
    the managers have lost their quorum); drains each, waits (up to 2 minutes)
    until swarm has moved its notebooks, makes it leave the swarm, removes its
    node on the hub and terminates its instance. When a worker running
    notebooks would have to go, nothing changes: exit 1 naming it and its
    users, unless --force (then the fewest notebooks go first). Never touches
    the hub's host; a second run changes nothing.
    Example: fab scale --workers 3
    """
    if run_of(c).named:
        fail("scale finds the cluster by its EC2 tags: run it without -H")
    run = run_of(c)
    wanted = worker_count(workers)
    hub = hub_host(c)
    todo = plan(run.config, aws.with_ec2(worker_instances, run), run_on(hub, read_swarm), wanted, force)
    if todo.refused:
        fail(refusal(todo.refused))
    if todo.remove:
        shrink(run, hub, todo.remove)
    grow(run, hub, todo, wanted, wait_ssh)
