"""The swarm's managers: the hub and workers promoted, so that the swarm outlives the hub.

Swarm keeps its state (nodes, services, the notebooks' tasks) in the Raft group of its
managers and changes it only while a majority of them, the quorum, answers: the hub alone
is lost with its host, 3 managers survive one lost, 5 two. An even count survives no more
than the odd count below it, so there are 1, 3 or 5: the hub, and the nodes
HUBSWARM_MANAGERS names, else the first 2 ready workers (the hub alone below 3 nodes).

:func:`managers_plan` is pure: the swarm's nodes, the hub's node id, the names and the nodes
about to leave in; the promotions and demotions, or a one-line refusal, out.
"""

import shlex
from typing import NamedTuple

from ..core import HubswarmError, step
from ..settings.kinds import MANAGER_COUNTS
from .swarm import SWARM_STATE
from .swarm_model import NODES, find_node

# The managers when HUBSWARM_MANAGERS names none: the hub and 2 workers.
DEFAULT_MANAGERS = 3
# Why a manager lists no node, not even itself.
UNLISTED = (
    "the swarm's node list does not answer on the hub: see 'docker node ls' there "
    "(its managers may have lost their quorum)"
)
# How long a promoted node may take to answer as a manager (it gets a manager's
# certificate, then joins the Raft group: seconds), and a demoted one to leave that group.
REACHABLE_SECONDS = 60
# A node's place among the managers, as `docker node inspect` shows it: "" once it is none.
REACHABILITY = "{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}"


def quorum(members):
    """How many of ``members`` managers must answer for swarm to change anything."""
    return members // 2 + 1


def answers(node):
    """Whether ``node`` is a manager the others reach (the leader among them)."""
    return node.manager_status in ("leader", "reachable")


def in_group(node):
    """Whether ``node`` is in the managers' Raft group: a manager, or one demoted that has not
    left the group yet (its role says worker, and the quorum still counts it)."""
    return node.role == "manager" or bool(node.manager_status)


def may_manage(node):
    """Whether ``node`` may be a manager, or stay one: ready, active (a drained node is on its
    way out) and, when it is a manager, answering."""
    return node.state == "ready" and node.availability == "active" and node.manager_status != "unreachable"


def refers_to(node, name):
    """Whether ``name`` (lower-cased, from HUBSWARM_MANAGERS) is ``node``'s address, name or id."""
    return name in (node.address, node.hostname.lower(), node.id)


def candidates(nodes, hub, gone):
    """The nodes besides the hub that may manage, but those whose ids are in ``gone``: the
    managers first, so a run keeps those an earlier one chose, then by name (a stable order)."""
    found = [n for n in nodes if n.id != hub.id and n.id not in gone and may_manage(n)]
    return sorted(found, key=lambda n: (not in_group(n), n.hostname, n.id))


def wanted_managers(nodes, hub, names, gone):
    """The hub, then as many :func:`candidates` (those ``names`` names, when it names any) as
    make the largest odd count both the setting and the nodes allow."""
    others = [n for n in candidates(nodes, hub, gone) if not names or any(refers_to(n, x) for x in names)]
    most = len(names) if names else DEFAULT_MANAGERS
    count = max(c for c in MANAGER_COUNTS if c <= min(most, 1 + len(others)))
    return [hub, *others[: count - 1]]


def unmatched(nodes, hub, names, gone):
    """The ``names`` that are neither the hub nor a node that may manage and stays."""
    staying = [hub, *candidates(nodes, hub, gone)]
    return [name for name in names if not any(refers_to(n, name) for n in staying)]


def listed(nodes):
    """The nodes' names, each manager that does not answer marked so."""
    return ", ".join(n.hostname + (" (unreachable)" if n.manager_status == "unreachable" else "") for n in nodes)


def promote_command(ids):
    """Promote the nodes ``ids``, then wait until each answers as a manager: the next
    change of the managers counts on it for the quorum."""
    quoted = " ".join(map(shlex.quote, ids))
    reachability = shlex.quote(REACHABILITY)
    return (
        f"docker node promote -- {quoted} >/dev/null && for node in {quoted}; do "
        f"for try in $(seq {REACHABLE_SECONDS}); do "
        f'[ "$(docker node inspect -f {reachability} -- "$node")" = reachable ] && continue 2; sleep 1; done; '
        f'echo "node $node does not answer as a manager {REACHABLE_SECONDS} s after its promotion: '
        'see docker node ls" >&2; exit 1; done'
    )


def demote_command(ids):
    """Demote the nodes ``ids`` one at a time, in that order, each only once the one before
    has left the managers' Raft group: Docker demotes in the background, and a node still in
    the group when the next goes (or when it is stopped) counts in the quorum, so that two
    demoted at once may leave an even group that a single lost node stops. (A node demoted
    already is demoted again without error: its wait is all that is left.)"""
    reachability = shlex.quote(REACHABILITY)
    return (
        f"for node in {' '.join(map(shlex.quote, ids))}; do "
        'docker node demote -- "$node" >/dev/null || exit 1; '
        f"for try in $(seq {REACHABLE_SECONDS}); do "
        f'status=$(docker node inspect -f {reachability} -- "$node") && [ -z "$status" ] && continue 2; sleep 1; done; '
        f'echo "node $node is still a manager {REACHABLE_SECONDS} s after its demotion: see docker node ls" >&2; '
        "exit 1; done"
    )


class ManagersPlan(NamedTuple):
    """``changes``: [(what, command)] to make in order, a command "" when there is none to make;
    ``unmatched``: the names of HUBSWARM_MANAGERS that are no node that may manage and stays;
    ``managers``: the nodes that manage once the changes are made (1, 3 or 5, the hub first);
    ``promoted``, ``demoted``: the nodes the changes promote and demote, in their order."""

    changes: list
    unmatched: list
    managers: list = []
    promoted: list = []
    demoted: list = []


def managers_plan(nodes, hub_id, names=(), leaving=()):
    """The :class:`ManagersPlan` whose promotions, then demotions, make the managers of the
    swarm's :class:`~tasks.cluster.swarm_model.Node` entries :func:`wanted_managers`.

    ``hub_id``: the hub's node id; ``names``: HUBSWARM_MANAGERS's; ``leaving``: what Docker knows
    the nodes about to be removed by (ids or names): other nodes take their place first.
    Promotions first, then the managers that do not answer go, then those leaving, then the
    others, one at a time: each step keeps a quorum of answering managers, as long as there is
    one to begin with, and the managers end 1, 3 or 5, all answering. So a manager that leaves
    with no ready worker to take its place takes one more with it (3 managers become the hub
    alone, never 2: an even group that a single lost node stops), and a lost manager is
    replaced by a ready worker, else the managers shrink to the hub alone. A one-line
    :class:`HubswarmError` when no step may be taken (the quorum is lost already).
    """
    hub = next((n for n in nodes if n.id == hub_id), None)
    if hub is None:
        raise HubswarmError(UNLISTED)
    gone = {found.id for found in (find_node(nodes, ref) for ref in leaving) if found}
    if hub.id in gone:
        raise HubswarmError(f"{hub.hostname} is the hub: only workers leave the swarm")
    if names and not any(refers_to(hub, name) for name in names):
        raise HubswarmError(
            f"HUBSWARM_MANAGERS does not name the hub ({hub.hostname}, {hub.address}), always a manager: "
            "name it and 2 or 4 workers"
        )
    members = [n for n in nodes if n.manager_status]  # the Raft group, as the quorum counts it
    lost = sorted((n for n in members if not answers(n)), key=lambda n: n.hostname)
    if len(members) - len(lost) < quorum(len(members)):
        raise HubswarmError(
            f"the swarm has lost its quorum: {len(lost)} of its {len(members)} managers do not answer "
            f"({', '.join(n.hostname for n in lost)}): bring them back first (swarm changes nothing until then)"
        )
    wanted = wanted_managers(nodes, hub, names, gone)
    chosen = {n.id for n in wanted}
    promote = [n for n in nodes if n.id in chosen and n.role != "manager"]
    demote = sorted(
        (n for n in nodes if in_group(n) and n.id not in chosen),
        key=lambda n: (answers(n), n.id not in gone, n.hostname, n.id),
    )
    changes = [
        (f"promote {listed(promote)} to managers", promote_command([n.id for n in promote]) if promote else ""),
        (f"demote {listed(demote)} to workers", demote_command([n.id for n in demote]) if demote else ""),
    ]
    return ManagersPlan(changes, unmatched(nodes, hub, names, gone), wanted, promote, demote)


def named(config):
    """The nodes HUBSWARM_MANAGERS names (lower-cased), none when it is unset."""
    return [name for name in config.managers.split(",") if name]


def hub_plan(host, leaving=()):
    """:func:`managers_plan` from the hub's facts and settings; none in check mode on a hub
    that manages no swarm yet (setup-hub would make it its manager)."""
    state = host.fact(SWARM_STATE)
    if not (state.state == "active" and state.manager):
        if host.check:
            return ManagersPlan([], [])
        raise HubswarmError(f"{host.name} manages no swarm yet: run 'fab setup-hub' (swarm-init) first")
    return managers_plan(host.fact(NODES), state.node_id, named(host.config), leaving)


@step("swarm-managers", probes=lambda host: [SWARM_STATE, NODES], preflight=hub_plan)
def swarm_managers(host, leaving=()):
    """On the hub: promote and demote nodes so that the managers are the hub and those
    HUBSWARM_MANAGERS names, else the first 2 ready workers (1, 3 or 5 managers in all);
    ``leaving``: the nodes about to be removed (ids or names), whose place others take first."""
    plan = hub_plan(host, leaving)
    for name in plan.unmatched:
        host.note(f"choose the managers without {name}: HUBSWARM_MANAGERS names it, and it is no ready node")
    for what, command in plan.changes:
        host.ensure(what, command)
