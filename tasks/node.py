"""Node.js and configurable-http-proxy, the proxy JupyterHub puts in front of itself."""

import re

from . import pins
from .core import HubswarmError, facts, step
from .packages import APT, DNF, ensure_packages, family_of

NODE_PACKAGES = {APT: ["nodejs", "npm"], DNF: ["nodejs", "nodejs-npm"]}

CHP = "configurable-http-proxy"


def node_major(version_text):
    """18 from ``v18.19.0``; None when node is absent."""
    match = re.match(r"v?(\d+)\.", version_text.strip())
    return int(match.group(1)) if match else None


def chp_command(installed_version):
    """The npm command that pins configurable-http-proxy, or "" when it matches."""
    if installed_version.strip() == pins.CONFIGURABLE_HTTP_PROXY:
        return ""
    return f"npm install --global --no-fund --no-audit {CHP}@{pins.CONFIGURABLE_HTTP_PROXY}"


NODE_VERSION = facts.command_output("node-version", "node --version")
CHP_VERSION = facts.command_output("chp-version", f"PATH=/usr/local/bin:$PATH {CHP} --version")


@step("install-node", probes=lambda host: [NODE_VERSION, CHP_VERSION])
def install_node(host):
    """Install Node.js (the distro's, when new enough) and the pinned configurable-http-proxy from npm."""
    node_f, chp_f = NODE_VERSION, CHP_VERSION
    answers = host.facts(node_f, chp_f)
    if answers[chp_f.key].text == pins.CONFIGURABLE_HTTP_PROXY and answers[node_f.key].ok:
        return
    if not answers[node_f.key].ok:
        ensure_packages(host, NODE_PACKAGES)
    major = node_major(host.fact(node_f).out)
    if major is not None and major < pins.NODE_MIN_MAJOR:
        raise HubswarmError(
            f"Node.js {major} on {host.name} ({family_of(host)} package) is older than "
            f"{pins.NODE_MIN_MAJOR}, which {CHP} {pins.CONFIGURABLE_HTTP_PROXY} needs: "
            "install a Node.js LTS from your distribution's newer stream or NodeSource"
        )
    host.ensure(f"install {CHP} {pins.CONFIGURABLE_HTTP_PROXY} from npm", chp_command(answers[chp_f.key].text))
