"""The notebook fence: its rules (a table per egress setting) and its step (probe output in,
commands out)."""

import hashlib

import pytest

from fakehost import unit_info
from tasks.core import HubswarmError
from tasks.core.facts import Answer
from tasks.core.templates import file_text
from tasks.node import fence

HUB = "10.0.0.5"
FWD, INP = "-A HUBSWARM-NOTEBOOKS", "-A HUBSWARM-NOTEBOOKS-IN"
REFUSE = "-j REJECT --reject-with icmp-admin-prohibited"
FIRST = [
    f"{FWD} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
    f"{FWD} -o docker0 {REFUSE}",
    f"{FWD} -d 169.254.169.254/32 {REFUSE}",
    # a notebook flooding the hub's API is refused past 20 new connections a second (40 at once)
    f"{FWD} -d {HUB}/32 -p tcp -m tcp --dport 8081 -m conntrack --ctstate NEW -m hashlimit --hashlimit-above 20/sec"
    f" --hashlimit-burst 40 --hashlimit-mode srcip --hashlimit-name hubswarm-api {REFUSE}",
    f"{FWD} -d {HUB}/32 -p tcp -m tcp --dport 8081 -j RETURN",
]
RESOLVERS = ("10.0.0.2",)  # the VPC's resolver
DNS = [
    f"{FWD} -d 10.0.0.2/32 -p udp -m udp --dport 53 -j RETURN",
    f"{FWD} -d 10.0.0.2/32 -p tcp -m tcp --dport 53 -j RETURN",
    f"{FWD} -p udp -m udp --dport 53 {REFUSE}",  # DNS elsewhere: a tunnel past the egress setting
    f"{FWD} -p tcp -m tcp --dport 53 {REFUSE}",
]
PRIVATE = [
    f"{FWD} -d {n} {REFUSE}"
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
]
INPUT = [
    f"{INP} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
    f"{INP} -d {HUB}/32 -p tcp -m tcp --dport 8081 -m conntrack --ctstate NEW -m hashlimit --hashlimit-above 20/sec"
    f" --hashlimit-burst 40 --hashlimit-mode srcip --hashlimit-name hubswarm-api-in {REFUSE}",
    f"{INP} -d {HUB}/32 -p tcp -m tcp --dport 8081 -j RETURN",
    f"{INP} {REFUSE}",
]


@pytest.mark.parametrize(
    "egress, forwarded",
    [
        ("internet", [*FIRST, *DNS, *PRIVATE]),
        ("none", [*FIRST, f"{FWD} {REFUSE}"]),
        (
            "198.51.100.0/24,10.1.2.3/32",
            [
                *FIRST,
                *DNS,
                f"{FWD} -d 198.51.100.0/24 -j RETURN",
                f"{FWD} -d 10.1.2.3/32 -j RETURN",  # named, so reachable though private
                *PRIVATE,
                f"{FWD} {REFUSE}",
            ],
        ),
    ],
)
def test_fence_rules(egress, forwarded):
    assert fence.fence_rules(HUB, egress, RESOLVERS) == [*forwarded, *INPUT]


def test_the_live_fence_is_read_out_of_the_whole_table():
    """As ``iptables -S`` prints the filter table: chains declared first, then every chain's
    rules, Docker's among them."""
    rules = fence.fence_rules(HUB, "internet", RESOLVERS)
    fwd = [r for r in rules if r.startswith(f"{FWD} ")]
    inp = [r for r in rules if r.startswith(f"{INP} ")]
    table = [
        "-P INPUT ACCEPT",
        "-P FORWARD DROP",
        "-N DOCKER-USER",
        "-N HUBSWARM-NOTEBOOKS",
        "-N HUBSWARM-NOTEBOOKS-IN",
        "-A INPUT -i docker0 -j HUBSWARM-NOTEBOOKS-IN",
        "-A FORWARD -j DOCKER-USER",
        "-A DOCKER-USER -i docker0 -j HUBSWARM-NOTEBOOKS",
        "-A DOCKER-USER -j RETURN",
        *fwd,
        *inp,
    ]
    answer = Answer(0, "\n".join(table) + "\n")
    assert fence.live_fence(answer) == fence.live_rules(rules)
    without_jump = Answer(
        0, "\n".join(line for line in table if line != "-A INPUT -i docker0 -j HUBSWARM-NOTEBOOKS-IN")
    )
    assert fence.live_fence(without_jump) == fence.live_rules(rules)[:-1]
    assert fence.live_fence(Answer(4, "")) == []  # no iptables


def test_the_restore_file_empties_both_chains_first():
    rules = fence.fence_rules(HUB, "internet", RESOLVERS)
    text = fence.restore_file(rules)
    assert text.splitlines()[:3] == ["*filter", ":HUBSWARM-NOTEBOOKS - [0:0]", ":HUBSWARM-NOTEBOOKS-IN - [0:0]"]
    assert text.endswith("COMMIT\n") and all(rule in text.splitlines() for rule in rules)


def state(text, mode="644"):
    return f"{hashlib.sha256(text.encode()).hexdigest()} {mode} root root"


def converged(egress="internet"):
    rules = fence.fence_rules(HUB, egress, RESOLVERS)
    return {
        "addresses": HUB,
        "resolvers": "10.0.0.2\n",
        "notebook-fence": "\n".join(fence.live_rules(rules)),
        f"file:{fence.SCRIPT}": state(file_text("hubswarm-fence"), "755"),
        f"file:{fence.UNIT}": state(file_text("hubswarm-fence.service")),
        f"file:{fence.RULES}": state(fence.restore_file(rules), "600"),
        "dir:/etc/hubswarm": "700 root root",
        f"unit:{fence.SERVICE}": unit_info("enabled", "active"),
    }


RESTART = "systemctl restart hubswarm-fence"


def test_a_fenced_node_is_left_alone(make_host):
    host, runner = make_host(converged())
    fence.notebook_fence(host)
    assert runner.commands == [] and host.record.changes == []


def test_a_pristine_node_gets_the_fence(make_host):
    host, runner = make_host({"addresses": HUB, "resolvers": "10.0.0.2\n"})
    fence.notebook_fence(host)
    assert host.record.changes == [
        "make directory /etc/hubswarm (700 root:root)",
        f"write {fence.SCRIPT} (755 root:root)",
        f"write {fence.RULES} (600 root:root)",
        f"write {fence.UNIT} (644 root:root)",
        "reload systemd",
        "enable and start hubswarm-fence",
        "apply the notebook fence",
    ]
    assert runner.commands[-2:] == ["systemctl enable hubswarm-fence", RESTART]
    assert fence.restore_file(fence.fence_rules(HUB, "internet", RESOLVERS)) in [c.stdin for c in runner.calls]


def test_rules_lost_on_the_node_are_applied_again(make_host):
    answers = converged()
    answers["notebook-fence"] = answers["notebook-fence"].replace("-A INPUT -i docker0 -j HUBSWARM-NOTEBOOKS-IN", "")
    host, runner = make_host(answers)
    fence.notebook_fence(host)
    assert runner.commands == [RESTART]


def test_a_new_egress_setting_rewrites_the_rules_and_applies_them(make_host):
    host, runner = make_host(converged(), notebook_egress="none")
    fence.notebook_fence(host)
    assert host.record.changes == [f"write {fence.RULES} (600 root:root)", "apply the notebook fence"]
    assert runner.commands[-1] == RESTART


def test_a_worker_fences_for_the_hubs_address(make_host):
    host, runner = make_host({"addresses": "10.0.0.6", "resolvers": "10.0.0.2\n"}, address="10.0.0.6")
    fence.notebook_fence(host, HUB)
    assert fence.restore_file(fence.fence_rules(HUB, "internet", RESOLVERS)) in [c.stdin for c in runner.calls]


def test_check_mode_predicts_the_fence_and_changes_nothing(make_host):
    host, runner = make_host({"addresses": HUB}, check=True)
    fence.notebook_fence(host)
    assert runner.calls == [] and "apply the notebook fence" in host.record.changes


@pytest.mark.parametrize(
    "nameservers, resolvers",
    [
        ("10.0.0.2\n", ("10.0.0.2",)),
        ("10.0.0.2\nfe80::1\n10.0.0.2\n169.254.169.253\n", ("10.0.0.2", "169.254.169.253")),  # IPv4 ones, once
        ("127.0.0.11\n", fence.DOCKER_DEFAULT_RESOLVERS),  # only a loopback one: Docker gives its own
        ("", fence.DOCKER_DEFAULT_RESOLVERS),
    ],
)
def test_notebooks_resolve_names_where_docker_sends_them(nameservers, resolvers):
    assert fence.parse_resolvers(Answer(0, nameservers)) == resolvers


def test_a_docker_giving_notebooks_ipv6_is_refused_before_any_change(make_host):
    """The fence is iptables (IPv4): notebooks with IPv6 would pass it."""
    host, runner = make_host({**converged(), "bridge-ipv6": "true\n"})
    with pytest.raises(HubswarmError, match='^Docker on 10.0.0.5 gives notebooks IPv6, .*"ipv6": false'):
        fence.notebook_fence.check_first(host)
    fence.notebook_fence.check_first(make_host(converged())[0])  # Docker's default: no IPv6
    assert runner.calls == []
