"""Docker swarm mode: the hub as manager, the workers joined to it."""

import shlex

from .core import HubswarmError, facts, step

SWARM_STATE = facts.command_output(
    "swarm-state",
    "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} "
    "{{.Swarm.Cluster.ID}} {{.Swarm.NodeID}}'",
)


def parse_swarm_state(text):
    """(state, is_manager, cluster_id, node_id) from the SWARM_STATE answer."""
    words = text.split() + ["", "", "", ""]
    return words[0] or "inactive", words[1] == "true", words[2], words[3]


def init_command(state_text, advertise_ip, host_name):
    """``docker swarm init`` when the node is in no swarm, "" when it manages one."""
    state, manager, _, _ = parse_swarm_state(state_text)
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


@step("swarm-init")
def swarm_init(host):
    """Initialise swarm mode with the hub's private IP as advertise address, only when inactive."""
    ip = host.private_ip()
    host.ensure(
        f"swarm initialised, advertising {ip}",
        init_command(host.fact(SWARM_STATE).text, ip, host.name),
    )
