"""Node.js and configurable-http-proxy, the proxy JupyterHub puts in front of itself."""

import base64
import json
import re
import shlex

from .. import pins
from ..core import HubswarmError, facts, step
from ..node.packages import APT, DNF, ensure_packages, family_of

# Debian's npm package brings some 370 node-* packages (35 s on a small host): there npm's own
# release, one self-contained download from the npm registry, installs the proxy instead.
NODEJS_PACKAGES = {APT: ["nodejs"], DNF: ["nodejs", "nodejs-npm"]}

CHP = "configurable-http-proxy"
NPM_HOME = "/opt/hubswarm-npm"
# Where npm puts global packages: /usr/local, as the distributions' npm does.
PINNED_NPM = f"node {NPM_HOME}/bin/npm-cli.js --prefix /usr/local"


def nodejs_major(answer):
    """18 from ``v18.19.0``; None when Node.js is absent."""
    match = re.match(r"v?(\d+)\.", answer.text) if answer.ok else None
    return int(match.group(1)) if match else None


def chp_command(installed_version, npm="npm"):
    """The npm command that pins configurable-http-proxy, or "" when it matches."""
    if installed_version.strip() == pins.CONFIGURABLE_HTTP_PROXY:
        return ""
    return f"{npm} install --global --no-fund --no-audit {CHP}@{pins.CONFIGURABLE_HTTP_PROXY}"


def pinned_npm_script():
    """Download the pinned npm, check it against its published sha512, put it in place whole."""
    algorithm, digest = pins.NPM_INTEGRITY.split("-", 1)
    url = f"https://registry.npmjs.org/npm/-/npm-{pins.NPM}.tgz"
    home = shlex.quote(NPM_HOME)
    return (
        "set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; "
        f'curl -fsSL --retry 3 -o "$d/npm.tgz" {shlex.quote(url)}; '
        f'echo "{base64.b64decode(digest).hex()}  $d/npm.tgz" | {algorithm}sum -c --quiet; '
        'mkdir "$d/npm"; tar -xzf "$d/npm.tgz" -C "$d/npm" --strip-components=1 --no-same-owner; '
        f'rm -rf {home}; mv "$d/npm" {home}'
    )


NODEJS_MAJOR = facts.Fact("nodejs-version", "node --version", parse=nodejs_major)
HAS_NPM = facts.Fact("npm-path", "command -v npm", parse=facts.succeeded)


def package_version(name):
    """A parser: the version in the package.json of npm package ``name``; "" when it is not there."""

    def version(answer):
        try:
            package = json.loads(answer.out) if answer.ok else {}
        except ValueError:
            return ""
        return package.get("version", "") if isinstance(package, dict) and package.get("name") == name else ""

    return version


chp_version = package_version(CHP)
PINNED_NPM_VERSION = facts.Fact("pinned-npm-version", f"cat {NPM_HOME}/package.json", parse=package_version("npm"))


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


@step(
    "install-nodejs",
    probes=lambda host: [NODEJS_MAJOR, HAS_NPM, PINNED_NPM_VERSION, CHP_VERSION],
    preflight=nodejs_preflight,
)
def install_nodejs(host):
    """Install Node.js (the distro's, when new enough) and the pinned configurable-http-proxy from npm."""
    major, has_npm, npm_version, chp = host.facts(NODEJS_MAJOR, HAS_NPM, PINNED_NPM_VERSION, CHP_VERSION)
    if chp == pins.CONFIGURABLE_HTTP_PROXY and major is not None:
        return
    if major is None or not has_npm:  # (a killed run may have left any of them out)
        ensure_packages(host, NODEJS_PACKAGES)
    problem = too_old(host, host.fact(NODEJS_MAJOR))
    if problem:
        raise HubswarmError(f"{problem} (the {family_of(host)} package is too old)")
    has_npm = host.fact(HAS_NPM)
    if not has_npm and npm_version != pins.NPM:
        host.ensure(f"install npm {pins.NPM} from the npm registry", pinned_npm_script())
    npm = "npm" if has_npm else PINNED_NPM
    host.ensure(f"install {CHP} {pins.CONFIGURABLE_HTTP_PROXY} from npm", chp_command(chp, npm))
