"""System packages, with apt (Debian, Ubuntu), dnf (Amazon Linux 2023, Fedora) or yum (Amazon Linux 2)."""

import shlex

from .core import HubswarmError, facts, step

APT, DNF, YUM = "apt", "dnf", "yum"

# What each role needs, by the package names of each family.
HUB_PACKAGES = {
    APT: ["ca-certificates", "curl", "nginx", "openssl", "python3-venv", "rsync"],
    # Amazon Linux 2023 ships curl-minimal, which "curl" would conflict with.
    DNF: ["ca-certificates", "nginx", "openssl", "python3", "rsync"],
    YUM: ["ca-certificates", "curl", "nginx", "openssl", "python3", "rsync"],
}
WORKER_PACKAGES = {
    APT: ["ca-certificates", "curl", "rsync"],
    DNF: ["ca-certificates", "rsync"],
    YUM: ["ca-certificates", "curl", "rsync"],
}

APT_LISTS_FRESH = (
    "find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 | head -n 1"
)


def parse_os_release(text):
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


def os_family(os_release_text):
    """``apt``, ``dnf`` or ``yum`` from /etc/os-release; error for other systems."""
    release = parse_os_release(os_release_text)
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    if ids & {"debian", "ubuntu"}:
        return APT
    if release.get("ID") == "amzn" and release.get("VERSION_ID") == "2":
        return YUM
    if ids & {"fedora", "rhel", "centos", "amzn"}:
        return DNF
    raise HubswarmError(
        f"unsupported OS {release.get('PRETTY_NAME') or release.get('ID') or 'unknown'}: "
        "use Debian, Ubuntu, Amazon Linux 2/2023 or Fedora"
    )


def install_commands(family, missing, lists_fresh=True):
    """The commands that install ``missing`` packages, or "" when none are."""
    if not missing:
        return ""
    names = " ".join(shlex.quote(n) for n in sorted(missing))
    if family == APT:
        update = "" if lists_fresh else "apt-get update -q && "
        return (
            f"export DEBIAN_FRONTEND=noninteractive; {update}"
            f"apt-get install -y -q --no-install-recommends {names}"
        )
    return f"{family} install -y -q {names}"


def family_of(host):
    return os_family(host.fact(facts.os_release()).out)


LISTS_FRESH = facts.command_output("apt-lists-fresh", APT_LISTS_FRESH)


def package_probes(names_by_family):
    """``probes`` for a step that ensures these packages."""
    return lambda host: [facts.packages_installed(names_by_family[family_of(host)]), LISTS_FRESH]


def ensure_packages(host, names_by_family):
    """Install what is missing of the family's list; refresh the index only if needed."""
    family = family_of(host)
    wanted = names_by_family[family]
    installed_f = facts.packages_installed(wanted)
    answers = host.facts(installed_f, LISTS_FRESH)
    missing = set(wanted) - set(answers[installed_f.key].out.split())
    lists_fresh = bool(answers[LISTS_FRESH.key].text)
    return host.ensure(
        f"install {', '.join(sorted(missing))}", install_commands(family, missing, lists_fresh)
    )


@step("install-packages", probes=package_probes(HUB_PACKAGES))
def install_hub_packages(host):
    """Install the hub's system packages (nginx, openssl, python3 venv, curl) if missing."""
    ensure_packages(host, HUB_PACKAGES)


@step("install-packages", probes=package_probes(WORKER_PACKAGES))
def install_worker_packages(host):
    """Install a worker's system packages (curl, rsync, CA certificates) if missing."""
    ensure_packages(host, WORKER_PACKAGES)
