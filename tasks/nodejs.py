"""Node.js and configurable-http-proxy, the proxy JupyterHub puts in front of itself."""

import json
import re

from . import pins
from .core import HubswarmError, facts, step
from .packages import APT, DNF, ensure_packages, family_of

NODEJS_PACKAGES = {APT: ["nodejs", "npm"], DNF: ["nodejs", "nodejs-npm"]}

CHP = "configurable-http-proxy"


def nodejs_major(answer):
    """18 from ``v18.19.0``; None when Node.js is absent."""
    match = re.match(r"v?(\d+)\.", answer.text) if answer.ok else None
    return int(match.group(1)) if match else None


def chp_command(installed_version):
    """The npm command that pins configurable-http-proxy, or "" when it matches."""
    if installed_version.strip() == pins.CONFIGURABLE_HTTP_PROXY:
        return ""
    return f"npm install --global --no-fund --no-audit {CHP}@{pins.CONFIGURABLE_HTTP_PROXY}"


NODEJS_MAJOR = facts.Fact("nodejs-version", "node --version", parse=nodejs_major)
HAS_NPM = facts.Fact("npm-path", "command -v npm", parse=facts.succeeded)


def chp_version(answer):
    """The version in configurable-http-proxy's package.json; "" when it is not installed."""
    try:
        package = json.loads(answer.out) if answer.ok else {}
    except ValueError:
        return ""
    return package.get("version", "") if isinstance(package, dict) and package.get("name") == CHP else ""


# The package.json of the package the command links to (npm links bin/CHP): no Node.js started.
CHP_VERSION = facts.Fact(
    "chp-version",
    f'c=$(PATH=/usr/local/bin:$PATH; command -v {CHP}) && c=$(readlink -f "$c") && cat "${{c%/bin/*}}/package.json"',
    parse=chp_version,
)


def too_old(host, major):
    """The one-line error for a Node.js (``major``, None when absent) older than the proxy needs, or ""."""
    if major is None or major >= pins.NODEJS_MIN_MAJOR:
        return ""
    return (
        f"Node.js {major} on {host.name} is older than {pins.NODEJS_MIN_MAJOR}, which {CHP} "
        f"{pins.CONFIGURABLE_HTTP_PROXY} needs: install a Node.js LTS from your distribution's "
        "newer stream or NodeSource"
    )


def nodejs_preflight(host):
    """A Node.js already there that is too old stops the run before any change."""
    problem = too_old(host, host.fact(NODEJS_MAJOR))
    if problem:
        raise HubswarmError(problem)


@step("install-nodejs", probes=lambda host: [NODEJS_MAJOR, HAS_NPM, CHP_VERSION], preflight=nodejs_preflight)
def install_nodejs(host):
    """Install Node.js and npm (the distro's, when new enough) and the pinned configurable-http-proxy from npm."""
    major, has_npm, chp = host.facts(NODEJS_MAJOR, HAS_NPM, CHP_VERSION)
    has_nodejs = major is not None
    if chp == pins.CONFIGURABLE_HTTP_PROXY and has_nodejs:
        return
    # npm too: a killed run may have left Node.js without npm.
    if not (has_nodejs and has_npm):
        ensure_packages(host, NODEJS_PACKAGES)
    problem = too_old(host, host.fact(NODEJS_MAJOR))
    if problem:
        raise HubswarmError(f"{problem} (the {family_of(host)} package is too old)")
    host.ensure(f"install {CHP} {pins.CONFIGURABLE_HTTP_PROXY} from npm", chp_command(chp))
