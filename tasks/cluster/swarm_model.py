"""The swarm as its manager (the hub) sees it: nodes, the notebook tasks placed on them
or waiting, and what each reserves. One fact, and its parser, per docker output; status,
scale and the swarm steps (join, labels, drain) all read these.
"""

import json
import re
import shlex
from datetime import datetime
from typing import NamedTuple

from ..core import facts
from ..hubswarm_hub.labels import NO_HOMES_LABEL, NOTEBOOK_LABEL, USER_LABEL

# Nodes with this label set to true take notebooks (workers; the hub if configured).


def json_row(*fields):
    """A Go template printing ``fields`` as one JSON array: one line per object, whatever its values hold."""
    return "[" + ",".join(f"{{{{json {field}}}}}" for field in fields) + "]"


class Resources(NamedTuple):
    """Memory and CPUs, as swarm counts them: a node's capacity, what a task reserves."""

    memory: int  # bytes
    nano_cpus: int  # 1e9 per CPU


class Node(NamedTuple):
    id: str
    hostname: str
    role: str  # what the node is to be: manager or worker (docker node promote/demote set it)
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    address: str
    labels: dict
    capacity: Resources
    # Its place among the managers, as `docker node ls` shows it: leader, reachable,
    # unreachable; "" when it is none (a worker, or a manager not in their Raft group yet).
    manager_status: str


def manager_status(status):
    """A node's ``.ManagerStatus`` (JSON, null for a worker) in the words of :attr:`Node.manager_status`."""
    if not status:
        return ""
    return "leader" if status.get("Leader") else status.get("Reachability", "")


def parse_nodes(answer):
    """The :class:`Node` entries; none when Docker lists none (no swarm, or not its manager)."""
    return [
        Node(*fields[:6], fields[6] or {}, Resources(*fields[7:9]), manager_status(fields[9]))
        for fields in map(json.loads, facts.lines(answer))
    ]


NODES = facts.Fact(
    "swarm-nodes",
    "docker node inspect --format "
    + shlex.quote(
        json_row(
            ".ID",
            ".Description.Hostname",
            ".Spec.Role",
            ".Status.State",
            ".Spec.Availability",
            ".Status.Addr",
            ".Spec.Labels",
            ".Description.Resources.MemoryBytes",
            ".Description.Resources.NanoCPUs",
            # whole: a worker's is nil, and a field of it would fail the template there
            ".ManagerStatus",
        )
    )
    + " $(docker node ls -q)",
    parse=parse_nodes,
)

NOTEBOOK_SERVICE_IDS = f"$(docker service ls -q --filter {shlex.quote('label=' + USER_LABEL)})"

# {service id: its user} of the notebook services.
NOTEBOOK_SERVICES = facts.Fact(
    "notebook-services",
    "docker service inspect --format "
    + shlex.quote(json_row(".ID", f"(index .Spec.Labels {json.dumps(USER_LABEL)})"))
    + f" {NOTEBOOK_SERVICE_IDS}",
    parse=lambda answer: dict(map(json.loads, facts.lines(answer))),
)


class Task(NamedTuple):
    """A notebook service's task that swarm runs or is starting."""

    service: str
    node: str
    state: str  # running, starting, preparing...
    since: datetime  # when it entered that state
    ports: tuple  # its published ports
    error: str  # why swarm cannot run it (a pending task: "no suitable node (...)"), else ""
    reserved: Resources  # what it holds on its node


def timestamp(value):
    """A Docker timestamp (RFC 3339, nanoseconds) as a datetime."""
    found = re.fullmatch(r"([0-9-]+T[0-9:]+)(\.[0-9]+)?(Z|[+-][0-9:]+)", value)
    return datetime.fromisoformat(found.group(1) + found.group(3).replace("Z", "+00:00"))


def reservations(resources):
    """What a task's ``Spec.Resources`` reserves; 0 for what it names none of (a service
    made before guarantees has no Reservations, a 0 is left out of the JSON)."""
    reserved = (resources or {}).get("Reservations") or {}
    return Resources(reserved.get("MemoryBytes", 0), reserved.get("NanoCPUs", 0))


def parse_tasks(answer):
    found = []
    for service, node, state, since, ports, error, resources in map(json.loads, facts.lines(answer)):
        published = tuple(p["PublishedPort"] for p in ports or () if p.get("PublishedPort"))
        found.append(Task(service, node, state, timestamp(since), published, error, reservations(resources)))
    return found


# The whole .Spec.Resources, not .Spec.Resources.Reservations.MemoryBytes: on a task with
# no reservations that path meets a nil pointer, docker inspect falls back to the raw JSON
# with missingkey=error, fails for that task and leaves it out of the answer.
NOTEBOOK_TASKS = facts.Fact(
    "notebook-tasks",
    "docker inspect --type task --format "
    + shlex.quote(
        json_row(
            ".ServiceID",
            ".NodeID",
            ".Status.State",
            ".Status.Timestamp",
            ".Status.PortStatus.Ports",
            ".Status.Err",
            ".Spec.Resources",
        )
    )
    + f" $(docker service ps -q --no-trunc --filter desired-state=running {NOTEBOOK_SERVICE_IDS})",
    parse=parse_tasks,
)


class Swarm(NamedTuple):
    """The swarm as the hub sees it: its :class:`Node` entries, the notebook :class:`Task`
    placed or waiting, and {notebook service id: its user}."""

    nodes: list
    tasks: list
    users: dict


def swarm_of(host):
    """The hub's :class:`Swarm`, in one probe."""
    return Swarm(*host.facts(NODES, NOTEBOOK_TASKS, NOTEBOOK_SERVICES))


def find_node(nodes, ref):
    """The node Docker knows by ``ref``: its id, else its hostname when no other node has
    that hostname (as ``docker node inspect`` resolves a name); None otherwise."""
    by_id = [n for n in nodes if n.id == ref]
    by_name = [n for n in nodes if n.hostname == ref]
    found = by_id or by_name
    return found[0] if len(found) == 1 else None


def reserved_on(node, tasks):
    """What the notebook tasks placed on ``node`` reserve there: swarm holds a task's
    reservation from its placement on, so a notebook still starting counts too."""
    mine = [t.reserved for t in tasks if t.node == node.id]
    return Resources(sum(r.memory for r in mine), sum(r.nano_cpus for r in mine))


def takes_notebooks(node):
    """Whether swarm may place a new notebook on ``node``: up, and matching the hub's placement
    constraint (swarm compares a label's value regardless of case)."""
    labelled = node.labels.get(NOTEBOOK_LABEL, "").lower() == "true"
    homes_missing = node.labels.get(NO_HOMES_LABEL, "").lower() == "true"
    return labelled and not homes_missing and node.state == "ready" and node.availability == "active"
