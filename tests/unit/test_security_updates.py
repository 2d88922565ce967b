"""security-updates on a fake host: probe answers in, the commands and files out, for
Debian 12, Ubuntu 24.04, Amazon Linux 2023 and Fedora 41; converged, turned off,
check mode."""

import hashlib
import re

import pytest

from fakehost import AMAZON_2023, DEBIAN_12, FEDORA_41, UBUNTU_2404, unit_info
from tasks.node import packages, updates

APT_CONFIG = "/etc/apt/apt.conf.d/52hubswarm-unattended-upgrades"
DNF_CONFIG = "/etc/dnf/automatic.conf"
BLACKLIST = """Unattended-Upgrade::Automatic-Reboot "false";
Unattended-Upgrade::Package-Blacklist {
    "containerd$";
    "containerd\\.io$";
    "docker$";
    "docker-ce$";
    "docker-ce-cli$";
    "docker\\.io$";
    "moby-engine$";
    "runc$";
};
"""
HOLD = """// Never a reboot: a new kernel waits for the reboot you choose. Never the Docker
// engine: upgrading it restarts dockerd, which stops every notebook on this node;
// upgrade it by hand, between lessons.
"""
APT_ON = (
    """// Written by hubswarm, from HUBSWARM_SECURITY_UPDATES=1.
// Security updates every day, from the origins 50unattended-upgrades allows (the
// distribution's security archive, and Debian's point releases).
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
"""
    + HOLD
    + BLACKLIST
)
APT_OFF = (
    """// Written by hubswarm, from HUBSWARM_SECURITY_UPDATES=0.
// No automatic upgrade on this node: you upgrade it yourself, between lessons.
APT::Periodic::Unattended-Upgrade "0";
"""
    + HOLD
    + BLACKLIST
)
DNF_ON = """# Written by hubswarm, from HUBSWARM_SECURITY_UPDATES=1 (0 stops the timer that reads it).
# Security updates every day, applied. Never a reboot: a new kernel waits for the
# reboot you choose. Never the Docker engine: upgrading it restarts dockerd, which
# stops every notebook on this node; upgrade it by hand, between lessons.
[commands]
upgrade_type = security
download_updates = yes
apply_updates = yes
reboot = never

[emitters]
emit_via = stdio

[base]
excludepkgs = containerd,containerd.io,docker,docker-ce,docker-ce-cli,docker.io,moby-engine,runc
"""
NEEDRESTART_TEXT = """# Written by hubswarm. After a library upgrade, never restart Docker or containerd:
# that stops every notebook on this node. `needrestart -r l` lists what waits for a
# restart; restart it between lessons.
$nrconf{override_rc}{qr(^docker)} = 0;
$nrconf{override_rc}{qr(^containerd)} = 0;
"""

ENABLED, DISABLED = unit_info("enabled", "active"), unit_info("disabled", "inactive")
APT_TIMERS = {"unit:apt-daily.timer": ENABLED, "unit:apt-daily-upgrade.timer": ENABLED}  # apt's own, on by default
# Which updater packages are installed: one probe, whatever the host.
PACKAGES = packages.installed_fact(updates.UPDATER_PACKAGES).key


def state(text):
    return f"{hashlib.sha256(text.encode()).hexdigest()} 644 root root"


def applied(host, runner):
    """(commands that are not file writes, {path: content written}), in order."""
    commands, written = [], {}
    for change, call in zip(host.record.changes, runner.calls, strict=True):
        if change.startswith("write "):
            written[change.split()[1]] = call.stdin
        else:
            commands.append(call.script)
    return commands, written


# --- from scratch -----------------------------------------------------------------------

FRESH = [
    pytest.param(
        {"os-release": DEBIAN_12, **APT_TIMERS},
        [packages.install_commands(packages.APT, {"unattended-upgrades"}, lists_fresh=False)],
        {APT_CONFIG: APT_ON},
        id="debian-12",
    ),
    pytest.param(
        {
            "os-release": UBUNTU_2404,
            PACKAGES: "unattended-upgrades",  # Ubuntu's images have it
            "needrestart": "",
            "unit:apt-daily.timer": ENABLED,
            "unit:apt-daily-upgrade.timer": DISABLED,
        },
        ["systemctl enable apt-daily-upgrade.timer && systemctl start apt-daily-upgrade.timer"],
        {updates.NEEDRESTART: NEEDRESTART_TEXT, APT_CONFIG: APT_ON},
        id="ubuntu-24.04",
    ),
    pytest.param(
        {"os-release": AMAZON_2023},
        [
            "dnf install -y -q dnf-automatic",
            "systemctl enable dnf-automatic.timer && systemctl start dnf-automatic.timer",
        ],
        {updates.RELEASEVER: "latest\n", DNF_CONFIG: DNF_ON},
        id="amazon-linux-2023",
    ),
    pytest.param(
        {"os-release": FEDORA_41, "dnf5": "/usr/bin/dnf5"},
        [
            "dnf install -y -q dnf5-plugin-automatic",
            "systemctl enable dnf5-automatic.timer && systemctl start dnf5-automatic.timer",
        ],
        {DNF_CONFIG: DNF_ON},
        id="fedora-41",
    ),
]


@pytest.mark.parametrize("answers, commands, written", FRESH)
def test_from_scratch(make_host, answers, commands, written):
    host, runner = make_host(answers)
    updates.security_updates(host)
    done, files = applied(host, runner)
    assert (done, list(files.items())) == (commands, list(written.items()))


@pytest.mark.parametrize("answers, commands, written", FRESH)
def test_check_mode_predicts_every_change_and_makes_none(make_host, answers, commands, written):
    host, runner = make_host(answers)
    updates.security_updates(host)
    changes = host.record.changes

    host, runner = make_host(answers, check=True)
    updates.security_updates(host)
    assert runner.calls == []
    assert host.record.changes == changes


@pytest.mark.parametrize("answers, commands, written", FRESH)
def test_a_second_run_changes_nothing_and_probes_twice(make_host, answers, commands, written):
    """The host as the first run left it: its package, the files it wrote, its timers on."""
    host, _ = make_host(answers)
    updater = updates.updater_of(host)
    done = {**answers, PACKAGES: updater.package}
    done.update({f"file:{path}": state(content) for path, content in written.items()})
    done.update({f"unit:{timer}": ENABLED for timer in updater.timers})
    if updates.RELEASEVER in written:
        done[f"content:{updates.RELEASEVER}"] = written[updates.RELEASEVER]

    host, runner = make_host(done)
    host.facts(*updates.updates_probes(host))  # as a run prefetches them
    updates.security_updates(host)
    assert runner.calls == [] and host.record.changes == []
    assert len(runner.probes) == 1  # what picks the updater and everything else, at once


# --- the choices it makes -----------------------------------------------------------------


def test_a_release_pinned_on_amazon_linux_stays(make_host, recap_out):
    pinned = "2023.6.20241212"
    host, runner = make_host({"os-release": AMAZON_2023, f"content:{updates.RELEASEVER}": pinned + "\n", PACKAGES: "x"})
    updates.security_updates(host)
    assert updates.RELEASEVER not in applied(host, runner)[1]
    assert f"{updates.RELEASEVER} pins release {pinned}: security updates come from that release only" in (
        recap_out.getvalue()
    )


def test_an_empty_releasever_is_no_release(make_host):
    host, runner = make_host({"os-release": AMAZON_2023, f"file:{updates.RELEASEVER}": "e3b0 644 root root"})
    updates.security_updates(host)
    assert applied(host, runner)[1][updates.RELEASEVER] == "latest\n"


@pytest.mark.parametrize(
    "name", ["containerd", "containerd.io", "docker", "docker-ce", "docker-ce-cli", "docker.io", "moby-engine", "runc"]
)
def test_every_engine_package_is_held(name):
    assert [p for p in updates.HELD_PATTERNS if re.match(p, name)]  # unattended-upgrades' own test
    assert name in updates.ENGINE_PACKAGES  # dnf's excludepkgs


@pytest.mark.parametrize(
    "name", ["docker-doc", "docker-compose", "docker-ce-rootless-extras", "containerd-shim", "runc-dev", "dockerx"]
)
def test_only_the_engine_is_held(name):
    assert not [p for p in updates.HELD_PATTERNS if re.match(p, name)]


# --- turned off ---------------------------------------------------------------------------

OFF_CASES = [
    pytest.param(
        {
            "os-release": DEBIAN_12,
            PACKAGES: "unattended-upgrades",
            f"file:{APT_CONFIG}": state(APT_ON),
            **APT_TIMERS,
        },
        [],
        {APT_CONFIG: APT_OFF},
        id="debian-on-then-off",
    ),
    pytest.param(
        # Ubuntu's own default (20auto-upgrades) is turned off too, by hubswarm's later file.
        {"os-release": UBUNTU_2404, PACKAGES: "unattended-upgrades", **APT_TIMERS},
        [],
        {APT_CONFIG: APT_OFF},
        id="ubuntu-default",
    ),
    pytest.param({"os-release": DEBIAN_12, **APT_TIMERS}, [], {}, id="debian-without-unattended-upgrades"),
    pytest.param(
        {
            "os-release": DEBIAN_12,
            PACKAGES: "unattended-upgrades",
            f"file:{APT_CONFIG}": state(APT_OFF),
            **APT_TIMERS,
        },
        [],
        {},
        id="debian-off-already",
    ),
    pytest.param(
        {"os-release": AMAZON_2023, "unit:dnf-automatic.timer": ENABLED, f"file:{DNF_CONFIG}": state(DNF_ON)},
        ["systemctl disable --now dnf-automatic.timer"],
        {},
        id="amazon-linux-on-then-off",
    ),
    pytest.param(
        {"os-release": FEDORA_41, "dnf5": "/usr/bin/dnf5", "unit:dnf5-automatic.timer": DISABLED},
        [],
        {},
        id="fedora-off",
    ),
]


@pytest.mark.parametrize("answers, commands, written", OFF_CASES)
def test_turned_off(make_host, answers, commands, written):
    host, runner = make_host(answers, security_updates=False)
    updates.security_updates(host)
    assert applied(host, runner) == (commands, written)


def test_turned_off_keeps_needrestart_away_from_docker(make_host):
    host, runner = make_host({"os-release": UBUNTU_2404, "needrestart": ""}, security_updates=False)
    updates.security_updates(host)
    assert applied(host, runner) == ([], {updates.NEEDRESTART: NEEDRESTART_TEXT})
