"""The hub's virtualenv with pinned JupyterHub, OAuthenticator, DockerSpawner and the idle culler."""

import io
import re
import shlex
from functools import partial
from pathlib import Path

from .. import pins
from ..core import HubswarmError, facts, step
from ..core.archives import folder_archive
from ..node.packages import DNF, ensure_packages, family_of, package_probes

PYTHON_MIN = (3, 10)
# Amazon Linux 2023's python3 is 3.9; its newer Pythons are packages of their own.
DNF_PYTHON = "python3.11"
DNF_PYTHON_PACKAGES = [DNF_PYTHON, f"{DNF_PYTHON}-pip"]
CANDIDATES = ("python3", "python3.13", "python3.12", "python3.11", "python3.10")


def parse_pythons(answer):
    """{interpreter: (major, minor)} from the PYTHONS answer."""
    found = {}
    for line in answer.out.splitlines():
        words = line.split()
        # Only the names asked for: the answer names the command the venv is made with.
        if len(words) == 3 and words[0] in CANDIDATES and words[1].isdigit() and words[2].isdigit():
            found[words[0]] = (int(words[1]), int(words[2]))
    return found


# Shell: sets v to MAJOR.MINOR of the interpreter at "$py" (a resolved path) without
# starting it where its name tells (python3.11), else by asking it.
PYTHON_VERSION = (
    "case ${py##*/} in python3.[0-9] | python3.[0-9][0-9]) v=${py##*/python} ;; "
    '*) v=$("$py" -c \'import sys; print("%d.%d" % sys.version_info[:2])\') ;; esac'
)

PYTHONS = facts.Fact(
    "pythons",
    f'for p in {" ".join(CANDIDATES)}; do if py=$(command -v "$p") && py=$(readlink -f "$py") && '
    f'{PYTHON_VERSION}; then echo "$p ${{v/./ }}"; fi; done',
    parse=parse_pythons,
)


def choose_python(found, family, host_name):
    """(interpreter, packages it needs) for the venv, from ``found`` (:data:`PYTHONS`):
    python3 when new enough, else the newest python3.X that is, else on dnf the
    distro's python3.11; else an error."""
    good = {name: version for name, version in found.items() if version >= PYTHON_MIN}
    if "python3" in good or ("python3" not in found and family != DNF):
        return "python3", []  # (apt: install-packages brings python3 with python3-venv)
    if good:
        return max(good, key=good.get), []
    if family == DNF:
        return DNF_PYTHON, DNF_PYTHON_PACKAGES
    major, minor = found["python3"]
    raise HubswarmError(
        f"Python {major}.{minor} on {host_name} is older than {PYTHON_MIN[0]}.{PYTHON_MIN[1]}, "
        f"which JupyterHub {pins.JUPYTERHUB} needs: use Debian 12, Ubuntu 22.04 or newer"
    )


def command_word(word):
    """``shlex.quote`` for the word that starts a command: there bash takes an unquoted
    ``NAME=value`` for a variable assignment, so such a word is quoted too."""
    q = shlex.quote(word)
    return f"'{word}'" if q == word and "=" in word else q


def host_python(host):
    return choose_python(host.fact(PYTHONS), family_of(host), host.name)


def venv_site(venv):
    """Shell: sets ``site`` to the venv's site-packages, found without starting Python:
    by its interpreter resolved (a venv links to a base interpreter an OS upgrade may
    remove or replace), which must still be there."""
    return (
        f'py=$(readlink -f {shlex.quote(venv)}/bin/python) && test -x "$py" && {PYTHON_VERSION} && '
        f"site={shlex.quote(venv)}/lib/python$v/site-packages"
    )


def installed_versions(answer, pinned=pins.HUB_REQUIREMENTS):
    """{distribution of ``pinned``: version} from the venv's dist-info folders (named
    ``name-version.dist-info``, names normalized as pip does); None when there is no
    venv or its interpreter is gone."""
    if not answer.ok:
        return None
    found = {}
    for path in answer.out.splitlines():
        name, _, version = path.rpartition("/")[2].removesuffix(".dist-info").rpartition("-")
        name = re.sub(r"[-_.]+", "-", name).lower()
        if name in pinned:
            found[name] = version
    return found


def installed_fact(venv, pinned=pins.HUB_REQUIREMENTS):
    """The pinned distributions the venv holds (:func:`installed_versions`)."""
    return facts.Fact(
        f"venv:{venv}",
        f'{venv_site(venv)} && test -d "$site" && printf \'%s\\n\' "$site"/*.dist-info',
        parse=partial(installed_versions, pinned=pinned),
    )


def venv_commands(venv, installed, python="python3", pinned=pins.HUB_REQUIREMENTS):
    """Commands that make the venv hold ``pinned`` ({distribution: version}), or "" when it does
    (``installed``: :func:`installed_versions`)."""
    if installed == pinned:
        return ""
    requirements = " ".join(shlex.quote(f"{n}=={v}") for n, v in sorted(pinned.items()))
    q, bin_dir = shlex.quote(venv), command_word(venv) + "/bin"
    # (Re)creating is harmless and completes a venv an interrupted run left without pip. pip
    # puts the pinned uv in the venv, and uv the requirements. Both trust the system's CA store
    # too (TLS-inspecting proxies, private mirrors).
    return (
        "for b in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do "
        '[ -f "$b" ] && export PIP_CERT="$b" && break; done; '
        f"{command_word(python)} -m venv {q} && "
        f"{bin_dir}/python -m pip install -q --disable-pip-version-check uv=={pins.UV} && "
        f"{bin_dir}/uv pip install -q --system-certs --python {q}/bin/python {requirements}"
    )


# The hub-side code (tasks/hubswarm_hub), installed as a package into the hub's venv.
HUB_PACKAGE = Path(__file__).resolve().parents[1] / "hubswarm_hub"
PACKAGE_NAME = HUB_PACKAGE.name


def package_archive():
    """(manifest, tar bytes) of the package's modules."""
    return folder_archive({p.name: p for p in sorted(HUB_PACKAGE.glob("*.py"))})


def installed_package(answer):
    """(the venv's site-packages folder or "", the installed package's manifest)."""
    site, _, manifest = answer.out.partition("\n")
    return site.strip(), manifest


def version_command(venv):
    """Prints the JupyterHub version in the venv, from its package (``jupyterhub --version``
    imports the whole hub first: seconds of CPU)."""
    return f'{command_word(venv)}/bin/python -c "import jupyterhub; print(jupyterhub.__version__)"'


def version_fact(venv):
    """The JupyterHub version in the venv; "" when there is none."""
    return facts.Fact(f"jupyterhub-version:{venv}", version_command(venv))


def package_fact(venv):
    """The venv's site-packages folder, then the installed package's manifest."""
    return facts.Fact(
        f"hub-package:{venv}",
        f'{venv_site(venv)} && echo "$site" && cd "$site/{PACKAGE_NAME}" && export LC_ALL=C && sha256sum -- *.py',
        parse=installed_package,
    )


def package_script(site):
    """Unpack the package (a tar on stdin) beside the installed one, then swap them."""
    d = shlex.quote(f"{site}/{PACKAGE_NAME}")
    return (
        f"rm -rf {d}.new {d}.old && mkdir {d}.new && tar -x --no-same-owner -C {d}.new && "
        f"chmod 755 {d}.new && chmod 644 {d}.new/*.py && "
        f"if [ -e {d} ]; then mv {d} {d}.old; fi && mv {d}.new {d} && rm -rf {d}.old"
    )


def ensure_package(host):
    """Install the hub-side package into the venv when missing or different."""
    venv = host.config.venv
    site, installed = host.fact(package_fact(venv))
    manifest, tar = package_archive()
    if site and installed == manifest:
        return False
    if not site and not host.check:
        raise HubswarmError(f"no virtualenv at {venv} on {host.name}: run pip-install first")
    host.written.add(package_glob(host.config))
    return host.ensure(
        f"install the {PACKAGE_NAME} package into {venv}",
        package_script(site) if site else ":",  # (check mode, before pip-install made the venv)
        stdin=lambda: io.BytesIO(tar),
    )


def package_glob(config):
    """The installed package's modules, for the hub's restart fingerprint (any Python of the venv)."""
    return f"{shlex.quote(config.venv)}/lib/python3*/site-packages/{PACKAGE_NAME}/*.py"


def pip_probes(host):
    # Whether the dnf Python is installed, asked of dnf hosts only, in the batch that tells the family.
    return [
        installed_fact(host.config.venv),
        PYTHONS,
        package_fact(host.config.venv),
        *package_probes({DNF: DNF_PYTHON_PACKAGES})(host),
    ]


@step("pip-install", probes=pip_probes, preflight=host_python)
def pip_install(host):
    """Create the hub virtualenv (Python 3.10 or newer) with the pinned jupyterhub, oauthenticator, dockerspawner, idle culler, and hubswarm's hub-side package."""
    venv = host.config.venv
    python, needed = host_python(host)
    command = venv_commands(venv, host.fact(installed_fact(venv)), python)
    if command and needed:
        ensure_packages(host, {family_of(host): needed})
    host.ensure(
        f"install virtualenv {venv} with " + ", ".join(f"{n} {v}" for n, v in sorted(pins.HUB_REQUIREMENTS.items())),
        command,
    )
    ensure_package(host)
