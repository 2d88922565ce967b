"""Node.js and configurable-http-proxy, the proxy JupyterHub puts in front of itself."""

import re

from . import pins
from .core import HubswarmError, facts, step
from .packages import APT, DNF, ensure_packages, family_of

NODE_PACKAGES = {APT: ["nodejs", "npm"], DNF: ["nodejs", "nodejs-npm"]}

CHP = "configurable-http-proxy"


def node_major(answer):
    """18 from ``v18.19.0``; None when node is absent."""
    match = re.match(r"v?(\d+)\.", answer.text) if answer.ok else None
    return int(match.group(1)) if match else None


def chp_command(installed_version):
    """The npm command that pins configurable-http-proxy, or "" when it matches."""
    if installed_version.strip() == pins.CONFIGURABLE_HTTP_PROXY:
        return ""
    return f"npm install --global --no-fund --no-audit {CHP}@{pins.CONFIGURABLE_HTTP_PROXY}"


NODE_MAJOR = facts.Fact("node-version", "node --version", parse=node_major)
HAS_NPM = facts.Fact("npm-path", "command -v npm", parse=facts.succeeded)
CHP_VERSION = facts.Fact("chp-version", f"PATH=/usr/local/bin:$PATH {CHP} --version")


def too_old(host, major):
    """The one-line error for a Node.js (``major``, None when absent) older than the proxy needs, or ""."""
    if major is None or major >= pins.NODE_MIN_MAJOR:
        return ""
    return (
        f"Node.js {major} on {host.name} is older than {pins.NODE_MIN_MAJOR}, which {CHP} "
        f"{pins.CONFIGURABLE_HTTP_PROXY} needs: install a Node.js LTS from your distribution's "
        "newer stream or NodeSource"
    )


def node_preflight(host):
    """A Node.js already there that is too old stops the run before any change."""
    problem = too_old(host, host.fact(NODE_MAJOR))
    if problem:
        raise HubswarmError(problem)


@step("install-node", probes=lambda host: [NODE_MAJOR, HAS_NPM, CHP_VERSION], preflight=node_preflight)
def install_node(host):
    """Install Node.js and npm (the distro's, when new enough) and the pinned configurable-http-proxy from npm."""
    answers = host.facts(NODE_MAJOR, HAS_NPM, CHP_VERSION)
    chp, has_node = answers[CHP_VERSION.key], answers[NODE_MAJOR.key] is not None
    if chp == pins.CONFIGURABLE_HTTP_PROXY and has_node:
        return
    # npm too: a killed run may have left node without it.
    if not (has_node and answers[HAS_NPM.key]):
        ensure_packages(host, NODE_PACKAGES)
    problem = too_old(host, host.fact(NODE_MAJOR))
    if problem:
        raise HubswarmError(f"{problem} (the {family_of(host)} package is too old)")
    host.ensure(f"install {CHP} {pins.CONFIGURABLE_HTTP_PROXY} from npm", chp_command(chp))
