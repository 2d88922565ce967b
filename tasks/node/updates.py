"""Security updates that every node installs on its own: unattended-upgrades on
Debian and Ubuntu, dnf-automatic on Amazon Linux 2023 and Fedora, each set by a
file of hubswarm's own.

They never interrupt a lesson:

* no reboot: a new kernel waits for the reboot you choose;
* no upgrade of the Docker engine (Docker, containerd, runc, under every name the
  supported systems give them): upgrading one restarts dockerd or containerd, and
  so stops every notebook on the node; upgrade them by hand, between lessons;
* needrestart (Ubuntu), which restarts what a library upgrade left running on old
  code, never restarts docker or containerd.

HUBSWARM_SECURITY_UPDATES=0 turns automatic upgrades off: unattended-upgrades by
hubswarm's file (over the distribution's own default, which Debian's package and
Ubuntu's images turn on), dnf-automatic by stopping its timer. Docker stays held
and reboots off, should anyone turn them on again.
"""

from dataclasses import dataclass

from ..core import facts, render, step
from ..core.services import ensure_service, stop_service
from ..core.templates import file_text
from .docker import DOCKER_PACKAGES
from .packages import APT, DNF, ensure_packages, installed_fact, os_family, package_probes

# The Docker engine under every name the supported systems give it (docker.io and
# docker from the distributions, docker-ce from Docker's own repositories, Fedora's
# moby-engine), and what it runs on.
ENGINE_PACKAGES = sorted(
    {
        *DOCKER_PACKAGES[APT],
        *DOCKER_PACKAGES[DNF],
        "docker-ce",
        "docker-ce-cli",
        "moby-engine",
        "containerd",
        "containerd.io",
        "runc",
    }
)
# unattended-upgrades matches its blacklist as Python regular expressions from the
# start of the name: "containerd" alone would hold containerd-anything too.
HELD_PATTERNS = [name.replace(".", r"\.") + "$" for name in ENGINE_PACKAGES]

NEEDRESTART = "/etc/needrestart/conf.d/hubswarm.conf"
RELEASEVER = "/etc/dnf/vars/releasever"


@dataclass(frozen=True)
class Updater:
    """What installs a host's security updates on its own."""

    package: str
    config: str  # hubswarm's config file for it
    template: str  # that file's template in files/
    timers: tuple  # the systemd timers that run it
    # How it is turned off: unattended-upgrades by APT::Periodic in its config (the apt
    # timers are apt's own, and refresh the package lists too); dnf-automatic by its timer.
    off_in_config: bool = False


UNATTENDED_UPGRADES = Updater(
    "unattended-upgrades",
    # Read after 20auto-upgrades and the package's 50unattended-upgrades: their origins
    # stay, these settings win.
    "/etc/apt/apt.conf.d/52hubswarm-unattended-upgrades",
    "unattended-upgrades.conf.j2",
    ("apt-daily.timer", "apt-daily-upgrade.timer"),
    off_in_config=True,
)
# dnf4 reads /etc/dnf/automatic.conf alone; dnf5 (5.2.6 on) reads it last, over its defaults.
DNF_AUTOMATIC = Updater("dnf-automatic", "/etc/dnf/automatic.conf", "dnf-automatic.conf.j2", ("dnf-automatic.timer",))
DNF5_AUTOMATIC = Updater(
    "dnf5-plugin-automatic", "/etc/dnf/automatic.conf", "dnf-automatic.conf.j2", ("dnf5-automatic.timer",)
)

UPDATERS = (UNATTENDED_UPGRADES, DNF_AUTOMATIC, DNF5_AUTOMATIC)
# Every updater's package by family: probed at once, before the host's updater is known.
UPDATER_PACKAGES = {APT: [UNATTENDED_UPGRADES.package], DNF: [DNF_AUTOMATIC.package, DNF5_AUTOMATIC.package]}

DNF5 = facts.Fact("dnf5", "command -v dnf5", parse=facts.succeeded)
NEEDRESTART_INSTALLED = facts.Fact("needrestart", "test -d /etc/needrestart/conf.d", parse=facts.succeeded)


def updater_of(host):
    """The host's :class:`Updater`: unattended-upgrades (apt), else dnf5's automatic
    plugin where dnf5 is installed, else dnf-automatic."""
    release, has_dnf5 = host.facts(facts.os_release(), DNF5)
    if os_family(release) == APT:
        return UNATTENDED_UPGRADES
    return DNF5_AUTOMATIC if has_dnf5 else DNF_AUTOMATIC


def package_of(updater):
    """:func:`~tasks.node.packages.ensure_packages`'s argument for the updater's package."""
    return dict.fromkeys((APT, DNF), [updater.package])


def config_text(updater, enabled):
    """The updater's config, automatic upgrades on or off; Docker held either way."""
    return render(updater.template, enabled=enabled, patterns=HELD_PATTERNS, packages=ENGINE_PACKAGES)


def locked_release(host):
    """Whether dnf stays on the release the host was made from (Amazon Linux 2023's
    "deterministic upgrades"), where no new update ever appears."""
    return host.fact(facts.os_release()).get("ID") == "amzn"


def updates_probes(host):
    """What security-updates reads, in one batch with what picks the updater (os-release,
    dnf5): every updater's files and timers, a few cheap probes more than a host needs."""
    return [
        facts.os_release(),
        DNF5,
        *package_probes(UPDATER_PACKAGES)(host),
        *(facts.file_state(config) for config in dict.fromkeys(u.config for u in UPDATERS)),
        NEEDRESTART_INSTALLED,
        facts.file_state(NEEDRESTART),
        facts.file_content(RELEASEVER),
        facts.file_state(RELEASEVER),
        *(facts.systemd_unit(timer) for timer in dict.fromkeys(t for u in UPDATERS for t in u.timers)),
    ]


@step("security-updates", probes=updates_probes)
def security_updates(host):
    """Have each node install its security updates on its own, daily (unattended-upgrades or dnf-automatic): never a reboot, never a Docker upgrade; HUBSWARM_SECURITY_UPDATES=0 turns them off."""
    updater = updater_of(host)
    if host.fact(NEEDRESTART_INSTALLED):
        host.ensure_file(NEEDRESTART, file_text("needrestart-hubswarm.conf"))
    if not host.config.security_updates:
        turn_off(host, updater)
        return
    if locked_release(host):
        follow_latest_release(host)
    ensure_packages(host, package_of(updater), probed=UPDATER_PACKAGES)
    host.ensure_file(updater.config, config_text(updater, enabled=True))
    for timer in updater.timers:
        ensure_service(host, timer)


def follow_latest_release(host):
    """Point dnf at the latest Amazon Linux release, so that security updates reach the
    node at all; a release someone pinned in /etc/dnf/vars/releasever stays."""
    pinned = host.fact(facts.file_content(RELEASEVER)).strip()
    if not pinned:
        host.ensure_file(RELEASEVER, "latest\n")
    elif pinned != "latest":
        host.note(f"{RELEASEVER} pins release {pinned}: security updates come from that release only")


def turn_off(host, updater):
    """No automatic upgrade any more: unattended-upgrades (when installed) off in
    hubswarm's file, which also wins over the distribution's default; dnf-automatic's
    timer stopped. Amazon Linux keeps following the latest release: going back would
    lock dnf to a release older than what is installed."""
    if not updater.off_in_config:
        for timer in updater.timers:
            stop_service(host, timer)
    elif updater.package in host.fact(installed_fact(UPDATER_PACKAGES)):
        host.ensure_file(updater.config, config_text(updater, enabled=False))
