"""A new hub host in the place of a lost one, in the same swarm.

The swarm outlives the hub's host when workers manage it too (:mod:`.managers`): the
notebooks' services, and so their tasks on the workers, are kept by the managers left. A new
host at the lost hub's private address (where running notebooks reach the hub's API, and the
notebook fence lets them) joins that swarm as a manager, through a surviving one; the lost
hub's entry is then demoted and removed by the hub's usual swarm steps (``swarm-managers``,
``swarm-nodes``).

:func:`takeover_plan` is pure: the new host's swarm state, the swarm's nodes as a surviving
manager lists them, the new host's address and the workers' node ids in; the entry it
replaces, or a one-line refusal, out.
"""

import time

from ..core import HubswarmError, facts, secret, step
from .managers import answers
from .swarm import JOIN_SCRIPT, SWARM_STATE, JoinInfo, join_request
from .swarm_model import NODES

# How long replace-hub waits, while it sets the new host up, for a surviving manager to see the
# lost hub down: swarm misses a few of its heartbeats first (13-42 s measured in the lab, the
# longer when the lost hub led the managers).
DOWN_SECONDS = 120


def lost_hubs(nodes, address, new_id=""):
    """The swarm's entries at the hub's ``address`` other than the new host's (``new_id``)."""
    return [n for n in nodes if n.address == address and n.id != new_id]


def takeover_plan(state, nodes, address, workers, host_name, force=False):
    """What the new hub ``host_name`` at ``address`` (its :class:`~.swarm.SwarmState`
    ``state``) does to take the lost hub's place in the swarm of ``nodes`` (those a surviving
    manager lists): "" when it is the swarm's hub already, else the entry it replaces
    (:class:`~.swarm_model.Node`). A one-line :class:`HubswarmError` when it must not:
    a worker of the cluster (``workers``: their node ids), a host in another swarm, an
    address the lost hub did not have, or a hub the swarm still sees up (unless ``force``).
    """
    if state.node_id and state.node_id in workers:
        raise HubswarmError(f"{host_name} is a worker of the cluster: the new hub is a host of its own")
    if state.state == "active" and state.node_id in {n.id for n in nodes}:
        if not state.manager:
            raise HubswarmError(f"{host_name} is a worker of the swarm: the new hub is a host of its own")
        return ""
    if state.state != "inactive":
        raise HubswarmError(
            f"{host_name} is in another swarm (state {state.state!r}): make it leave "
            "(docker swarm leave --force) before it takes the hub's place"
        )
    lost = lost_hubs(nodes, address, state.node_id)
    if not lost:
        down = sorted({n.address for n in nodes if n.state != "ready" and n.manager_status})
        where = f" (the swarm's lost manager was at {', '.join(down)})" if down else ""
        raise HubswarmError(
            f"the swarm has no hub at {address}{where}: the new hub takes the lost one's private "
            "address, where running notebooks reach the hub's API (launch it there once the old "
            "instance is terminated)"
        )
    up = [n for n in lost if n.state == "ready"]
    if up and not force:
        raise HubswarmError(
            f"the swarm still sees the hub at {address} ({up[0].hostname}) up: it may still be "
            "running; wait until a manager's docker node ls shows it down, or pass --force"
        )
    return lost[0]


@step("swarm-view", probes=lambda host: [SWARM_STATE, NODES])
def swarm_view(host):
    """(this node's id, the swarm's nodes as it lists them): no nodes unless it is a manager
    that answers (a manager lists nothing while its managers have lost their quorum)."""
    state = host.fact(SWARM_STATE)
    nodes = host.fact(NODES) if state.state == "active" and state.manager else []
    me = next((n for n in nodes if n.id == state.node_id), None)
    return state.node_id, (nodes if me and answers(me) else [])


@step("lost-hub", probes=lambda host: [NODES])
def seen_down(host, address, new_id, seconds=DOWN_SECONDS):
    """On a surviving manager: the swarm's nodes once it sees the lost hub at ``address`` (any
    entry there but the new host's, ``new_id``) down, or once ``seconds`` have passed."""
    started = time.monotonic()
    while True:
        nodes = host.fact(NODES)
        up = [n for n in lost_hubs(nodes, address, new_id) if n.state == "ready"]
        waited = time.monotonic() - started
        if not up or host.check or waited >= seconds:
            if waited >= 1:
                host.note(
                    f"the swarm {'still sees the lost hub up' if up else 'saw the lost hub down'} after {waited:.0f} s"
                )
            return nodes
        time.sleep(1)
        host.forget(NODES)


@step("join-token", probes=lambda host: [facts.addresses()])
def manager_join_info(host, nodes):
    """On a surviving manager: the manager join token (registered as a secret; none in check
    mode) and the swarm's node ids."""
    token = (
        ""
        if host.check
        else secret(host.sudo("docker swarm join-token -q manager", what="reading the join token").strip())
    )
    return JoinInfo(f"{host.private_ip()}:2377", token, frozenset(n.id for n in nodes))


def takeover_preflight(host, nodes, workers, info=None, force=False):
    takeover_plan(host.fact(SWARM_STATE), nodes, host.private_ip(), workers, host.name, force)


@step("swarm-takeover", probes=lambda host: [SWARM_STATE, facts.addresses()], preflight=takeover_preflight)
def swarm_takeover(host, nodes, workers, info, force=False):
    """Join the swarm of ``nodes`` as a manager (``info``: a surviving manager's join
    token), in the place of the lost hub at this host's address; ok when it is the swarm's
    hub already."""
    ip = host.private_ip()
    lost = takeover_plan(host.fact(SWARM_STATE), nodes, ip, workers, host.name, force)
    if lost:
        host.ensure(
            f"join the swarm at {info.manager} as a manager, in the place of the lost hub {lost.hostname} ({lost.id[:12]})",
            JOIN_SCRIPT,
            stdin=join_request(info, ip),
        )
