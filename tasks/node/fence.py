"""The notebook fence: what a notebook (arbitrary code run by a student) may reach.

Notebooks run on Docker's default bridge, ``docker0``, on every node. Two iptables chains
of hubswarm's own hold the rules, so nothing else on the node is touched:

- ``HUBSWARM-NOTEBOOKS``, jumped to first from Docker's ``DOCKER-USER``: what a notebook
  sends through the node (instance metadata, other hosts, other notebooks, the internet);
- ``HUBSWARM-NOTEBOOKS-IN``, jumped to first from ``INPUT``: what it sends to the node
  itself (SSH, swarm, NFS, Docker).

A notebook reaches the hub's API (8081), its node's DNS resolvers (and no other address on
port 53: no tunnel past the egress setting) and, unless ``HUBSWARM_NOTEBOOK_EGRESS`` says
otherwise, the internet; nothing private. Blocked connections are refused at once
("no route to host"), so a student's code fails fast instead of hanging. The node itself
is not fenced: hubswarm's own probes keep reading the instance metadata.

``hubswarm-fence.service`` applies the rules at boot before Docker starts, and Docker keeps
``DOCKER-USER``'s rules when it restarts.
"""

import shlex

from ..core import HubswarmError, facts, step
from ..core.services import ensure_service
from ..core.templates import file_text

SERVICE = "hubswarm-fence"
UNIT = f"/etc/systemd/system/{SERVICE}.service"
SCRIPT = "/usr/local/sbin/hubswarm-fence"
RULES = "/etc/hubswarm/notebook-fence.rules"
FORWARD_CHAIN, INPUT_CHAIN = "HUBSWARM-NOTEBOOKS", "HUBSWARM-NOTEBOOKS-IN"
BRIDGE = "docker0"
HUB_API_PORT = 8081
METADATA = "169.254.169.254/32"
# Private, shared and link-local IPv4 ranges: the VPC, the swarm, NFS, other notebooks.
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
INTERNET, NO_EGRESS = "internet", "none"
REFUSE = "-j REJECT --reject-with icmp-admin-prohibited"
ANSWERS = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
# New connections a notebook may open to the hub's API, per second (and in a burst): a running
# server needs a few a minute; one flooding the API must leave the class's logins and spawns be.
HUB_API_RATE, HUB_API_BURST = 20, 40


# Docker gives containers these when the node names no resolver but a loopback one.
DOCKER_DEFAULT_RESOLVERS = ("8.8.8.8", "8.8.4.4")


def parse_resolvers(answer):
    """The IPv4 resolvers notebooks on the default bridge use, as Docker picks them: the
    node's, loopback ones left out (Docker's defaults when none is left)."""
    found = []
    for word in answer.out.split():
        parts = word.split(".")
        if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts) and parts[0] != "127":
            found.append(word)
    return tuple(dict.fromkeys(found)) or DOCKER_DEFAULT_RESOLVERS


# The node's resolv.conf, or systemd-resolved's upstreams behind its stub (as Docker reads them).
RESOLVERS = facts.Fact(
    "resolvers",
    "f=/etc/resolv.conf; if grep -qs '^nameserver 127.0.0.53' $f && [ -f /run/systemd/resolve/resolv.conf ]; "
    "then f=/run/systemd/resolve/resolv.conf; fi; awk '$1 == \"nameserver\" {print $2}' $f",
    parse=parse_resolvers,
)


def dns_rules(chain, resolvers):
    """DNS to the node's ``resolvers`` only: port 53 elsewhere would carry anything past the egress setting."""
    protocols = ("udp", "tcp")
    allowed = [f"-A {chain} -d {r}/32 -p {p} -m {p} --dport 53 -j RETURN" for r in resolvers for p in protocols]
    return [*allowed, *(f"-A {chain} -p {p} -m {p} --dport 53 {REFUSE}" for p in protocols)]


def fence_rules(hub_address, egress, resolvers):
    """The two chains' rules, as ``iptables -S`` prints them (so the live chains compare as text).

    ``egress``: "internet" (every public address), "none", or IPv4 networks separated by
    commas (those only, private ones included: the operator named them).
    """
    fwd, inp = FORWARD_CHAIN, INPUT_CHAIN
    to_hub_api = f"-d {hub_address}/32 -p tcp -m tcp --dport {HUB_API_PORT}"
    hub_api = f"{to_hub_api} -j RETURN"

    def flood(chain, table):
        """Refuse a notebook's new connections to the hub's API past the rate, per notebook."""
        return (
            f"-A {chain} {to_hub_api} -m conntrack --ctstate NEW -m hashlimit --hashlimit-above {HUB_API_RATE}/sec "
            f"--hashlimit-burst {HUB_API_BURST} --hashlimit-mode srcip --hashlimit-name {table} {REFUSE}"
        )

    rules = [
        f"-A {fwd} {ANSWERS}",  # replies to the hub and to users reaching the notebook
        f"-A {fwd} -o {BRIDGE} {REFUSE}",  # another notebook on this node
        f"-A {fwd} -d {METADATA} {REFUSE}",  # the instance's credentials
        flood(fwd, "hubswarm-api"),
        f"-A {fwd} {hub_api}",
    ]
    if egress == NO_EGRESS:
        rules.append(f"-A {fwd} {REFUSE}")
    else:
        rules += dns_rules(fwd, resolvers)
        if egress != INTERNET:
            rules += [f"-A {fwd} -d {network} -j RETURN" for network in egress.split(",")]
        rules += [f"-A {fwd} -d {network} {REFUSE}" for network in PRIVATE]
        if egress != INTERNET:
            rules.append(f"-A {fwd} {REFUSE}")
    rules += [f"-A {inp} {ANSWERS}", flood(inp, "hubswarm-api-in"), f"-A {inp} {hub_api}", f"-A {inp} {REFUSE}"]
    return rules


def live_rules(rules):
    """What ``iptables -S`` shows when ``rules`` are in force: both chains and their jumps."""
    return [
        f"-N {FORWARD_CHAIN}",
        *(r for r in rules if r.startswith(f"-A {FORWARD_CHAIN} ")),
        f"-N {INPUT_CHAIN}",
        *(r for r in rules if r.startswith(f"-A {INPUT_CHAIN} ")),
        *JUMPS,
    ]


def restore_file(rules):
    """``rules`` for ``iptables-restore --noflush``: declaring a chain empties it first."""
    return "\n".join(["*filter", f":{FORWARD_CHAIN} - [0:0]", f":{INPUT_CHAIN} - [0:0]", *rules, "COMMIT", ""])


JUMPS = (f"-A DOCKER-USER -i {BRIDGE} -j {FORWARD_CHAIN}", f"-A INPUT -i {BRIDGE} -j {INPUT_CHAIN}")


def live_fence(answer):
    """Both chains and their jumps, in :func:`live_rules`' order, out of the filter table's rules."""
    shown = answer.out.splitlines()

    def chain(name):
        return [line for line in shown if line == f"-N {name}" or line.startswith(f"-A {name} ")]

    return [*chain(FORWARD_CHAIN), *chain(INPUT_CHAIN), *(jump for jump in JUMPS if jump in shown)]


# The whole table in one iptables run (each run reads the whole table anyway).
LIVE = facts.Fact("notebook-fence", "iptables -w -S", parse=live_fence)


def fence_probes(host):
    return [
        facts.addresses(),
        LIVE,
        RESOLVERS,
        BRIDGE_IPV6,
        facts.file_state(SCRIPT),
        facts.file_state(UNIT),
        facts.file_state(RULES),
        facts.dir_state("/etc/hubswarm"),
        facts.systemd_unit(SERVICE),
    ]


@step("hub-address", probes=lambda host: [facts.addresses()])
def hub_address(host):
    """The hub's private address: where notebooks reach its API."""
    return host.private_ip()


# IPv6 on Docker's default bridge: the fence (iptables, IPv4) would not hold notebooks' IPv6.
BRIDGE_IPV6 = facts.Fact(
    "bridge-ipv6", "docker network inspect bridge --format '{{.EnableIPv6}}'", parse=lambda a: a.ok and a.text == "true"
)


def fence_preflight(host, hub_ip=None):
    """A Docker that gives notebooks IPv6 stops the run before any change: the fence holds IPv4."""
    if host.fact(BRIDGE_IPV6):
        raise HubswarmError(
            f"Docker on {host.name} gives notebooks IPv6, which the notebook fence does not hold: "
            'set "ipv6": false in /etc/docker/daemon.json and restart Docker'
        )


@step("notebook-fence", probes=fence_probes, preflight=fence_preflight)
def notebook_fence(host, hub_ip=None):
    """Fence notebooks in on this node: no instance metadata, no private address but the hub's API
    (``hub_ip``: the hub's private address; None on the hub itself)."""
    rules = fence_rules(hub_ip or host.private_ip(), host.config.notebook_egress, host.fact(RESOLVERS))
    host.ensure_dir("/etc/hubswarm", mode="700")
    changed = host.ensure_file(SCRIPT, file_text("hubswarm-fence"), mode="755")
    changed |= host.ensure_file(RULES, restore_file(rules), mode="600")
    if host.ensure_file(UNIT, file_text("hubswarm-fence.service")):
        host.ensure("reload systemd", "systemctl daemon-reload")
    ensure_service(host, SERVICE, running=False)
    if changed or host.fact(LIVE) != live_rules(rules):
        host.ensure("apply the notebook fence", f"systemctl restart {shlex.quote(SERVICE)}")
