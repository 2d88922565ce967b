"""System packages, with apt (Debian, Ubuntu) or dnf (Amazon Linux 2023, Fedora)."""

import shlex

from ..core import HubswarmError, facts, step

APT, DNF = "apt", "dnf"

# What each role needs, by the package names of each family.
HUB_PACKAGES = {
    APT: ["ca-certificates", "curl", "nginx", "openssl", "python3-venv", "rsync"],
    # Amazon Linux 2023 ships curl-minimal, which "curl" would conflict with.
    DNF: ["ca-certificates", "nginx", "openssl", "python3", "rsync"],
}
WORKER_PACKAGES = {
    APT: ["ca-certificates", "curl", "rsync"],
    DNF: ["ca-certificates", "rsync"],
}

APT_LISTS_FRESH = "find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 | head -n 1"


def os_family(release):
    """``apt`` or ``dnf`` from /etc/os-release's fields; error for other systems."""
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    if ids & {"debian", "ubuntu"}:
        return APT
    if release.get("ID") == "amzn" and release.get("VERSION_ID") == "2":
        raise HubswarmError(
            "Amazon Linux 2 has reached its end of life (no Python 3.10 or Node.js 18 in its packages): "
            "launch the hosts from Amazon Linux 2023, Debian 12 or Ubuntu 22.04 or newer"
        )
    if ids & {"fedora", "rhel", "centos", "amzn"}:
        return DNF
    raise HubswarmError(
        f"unsupported OS {release.get('PRETTY_NAME') or release.get('ID') or 'unknown'}: "
        "use Debian, Ubuntu, Amazon Linux 2023 or Fedora"
    )


def install_commands(family, missing, lists_fresh=True):
    """The commands that install ``missing`` packages, or "" when none are."""
    if not missing:
        return ""
    names = " ".join(shlex.quote(n) for n in sorted(missing))
    if family == APT:
        # Wait for another apt (unattended-upgrades, cloud-init) instead of failing,
        # and first finish what an interrupted dpkg left half-configured.
        wait = "-o DPkg::Lock::Timeout=600"
        update = "" if lists_fresh else f"apt-get {wait} update -q && "
        return (
            "export DEBIAN_FRONTEND=noninteractive; "
            "if dpkg --audit 2>/dev/null | grep -q .; then dpkg --configure -a; fi && "
            f"{update}"
            f"apt-get {wait} install -y -q --no-install-recommends {names}"
        )
    return f"{family} install -y -q {names}"


def family_of(host):
    return os_family(host.fact(facts.os_release()))


LISTS_FRESH = facts.Fact("apt-lists-fresh", APT_LISTS_FRESH, parse=lambda answer: bool(answer.text))


def installed_fact(names_by_family):
    """Which of the packages are installed, whatever the host's family: a step probes
    it in the same batch as os-release, which tells the family."""
    return facts.packages_installed(names_by_family.get(APT, ()), names_by_family.get(DNF, ()))


def package_probes(names_by_family):
    """``probes`` for a step that ensures these packages."""
    return lambda host: [facts.os_release(), installed_fact(names_by_family), LISTS_FRESH]


def ensure_packages(host, names_by_family, probed=None):
    """Install what is missing of the family's list; refresh the index only if needed.

    ``probed``: the names the step probed, when more than these (every choice the
    step makes once it knows the host, probed at once).
    """
    family = family_of(host)
    wanted = names_by_family[family]
    installed, lists_fresh = host.facts(installed_fact(probed or names_by_family), LISTS_FRESH)
    missing = set(wanted) - installed
    return host.ensure(f"install {', '.join(sorted(missing))}", install_commands(family, missing, lists_fresh))


@step("install-packages", probes=package_probes(HUB_PACKAGES))
def install_hub_packages(host):
    """Install the hub's system packages (nginx, openssl, python3 venv, curl) if missing."""
    ensure_packages(host, HUB_PACKAGES)


@step("install-packages", probes=package_probes(WORKER_PACKAGES))
def install_worker_packages(host):
    """Install a worker's system packages (curl, rsync, CA certificates) if missing."""
    ensure_packages(host, WORKER_PACKAGES)
