"""Helpers for the unit tests: a fake host that answers probes from canned facts.

"Probe output in, commands out": a ``make_host`` host (conftest.py) is a real
:class:`tasks.core.host.Host` whose ``_exec`` answers the batched probe scripts
from a dict of canned fact answers (framed with ``facts.MARKER`` exactly as
bash would frame them) and records every other command it is asked to run.
Nothing here touches the network, SSH or Docker; ``run_fab`` runs the real
``fab`` in a subprocess, with no lab, AWS endpoint or settings.
"""

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tasks import settings  # noqa: E402
from tasks.core import facts as F  # noqa: E402
from tasks.core.host import CHANGE_LOCK  # noqa: E402

DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
"""
UBUNTU_2404 = """PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
ID=ubuntu
ID_LIKE=debian
"""
AMAZON_2023 = """NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PRETTY_NAME="Amazon Linux 2023.6.20241212"
"""
AMAZON_2 = """NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
"""
FEDORA_41 = """NAME="Fedora Linux"
VERSION="41 (Server Edition)"
ID=fedora
VERSION_ID=41
PRETTY_NAME="Fedora Linux 41 (Server Edition)"
"""
ALPINE = """NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
"""

# What a batch looks like on the wire, for the tests of the batching itself and of its quoting.
_KEY = re.compile(r"printf '\\n" + re.escape(F.MARKER) + r" %s %d\\n' (.+) \$\?$")


def probe_keys(script):
    """The fact keys a :func:`facts.batch_script` asks for, in the facts' order."""
    found = []
    lines = script.splitlines()
    for line, after in zip(lines, lines[1:], strict=False):
        match = _KEY.search(line)
        if match:
            index = int(re.fullmatch(r'\} >"\$d/(\d+)"', after).group(1))
            found.append((index, shlex.split(match.group(1))[0]))
    return [key for _, key in sorted(found)]


def frame(answers):
    """What bash prints for a batch: each output, a newline, the marker line."""
    return "".join(f"{out}\n{F.MARKER} {key} {rc}\n" for key, (rc, out) in answers)


def normalize(answer):
    """A canned answer: ``"text"`` (exit 0), ``(rc, "text")`` or ``None`` (exit 1, empty)."""
    if answer is None:
        return 1, ""
    if isinstance(answer, tuple):
        return answer
    return 0, answer


@dataclass
class Call:
    script: str
    stdin: object
    command: str


@dataclass
class FakeRunner:
    """Stands in for ``Host._probe`` (canned answers) and ``Host._exec`` (records changes, stdin as text)."""

    answers: dict
    calls: list = field(default_factory=list)
    probes: list = field(default_factory=list)  # one list of keys per probe command
    # substring of a change script -> fact answers that hold after it ran
    after: dict = field(default_factory=dict)
    # substring of a change script -> (exit code, stderr) it fails with
    fail_on: dict = field(default_factory=dict)
    # substring of a change script -> what it prints
    prints: dict = field(default_factory=dict)

    def probe(self, facts):
        """Stands in for ``Host._probe``: each fact's canned answer (how a batch runs them
        together is tested in real bash, in test_facts_batch.py)."""
        self.probes.append([f.key for f in facts])
        return {f.key: F.Answer(*normalize(self.answers.get(f.key))) for f in facts}

    def __call__(self, command, stdin=None, binary=False):
        stdin = stdin.read().decode(errors="replace") if stdin is not None else None
        argv = shlex.split(command)
        assert argv[:4] == ["sudo", "-n", "bash", "-c"] and len(argv) == 5, command
        script = argv[4]
        # Changes hold the host's change lock; the tables list the change itself.
        script = script.removeprefix(CHANGE_LOCK)
        self.calls.append(Call(script, stdin, command))
        for needle, (rc, err) in self.fail_on.items():
            if needle in script:
                return rc, "", err
        for needle, updates in self.after.items():
            if needle in script:
                self.answers.update(updates)
        return 0, next((out for needle, out in self.prints.items() if needle in script), ""), ""

    @property
    def commands(self):
        """The change scripts run, in order."""
        return [c.script for c in self.calls]

    @property
    def probed(self):
        return [k for keys in self.probes for k in keys]


class Section(dict):
    """A config section read like invoke's DataProxy: ``s.key`` or ``s["key"]``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def hub_config(**overrides):
    """The ``hubswarm`` config section a step reads: fabfile's defaults (empty
    environment) with a domain and an EFS set, and ``overrides``."""
    values = {
        key: Section(value) if isinstance(value, dict) else value
        for key, value in settings.defaults({})["hubswarm"].items()
    }
    values.update(domain="hub.example.com", efs="fs-1.efs.us-west-2.amazonaws.com", notebooks="notebooks")
    values["ssh"] = Section(values["ssh"], known_hosts=None)
    values.update(overrides)
    return Section(values)


def invocation(run, *named):
    """A task's context, as the executor hands it, in a ``fab`` invocation that
    already has ``run``, with ``-H`` naming ``named`` (none: hosts found by their tags)."""
    import fabric
    import invoke

    from tasks.cli.invocation import RUN_ATTRIBUTE

    config = fabric.Config()
    object.__setattr__(config, RUN_ATTRIBUTE, run)
    run.named = named
    return invoke.Context(config=config)


def run_fab(*args, **env):
    """``fab ARGS`` in the project, as a user runs it: no lab, no AWS, no settings but the hub's
    DNS name and ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSWARM_", "AWS_", "OAUTH_"))}
    return subprocess.run(
        [sys.executable, "-m", "fabric", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **base,
            "HUBSWARM_LAB": "0",
            "HUBSWARM_DOMAIN": "hub.example.com",
            "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:9",
            "AWS_ENDPOINT_URL_ROUTE_53": "http://127.0.0.1:9",
            "AWS_ENDPOINT_URL_IAM": "http://127.0.0.1:9",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
            **env,
        },
    )


def unit_info(enabled, active):
    """What ``systemctl show`` prints for a unit in a given state (facts.systemd_unit)."""
    return f"ActiveState={active}\nUnitFileState={enabled}\n"


def swarm_info(state="inactive", manager=False, node_id=""):
    """Docker's ``/info`` for a node in a given swarm state (swarm.SWARM_STATE)."""
    return json.dumps({"Swarm": {"LocalNodeState": state, "ControlAvailable": manager, "NodeID": node_id}})


def manager_info(role, status=None):
    """A node's ``.ManagerStatus`` as Docker's JSON has it, for its status in ``docker node ls``:
    leader, reachable, unreachable, or "" for none (null); by default reachable for a manager,
    none for a worker."""
    status = ("reachable" if role == "manager" else "") if status is None else status
    if not status:
        return None
    reachability = "unreachable" if status == "unreachable" else "reachable"
    return {"Leader": status == "leader", "Reachability": reachability}


def node_info(id_, role, state, hostname, labels=None, availability="active", address="", manager=None):
    """One line of what the swarm's nodes fact prints (swarm_model.NODES), resources none; ``manager``:
    its manager status (:func:`manager_info`)."""
    fields = [id_, hostname, role, state, availability, address, labels, 0, 0, manager_info(role, manager)]
    return json.dumps(fields) + "\n"


def cert_info(sans="", lasts=True):
    """(exit status, output) of the certificate probe (certs.cert_fact) as openssl answers
    for a certificate with these subjectAltName entries, lasting 30 more days or not."""
    extension = f"X509v3 Subject Alternative Name: \n    {sans}\n" if sans else ""
    return (0 if lasts else 1), extension + f"Certificate will {'not ' if lasts else ''}expire\n"


def chp_info(version):
    """The package.json the proxy's version is read from (nodejs.CHP_VERSION)."""
    return json.dumps({"name": "configurable-http-proxy", "version": version})


def venv_info(versions, site="/opt/jupyterhub/lib/python3.11/site-packages"):
    """The venv fact's answer (python_env.installed_fact) for a venv holding these distributions."""
    return (
        "".join(f"{site}/{n.replace('-', '_')}-{v}.dist-info\n" for n, v in versions.items()) or f"{site}/*.dist-info\n"
    )


def make_venv(root, interpreter="python3.11", dists=None):
    """A virtualenv in ``root`` as the venv facts read it (python_env): bin/python links to
    a base interpreter named ``interpreter``, never started; ``dists`` ({name: version})
    are dist-info folders in its site-packages. Returns (venv, site-packages)."""
    base = root / "base" / interpreter
    base.parent.mkdir(parents=True)
    base.write_text("#!/bin/sh\nexit 1\n")
    base.chmod(0o755)
    venv = root / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(base)
    site = venv / "lib" / interpreter / "site-packages"
    site.mkdir(parents=True)
    for name, version in (dists or {}).items():
        (site / f"{name.replace('-', '_')}-{version}.dist-info").mkdir()
    return venv, site


def parsed(fact, out, rc=0):
    """What ``host.fact(fact)`` returns when its probe printed ``out`` and exited ``rc``."""
    return fact.parse(F.Answer(rc, out))


def docker_settings_done(current=""):
    """The canned answers of a node whose Docker started with hubswarm's log settings (and the
    rest of ``current``, daemon.json's text before)."""
    from tasks.node import docker

    wanted = docker.daemon_settings(current).encode()
    return {
        f"file:{docker.DAEMON_JSON}": f"{hashlib.sha256(wanted).hexdigest()} 644 root root",
        f"content:{docker.DAEMON_JSON}": wanted.decode(),
        "dir:/etc/docker": "755 root root",
        docker.DAEMON_INPUTS.key: "fp\nfp",
    }


def with_input(steps, needed):
    """``steps`` with the local input ``needed`` (by step name) bound, as gather_needs binds it."""
    return [s.bind(needed[s.name]) if s.name in needed else s for s in steps]


def homes_probe_done(config=None):
    """The canned answers of a hub whose homes probe and labelling loop are as wanted."""
    from tasks.cluster import homes_probe
    from tasks.core.templates import file_text, render
    from tasks.node.storage import marker_path

    config = config or hub_config()

    def state(text, mode="644"):
        return f"{hashlib.sha256(text.encode()).hexdigest()} {mode} root root"

    return {
        homes_probe.PROBE_FACT.key: f"{config.image} {marker_path(config)}",
        f"file:{homes_probe.LABELS_TOOL}": state(file_text("hubswarm-homes-labels"), "755"),
        f"file:{homes_probe.LABELS_UNIT}": state(render(f"{homes_probe.LABELS_SERVICE}.j2")),
        f"unit:{homes_probe.LABELS_SERVICE}": unit_info("enabled", "active"),
    }
