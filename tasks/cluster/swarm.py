"""Docker swarm mode: the hub as manager, the workers joined to it."""

import json
import shlex
from dataclasses import dataclass, field
from typing import NamedTuple

from ..core import HubswarmError, facts, secret, step
from . import homes_probe
from .swarm_model import NODES, NOTEBOOK_LABEL, find_node


class SwarmState(NamedTuple):
    """A node's swarm membership: ``state`` (inactive, active, pending, error...),
    whether it is a manager, its node id."""

    state: str
    manager: bool
    node_id: str


def parse_swarm_state(answer):
    """The :class:`SwarmState` in Docker's ``/info`` (JSON); inactive when Docker does not answer."""
    try:
        info = json.loads(answer.out) if answer.ok else {}
    except ValueError:
        info = {}
    swarm = info.get("Swarm") or {}
    return SwarmState(
        swarm.get("LocalNodeState") or "inactive", swarm.get("ControlAvailable") is True, swarm.get("NodeID", "")
    )


SWARM_STATE = facts.Fact(
    "swarm-state",
    # What `docker info` reads, without starting the docker command (where curl is).
    "if command -v curl >/dev/null; then curl -sf --unix-socket /var/run/docker.sock http://localhost/info; "
    "else docker info --format '{{json .}}'; fi",
    parse=parse_swarm_state,
)


def init_command(swarm_state, advertise_ip, host_name):
    """``docker swarm init`` when the node is in no swarm, "" when it manages one."""
    state, manager, _ = swarm_state
    if state == "inactive":
        return f"docker swarm init --advertise-addr {shlex.quote(advertise_ip)} >/dev/null"
    if state == "active" and manager:
        return ""
    if state == "active":
        raise HubswarmError(
            f"{host_name} is a worker in another swarm: make it leave "
            "(docker swarm leave) before it becomes this cluster's manager"
        )
    raise HubswarmError(
        f"{host_name} swarm state is {state!r}: look at 'docker info' there, fix it or "
        "reset it by hand ('docker swarm leave --force'); hubswarm never resets a swarm silently"
    )


@step("swarm-init", probes=lambda host: [facts.addresses(), SWARM_STATE])
def swarm_init(host):
    """Initialise swarm mode with the hub's private IP as advertise address, only when inactive."""
    ip = host.private_ip()
    host.ensure(
        f"initialise the swarm, advertising {ip}",
        init_command(host.fact(SWARM_STATE), ip, host.name),
    )


@dataclass(frozen=True)
class JoinInfo:
    """What a worker needs to join the hub's swarm; ``token`` is a secret."""

    manager: str
    token: str = field(repr=False)
    known_nodes: frozenset


@step("join-token")
def join_info(hub):
    """On the hub: the worker join token and node list, for the workers' swarm-join (the token
    registered as a secret)."""
    state, manager, _ = hub.fact(SWARM_STATE)
    if not (state == "active" and manager) and hub.check:
        return JoinInfo(f"{hub.private_ip()}:2377", "", frozenset())  # setup-hub would make it
    if not (state == "active" and manager):
        raise HubswarmError(f"{hub.name} manages no swarm yet: run 'fab setup-hub' (swarm-init) first")
    # Check mode joins nobody: it needs no token (and runs nothing but probes).
    token = (
        ""
        if hub.check
        else secret(hub.sudo("docker swarm join-token -q worker", what="reading the join token").strip())
    )
    return JoinInfo(f"{hub.private_ip()}:2377", token, frozenset(node.id for node in hub.fact(NODES)))


def join_request(info, advertise_ip):
    """JSON body for Docker's /swarm/join API: the token travels on stdin, not argv."""
    return json.dumps(
        {
            "ListenAddr": "0.0.0.0:2377",
            "AdvertiseAddr": advertise_ip,
            "RemoteAddrs": [info.manager],
            "JoinToken": info.token,
        }
    )


JOIN_SCRIPT = (
    "curl -sS --fail-with-body --unix-socket /var/run/docker.sock -H 'Content-Type: application/json' "
    "--data-binary @- http://localhost/swarm/join"
)
LEAVE_SCRIPT = "docker swarm leave --force >/dev/null"


def join_plan(swarm_state, info, rejoin, host_name):
    """("", "") when in this swarm; else what to say and the script that joins."""
    state, _, node_id = swarm_state
    if state == "active" and node_id in info.known_nodes:
        return "", ""
    if state == "inactive":
        return f"join the swarm at {info.manager}", JOIN_SCRIPT
    if not rejoin:
        why = "in another swarm" if state == "active" else f"in swarm state {state!r}"
        raise HubswarmError(f"{host_name} is {why}: pass --rejoin to make it leave and join this cluster")
    return f"leave its {state} swarm and join the one at {info.manager}", f"{LEAVE_SCRIPT}; {JOIN_SCRIPT}"


@step("swarm-join", probes=lambda host: [SWARM_STATE, facts.addresses()])
def swarm_join(host, info, rejoin=False):
    """Join the hub's swarm (its ``info``) as a worker; ok when already in it."""
    what, script = join_plan(host.fact(SWARM_STATE), info, rejoin, host.name)
    stdin = join_request(info, host.private_ip()) if script else None
    host.ensure(what, script, stdin=stdin)


def label_command(node_labels):
    """docker node update for nodes whose notebooks label differs, or "".

    ``node_labels`` maps node id to (its labels, whether it should take notebooks).
    """
    commands = []
    for node, (labels, should) in sorted(node_labels.items()):
        has = labels.get(NOTEBOOK_LABEL) == "true"
        if should and not has:
            commands.append(
                f"docker node update --label-add {shlex.quote(NOTEBOOK_LABEL + '=true')} -- {shlex.quote(node)} >/dev/null"
            )
        elif not should and NOTEBOOK_LABEL in labels:
            commands.append(
                f"docker node update --label-rm {shlex.quote(NOTEBOOK_LABEL)} -- {shlex.quote(node)} >/dev/null"
            )
    return side_by_side(commands)


def side_by_side(commands):
    """One script that runs ``commands`` at once and fails when one failed: each docker
    command starts a Go program on the hub, and a swarm of new workers needs one apiece."""
    if len(commands) < 2:
        return "".join(commands)
    started = "".join(f"{c} & pids+=($!); " for c in commands)
    return f'pids=(); {started}rc=0; for p in "${{pids[@]}}"; do wait "$p" || rc=1; done; [ "$rc" = 0 ]'


def stale_nodes(nodes):
    """The ids of down entries left by hosts that rejoined under the same hostname, or at the
    same address (a new hub in the place of a lost one)."""
    ready = [n for n in nodes if n.state == "ready"]
    names, addresses = {n.hostname for n in ready}, {n.address for n in ready if n.address}
    return sorted(n.id for n in nodes if n.state == "down" and (n.hostname in names or n.address in addresses))


def nodes_plan(nodes, hub_id, hub_takes_notebooks):
    """[(what, command)] for the swarm's :class:`~tasks.cluster.swarm_model.Node` entries: the
    notebook labels (on every node but the hub, ``hub_id``, unless it takes notebooks: workers
    promoted to managers still do), then the stale entries to remove; a command is "" when
    nothing is to do."""
    stale = stale_nodes(nodes)
    takes = {n.id: (n.labels, n.id != hub_id or bool(hub_takes_notebooks)) for n in nodes if n.id not in stale}
    return [
        ("set notebook placement labels", label_command(takes)),
        (
            f"remove {len(stale)} stale node entries",
            " && ".join(f"docker node rm -- {shlex.quote(n)} >/dev/null" for n in stale),
        ),
    ]


@step("swarm-nodes", probes=lambda host: [NODES, SWARM_STATE, *homes_probe.probe_probes(host)])
def swarm_nodes(host):
    """On the hub: label the nodes that take notebooks (workers; the hub if configured), drop
    stale entries, and keep new notebooks off nodes whose homes storage is missing (the homes probe)."""
    hub_id = host.fact(SWARM_STATE).node_id
    for what, command in nodes_plan(host.fact(NODES), hub_id, host.config.hub_takes_notebooks):
        host.ensure(what, command)
    homes_probe.ensure_probe(host)


# --- remove-worker: drain on the hub, leave on the worker, node rm on the hub ---------


def drain_command(name):
    return f"docker node update --availability drain {shlex.quote(name)} >/dev/null"


def node_rm_command(name):
    return f"docker node rm --force {shlex.quote(name)} >/dev/null"


def drain_plan(node, name, ref=None):
    """(the node's address or None when it is gone, what to say, command) from its
    :class:`~tasks.cluster.swarm_model.Node`, None when there is no such node.
    ``ref``: what Docker knows the node by, when not ``name`` (its id: hostnames repeat)."""
    if node is None:
        return None, "", ""
    if node.availability == "drain":
        return node.address, "", ""
    return node.address, f"drain {name}", drain_command(ref or name)


@step("drain")
def drain(host, name, ref=None):
    """On the hub: drain node ``name`` (Docker's ``ref`` for it, default ``name``);
    returns its address, None when there is no such node."""
    address, what, command = drain_plan(find_node(host.fact(NODES), ref or name), name, ref)
    host.ensure(what, command)
    return address


def leave_plan(swarm_state):
    """(what to say, command) to make a node leave its swarm; ("", "") when in none."""
    return ("leave the swarm", LEAVE_SCRIPT) if swarm_state.state != "inactive" else ("", "")


@step("leave")
def leave(host):
    """Make this node leave its swarm (forced: a worker's leave loses nothing)."""
    host.ensure(*leave_plan(host.fact(SWARM_STATE)))


def remove_plan(name, ref=None):
    """(what to say, command) to remove node ``name`` (Docker's ``ref`` for it, default
    ``name``) from the hub's node list."""
    return f"remove node {name}", node_rm_command(ref or name)


@step("node-rm")
def remove_node(host, name, ref=None):
    """On the hub: remove node ``name`` (Docker's ``ref`` for it, default ``name``), after
    it left, from the node list."""
    host.ensure(*remove_plan(name, ref))
