"""Hostile values never run as code on a host, and arrive there literally.

Every command and fact builder that takes a value (settings from .env, the
userlist, local file names, remote answers such as node ids, addresses and host
names) is fed hostile strings by hypothesis: ``;``, ``$(...)``, backticks, both
quotes, newlines, a leading ``-``, globs, spaces, non-ASCII, backslashes. Each
script is sent exactly as :meth:`Host.sudo` sends it (``sudo -n bash -c SCRIPT``,
through a login shell) to REAL bash, with a PATH holding only stub commands
that log their argv (NUL-separated) and exit 0; ``test``, ``[``, ``echo`` and
``cd`` are turned into stubs too, so their arguments are logged as well. This
proves, per builder:

1. nothing injected runs: the marker file every payload tries to create (by
   redirection, so it needs no command) never appears, and bash reports no
   unknown command and no syntax error;
2. the value arrives literally: as one whole argument of the command meant to
   get it (or exactly inside one, like ``-subj /CN=VALUE``), or in the one
   environment variable / stdin meant to carry it.

Values that no command can carry are left out: NUL bytes. Where a value is also
part of a fact's cache key, line breaks are left out (the batch framing is
line based); the builder itself is still fed them through ``batch_script``.
When run as root, scripts run as ``nobody`` (setpriv), so nothing they do can
touch the machine outside the scratch folder.
"""

import io
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from traitlets.config import Config

from fakehost import frame, hub_config, node_info, normalize, probe_keys, swarm_info, unit_info
from tasks.cluster import homes_probe, managers, swarm, swarm_model
from tasks.core import facts as F
from tasks.core import services
from tasks.core.facts import Answer
from tasks.core.host import LOCK_FILE, Host, HubswarmError
from tasks.core.recap import Recap
from tasks.core.run import Run
from tasks.hub import certs, course, letsencrypt, nginx, proxy, python_env, records
from tasks.hub import jupyterhub as hub
from tasks.hubswarm_hub import config as hub_side_config
from tasks.node import docker, images, packages, storage
from tasks.ops import backup, status

BASE = Path(tempfile.gettempdir()) / f"hubswarm-quoting-{os.getpid()}"
MARKER = BASE / "pwned"
M = str(MARKER)

# --- hostile values ---------------------------------------------------------------

#: Payloads that create MARKER by redirection if the shell ever parses them as code.
INJECTIONS = [
    f";>{M};",
    f"$(>{M})",
    f"`>{M}`",
    '$(echo pwned > "$MARKER")',
    f"';>{M};'",
    f'";>{M};"',
    f"'\"$(>{M})\"'",
    f"\n>{M}\n",
    f"\\\n>{M}",
    f"&&>{M}",
    f"|>{M}",
    f"&>{M}&",
    f"${{IFS}}>{M}",
    f">{M}",
    f">>{M}",
    f"<(>{M})",
    f"\\';>{M};#",
    f"$((0))$(>{M})",
    f"${{x:-$(>{M})}}",
    f"\r>{M}\r",
]
#: Values that are no injection but must still arrive unchanged.
ODD = [
    "-rf",
    "--help",
    "-",
    "*",
    "?",
    "[a-z]",
    "~",
    "~root",
    "{a,b}",
    "a b",
    " lead",
    "trail ",
    "\t",
    "ünïcødé ☃ 日本",
    "\\",
    "\\\\n",
    "'",
    '"',
    "`",
    "$",
    "$HOME",
    "${HOME}",
    "!!",
    "#x",
    "%s%n",
    "\r\n",
    "=",
    "a=b",
    "@-",
    "..",
    "/",
    "\x7f\x1b[0m",
]
#: One string with every trick at once, leading dash included.
KITCHEN_SINK = "-x " + "".join(INJECTIONS) + " * ☃ \\ ' \" `"

fragment = st.one_of(
    st.sampled_from(INJECTIONS),
    st.sampled_from(ODD),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=6),
)
hostile = st.lists(fragment, min_size=1, max_size=4).map("".join)

LINE_BREAKS = set("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def one_line(value):
    """``value`` without line breaks (for values that are also fact cache keys)."""
    return "".join(c for c in value if c not in LINE_BREAKS) or "x"


def one_word(value):
    """``value`` without whitespace (node ids, addresses: the answers split on it)."""
    return "".join(value.split()) or "x"


# --- the sandbox: real bash, stub commands ----------------------------------------------

STUBBED = (
    "apt-get",
    "awk",
    "cat",
    "cd",
    "certbot",
    "chmod",
    "chown",
    "configurable-http-proxy",
    "cp",
    "curl",
    "cut",
    "dirname",
    "dnf",
    "docker",
    "dpkg",
    "dpkg-query",
    "echo",
    "find",
    "findmnt",
    "flock",
    "getent",
    "grep",
    "head",
    "hostname",
    "hubswarm-home",
    "id",
    "install",
    "ln",
    "mktemp",
    "mount",
    "mv",
    "nginx",
    "node",
    "npm",
    "openssl",
    "python3",
    "readlink",
    "rm",
    "rpm",
    "rsync",
    "seq",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "systemctl",
    "tail",
    "tar",
    "tee",
    "test",
    "[",
    "usermod",
    "xargs",
    "yum",
)
LOGGED_ENV = ("REQUESTS_CA_BUNDLE", "HUBSWARM_HOMES", "HUBSWARM_NOTEBOOKS", "HUBSWARM_PATH")

STUB = """#!{bash}
enable echo test [ cd 2>/dev/null
rec="$STUB_LOG/$EPOCHREALTIME-$BASHPID"
{{ printf '%s\\0' "$0" "$#" "$@"; {env} }} > "$rec"
case " $STUB_FAIL " in *" ${{0##*/}} "*) exit 1 ;; esac
case ${{0##*/}} in
  cat) [ $# -eq 0 ] && exec {cat} ;;  # cat > "$t": the file's content, from stdin
  mktemp) [ "$1" = -d ] && {mkdir} -p "$STUB_TMP.d" && printf '%s\\n' "$STUB_TMP.d" && exit 0  # a probe batch's answers
          printf '%s\\n' "$STUB_TMP" ;;
  curl) for a; do [ "$a" = @- ] && exec {cat} > "$rec.stdin"; done ;;
  readlink) printf '%s\\n' "${{@: -1}}" ;;  # a path resolves to itself
esac
exit 0
"""
SUDO = """#!{bash}
enable test [ 2>/dev/null
[ "$1" = -n ] || exit 99
shift
exec "$@"
"""
# Builtins that become stubs, so their arguments are logged too.
PROLOGUE = "enable -n echo test [ cd\n"


@dataclass
class Call:
    path: str  # how the command was named ($0)
    args: list
    env: dict
    stdin: bytes = None

    @property
    def name(self):
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Box:
    """One example's scratch folder; runs commands as a host would, logs what the stubs saw."""

    sandbox: object
    dir: Path
    fail: set = field(default_factory=set)
    outputs: list = field(default_factory=list)

    @property
    def tmp(self):
        return str(self.dir / "tmpfile")

    @property
    def log(self):
        return self.dir / "log"

    @property
    def path_dir(self):
        """A folder on PATH after the stubs, for commands named by a value."""
        return self.dir / "path"

    def exec(self, command, stdin=None):
        """``Host._exec`` for this box: the command line through a login shell (bash)."""
        data = stdin.read() if stdin is not None else b""
        # The change lock lives in the scratch folder, not in /run/lock.
        command = command.replace(LOCK_FILE, shlex.quote(str(self.dir / "lock")))
        env = {
            "PATH": f"{self.sandbox.bin}:{self.path_dir}",
            "BASH_ENV": str(self.sandbox.prologue),
            "STUB_LOG": str(self.log),
            "STUB_TMP": self.tmp,
            "STUB_FAIL": " ".join(sorted(self.fail)),
            "MARKER": M,
            "HOME": str(self.dir),
            "LC_ALL": "C.UTF-8",
        }
        result = subprocess.run(
            [*self.sandbox.drop, self.sandbox.bash, "-c", command],
            input=data,
            capture_output=True,
            check=False,
            cwd=self.dir,
            env=env,
            timeout=120,
        )
        out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
        self.outputs.append((out, err))
        return result.returncode, out, err

    def host(self, answers=None, check=False, config=None, user="admin", address="10.0.0.5", primed=None):
        """A real Host whose commands run here. ``answers``: canned probe answers by key
        (the probe script still runs here); ``primed``: facts known without probing."""
        settings = Run(config or hub_config(), check=check, recap=Recap(stream=io.StringIO()))
        host = Host(SimpleNamespace(host=address, user=user, port=22), address, settings)
        if answers is not None:

            def exec_(command, stdin=None):
                script = shlex.split(command)[4]
                rc, out, err = self.exec(command, stdin)
                if F.MARKER in script:
                    return 0, frame((k, normalize(answers.get(k))) for k in probe_keys(script)), ""
                return rc, out, err

            host._exec = exec_
        else:
            host._exec = self.exec
        host.record = settings.recap.start(address, "quoting", check)
        for fact, answer in (primed or {}).items():
            host._facts[fact.key] = answer
        return host

    def sudo(self, script, stdin=None):
        """Run ``script`` as Host.sudo would; a failing script is fine here."""
        try:
            self.host().sudo(script, stdin=stdin)
        except HubswarmError:
            pass

    def probe(self, *wanted):
        """Run the facts as one probe batch (no parsing: any key is fine)."""
        self.sudo(F.batch_script(wanted))

    @property
    def stdout(self):
        return "".join(out for out, _ in self.outputs)

    @property
    def stderr(self):
        return "".join(err for _, err in self.outputs)

    def calls(self):
        found = []
        for rec in sorted(p for p in self.log.iterdir() if not p.name.endswith(".stdin")):
            fields = rec.read_bytes().decode().split("\0")
            argc = int(fields[1])
            env = dict(f.split("=", 1) for f in fields[2 + argc : 2 + argc + len(LOGGED_ENV)])
            stdin = rec.with_name(rec.name + ".stdin")
            found.append(Call(fields[0], fields[2 : 2 + argc], env, stdin.read_bytes() if stdin.exists() else None))
        return found


class Sandbox:
    def __init__(self, base):
        self.base = base
        self.bin = base / "bin"
        self.bin.mkdir(parents=True)
        self.bash = shutil.which("bash")
        stub = base / "stub"
        env = " ".join(f"printf '%s\\0' \"{n}=${{{n}-}}\";" for n in LOGGED_ENV)
        stub.write_text(STUB.format(bash=self.bash, cat=shutil.which("cat"), mkdir=shutil.which("mkdir"), env=env))
        (self.bin / "sudo").write_text(SUDO.format(bash=self.bash))
        for path in (stub, self.bin / "sudo"):
            path.chmod(0o755)
        for name in STUBBED:
            (self.bin / name).symlink_to(stub)
        (self.bin / "bash").symlink_to(self.bash)
        self.prologue = base / "prologue.sh"
        self.prologue.write_text(PROLOGUE)
        self.drop = []
        if os.geteuid() == 0:  # scripts run as nobody: nothing outside the scratch folder is writable
            setpriv = shutil.which("setpriv")
            assert setpriv, "running as root needs setpriv (util-linux) to drop privileges"
            self.drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        for path in (base, *base.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o755)
        base.chmod(0o777)  # nobody may create the marker, so an injection would show
        self.count = 0

    def box(self):
        self.count += 1
        path = self.base / f"box{self.count}"
        path.mkdir()
        (path / "log").mkdir()
        (path / "path").mkdir()
        for p in (path, path / "log", path / "path"):
            p.chmod(0o777)
        return Box(self, path)


@pytest.fixture(scope="module")
def sandbox():
    assert shutil.which("bash"), "needs bash"
    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(parents=True)
    yield Sandbox(BASE)
    shutil.rmtree(BASE, ignore_errors=True)


# --- what a case expects ---------------------------------------------------------------


def arg(cmd, value):
    """Some call of ``cmd`` got ``value`` as one whole argument."""
    return f"{cmd} got argument {value!r}", lambda calls: any(c.name == cmd and value in c.args for c in calls)


def argv(cmd, *args):
    """Some call of ``cmd`` got exactly these arguments."""
    return f"{cmd} {list(args)!r}", lambda calls: any(c.name == cmd and c.args == list(args) for c in calls)


def pair(cmd, flag, value):
    """Some call of ``cmd`` got ``flag`` followed by ``value``."""

    def ok(calls):
        return any(
            c.name == cmd and any(a == flag and b == value for a, b in zip(c.args, c.args[1:], strict=False))
            for c in calls
        )

    return f"{cmd} {flag} {value!r}", ok


def ran(path, *args):
    """The command named by ``path`` (not looked up in PATH) ran with these arguments first."""
    return f"{path} {list(args)!r}", lambda calls: any(
        c.path == path and c.args[: len(args)] == list(args) for c in calls
    )


def env(cmd, name, value):
    """``cmd`` ran with ``name=value`` in its environment."""
    return f"{cmd} with {name}={value!r}", lambda calls: any(c.name == cmd and c.env.get(name) == value for c in calls)


def stdin_json(cmd, check):
    def ok(calls):
        return any(c.name == cmd and c.stdin is not None and check(json.loads(c.stdin)) for c in calls)

    return f"{cmd} got the value in the JSON on its stdin", ok


@dataclass
class Case:
    id: str
    run: object  # (box, value) -> None
    expect: object  # (value, box) -> [(description, predicate)]
    fit: object = None  # value -> the value this builder can take

    def __repr__(self):
        return self.id


def fact(builder, *extra):
    """A case runner that probes ``builder(value)`` as one batch."""
    return lambda box, v: box.probe(builder(v), *extra)


def script(builder, stdin=None):
    return lambda box, v: box.sudo(builder(v), stdin=stdin(v) if stdin else None)


# --- runners that need a little more than one script -----------------------------------------------


def run_ensure_dir(box, v):
    host = box.host(primed={F.dir_state(v): Answer(1, "")})
    host.ensure_dir(v, mode=v, owner=v, group=v)


def run_ensure_file(box, v):
    host = box.host(primed={F.file_state(v): Answer(1, "")})
    host.ensure_file(v, v, mode=v, owner=v, group=v, previous=v + ".prev")


def run_ensure_file_check(box, v):
    """Check mode: the file differs, so its content is read (``cat PATH``) for the diff."""
    host = box.host(check=True, primed={F.file_state(v): Answer(0, "0" * 64 + " 644 root root")})
    host.ensure_file(v, "new\n")


def run_reload(box, v):
    site, link, previous = v, v + ".link", v + ".prev"
    box.sudo(nginx.reload_script(site, link, previous, True, True))  # nginx -t passes
    box.fail = {"nginx"}  # nginx -t fails: the previous site is put back, or the new one removed
    box.sudo(nginx.reload_script(site, link, previous, True, True))
    box.sudo(nginx.reload_script(site, link, previous, True, False))


def run_mount(box, v):
    command = storage.mount_commands(v, v, "", True)
    # The fstab line goes to a scratch file instead of /etc/fstab.
    assert command.count(" >> /etc/fstab") == 1
    box.sudo(command.replace(" >> /etc/fstab", f" >> {shlex.quote(str(box.dir / 'fstab'))}"))


def run_sync_tool(box, v):
    command = storage.home_tool(hub_config(homes_path=v, srv=v), "sync")
    # The tool's absolute path, pointed at its stub.
    assert command.count(storage.HOME_TOOL) == 1
    box.sudo(command.replace(storage.HOME_TOOL, str(box.sandbox.bin / "hubswarm-home")))


def run_venv(box, v):
    """The venv is a relative folder here, so its bin/python can be a stub; the Python
    it is made with (a name the host answered) is a stub in a folder on PATH."""
    bin_dir = box.dir / v / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "python").symlink_to(box.sandbox.base / "stub")
    (bin_dir / "uv").symlink_to(box.sandbox.base / "stub")
    (box.path_dir / python_name(v)).symlink_to(box.sandbox.base / "stub")
    box.probe(python_env.installed_fact(v))
    box.sudo(python_env.venv_commands(v, None, python_name(v)))


def python_name(venv):
    """A command name (one file name) made of the venv's value."""
    return venv.replace("/", "")[:60]


def venv_folder(value):
    """A relative folder for ``value``: no "/" of its own, cut into names short enough for a file system."""
    name = "v" + value.replace("/", "_")
    return "/".join(name[i : i + 60] for i in range(0, len(name), 60))


def run_swarm_nodes(box, v):
    """Node ids and host names are remote answers (docker node inspect on the hub)."""
    details = "".join(
        node_info(id_, role, state, hostname, labels)
        for id_, role, state, hostname, labels in [
            (v, "worker", "ready", f"{v}h", {}),
            (f"{v}m", "manager", "ready", "hub", {swarm.NOTEBOOK_LABEL: "true"}),
            (f"{v}old", "worker", "down", f"{v}h", None),
        ]
    )
    host = box.host({swarm_model.NODES.key: details, swarm.SWARM_STATE.key: swarm_info("active", True, f"{v}m")})
    swarm.swarm_nodes(host)


def run_swarm_init(box, v):
    """The advertise address is a remote answer (hostname -I)."""
    host = box.host({"addresses": f"{v} 10.9.9.9", swarm.SWARM_STATE.key: swarm_info()})
    swarm.swarm_init(host)


def run_swarm_join(box, v):
    info = swarm.JoinInfo(f"{v}:2377", "SWMTKN-1-secret", frozenset())
    host = box.host({"addresses": v, swarm.SWARM_STATE.key: swarm_info()})
    swarm.swarm_join(host, info)


def run_pull(box, v):
    host = box.host(config=hub_config(image=v), primed={images.image_id_fact(v): Answer(1, "")})
    images.pull_image(host)


def run_group(box, v):
    host = box.host(primed={docker.groups_fact(v): Answer(0, "wheel")})
    docker.ensure_in_group(host, v, v)


def run_service(box, v):
    host = box.host(primed={F.systemd_unit(v): Answer(0, "")})
    services.ensure_service(host, v)


def run_stop_service(box, v):
    host = box.host(primed={F.systemd_unit(v): Answer(0, unit_info("enabled", "active"))})
    services.stop_service(host, v)


def run_install(box, v):
    box.sudo(packages.install_commands(packages.APT, {v, "curl"}, lists_fresh=False))
    box.sudo(packages.install_commands(packages.DNF, {v}))


def cat_inputs(v):
    # (The installed package's glob matches nothing in the sandbox, so bash passes it as is.)
    package = f"/opt/jupyterhub/lib/python3*/site-packages/{python_env.PACKAGE_NAME}/*.py"
    return [argv("cat", *hub.inputs(hub_config(srv=v)), package, f"{v}/jupyterhub_config.d/*.py")]


def run_status_version(box, v):
    """The venv is a relative folder here, so its bin/python can be a stub."""
    bin_dir = box.dir / v / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "python").symlink_to(box.sandbox.base / "stub")
    box.probe(python_env.version_fact(v))


def run_backup_upload(box, v):
    """The venv is a relative folder here, so its bin/python can be a stub."""
    bin_dir = box.dir / "venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "python").symlink_to(box.sandbox.base / "stub")
    box.sudo("archive=a.tar.gz\n" + backup.upload_command(hub_config(venv="venv", backup_bucket=v, cluster=v)))


def run_status_routes(box, v):
    """The state folder is a relative folder holding the proxy's token file."""
    (box.dir / v).mkdir(parents=True, exist_ok=True)
    (box.dir / v / "proxy.env").write_text("CONFIGPROXY_AUTH_TOKEN=t0k3n\n")
    box.probe(status.routes_fact(hub_config(srv=v)))


def token_on_stdin_only(calls):
    curls = [c for c in calls if c.name == "curl"]
    return (
        len(curls) == 1
        and curls[0].stdin == b"Authorization: token t0k3n\n"
        and not any("t0k3n" in a for c in calls for a in c.args)
    )


IMDS = "http://169.254.169.254/latest/meta-data/"

CASES = [
    # core facts
    Case(
        "facts.file_state", fact(F.file_state), lambda v, b: [argv("test", "-f", v), argv("stat", "-c", "%a %U %G", v)]
    ),
    Case(
        "facts.file_state, with another",
        fact(F.file_state, F.file_state("/srv/other")),
        lambda v, b: [
            argv("test", "-f", v),
            argv("stat", "-c", "%a %U %G", "--", v, "/srv/other"),
            argv("sha256sum", "--", v, "/srv/other"),
        ],
    ),
    Case("facts.dir_state", fact(F.dir_state), lambda v, b: [argv("test", "-d", v), argv("stat", "-c", "%a %U %G", v)]),
    Case(
        "facts.packages_installed",
        fact(lambda v: F.packages_installed([v, "curl"], [v])),
        lambda v, b: [arg("dpkg-query", v), arg("dpkg-query", "curl")],
    ),
    Case(
        "facts.systemd_unit",
        fact(F.systemd_unit),
        lambda v, b: [argv("systemctl", "show", "-p", "UnitFileState", "-p", "ActiveState", v)],
    ),
    Case(
        "facts.systemd_unit, with another",
        fact(F.systemd_unit, F.systemd_unit("nginx")),
        lambda v, b: [argv("systemctl", "show", "-p", "UnitFileState", "-p", "ActiveState", v, "nginx")],
    ),
    Case("facts.instance_metadata", fact(F.instance_metadata), lambda v, b: [arg("curl", IMDS + v)]),
    Case(
        "facts.batch_script key",
        fact(lambda v: F.Fact(v, "true")),
        lambda v, b: [(f"the frame names key {v!r}", lambda calls: f"\n{F.MARKER} {v} 0\n" in b.stdout)],
    ),
    # core host
    Case("Host.ensure_dir", run_ensure_dir, lambda v, b: [argv("install", "-d", "-m", v, "-o", v, "-g", v, v)]),
    Case(
        "Host.ensure_file",
        run_ensure_file,
        lambda v, b: [
            argv("dirname", v),
            argv("chown", f"{v}:{v}", b.tmp),
            argv("chmod", v, b.tmp),
            argv("mv", "-f", b.tmp, v),
            argv("rm", "-f", v + ".prev"),
            argv("[", "-e", v, "]"),
            argv("cp", "-p", v, v + ".prev"),
            (f"the content {v!r} went through stdin", lambda calls: Path(b.tmp).read_bytes().decode() == v),
        ],
    ),
    Case("Host.ensure_file content fact", run_ensure_file_check, lambda v, b: [argv("cat", v)], fit=one_line),
    # certs
    Case("certs.cert_fact", fact(certs.cert_fact), lambda v, b: [pair("openssl", "-in", v)]),
    Case(
        "certs.cert_commands",
        script(lambda v: certs.cert_commands(certs.Certificate(frozenset(), False), v, v + ".crt", v + ".key")),
        lambda v, b: [
            pair("openssl", "-subj", "/CN=" + v),
            pair("openssl", "-addext", "subjectAltName=" + certs.subject_alt_name(v)),
            pair("openssl", "-keyout", v + ".key"),
            pair("openssl", "-out", v + ".crt"),
            argv("chmod", "600", v + ".key"),
            argv("chmod", "644", v + ".crt"),
        ],
    ),
    # letsencrypt
    Case("records.resolve_fact", fact(records.resolve_fact), lambda v, b: [argv("getent", "ahostsv4", v)]),
    Case(
        "letsencrypt.certbot_command",
        script(
            lambda v: letsencrypt.certbot_command(
                hub_config(letsencrypt_email=v, acme_server=v, single_origin=True), [v, v + "2"], v, "certbot"
            )
        ),
        lambda v, b: [
            pair("certbot", "--cert-name", v),
            pair("certbot", "-d", v),
            pair("certbot", "-d", v + "2"),
            pair("certbot", "--email", v),
            pair("certbot", "--server", v),
            env("certbot", "REQUESTS_CA_BUNDLE", v),
        ],
    ),
    # nginx
    Case(
        "nginx.letsencrypt_fact",
        fact(nginx.letsencrypt_fact),
        lambda v, b: [argv("test", "-s", f"{certs.LETSENCRYPT_LIVE}/{v}/fullchain.pem")],
    ),
    Case("nginx.ocsp_fact", fact(nginx.ocsp_fact), lambda v, b: [pair("openssl", "-in", v)]),
    Case(
        "nginx.link_commands",
        script(lambda v: nginx.link_commands("", v, v + ".link", v + ".default", True)),
        lambda v, b: [argv("ln", "-sfn", v, v + ".link"), argv("rm", "-f", v + ".default")],
    ),
    Case(
        "nginx.link_facts",
        lambda box, v: box.probe(*nginx.link_facts(v, v + ".default")),
        lambda v, b: [argv("readlink", v), argv("test", "-e", v + ".default")],
    ),
    Case(
        "nginx.reload_script",
        run_reload,
        lambda v, b: [
            argv("rm", "-f", v + ".prev"),
            argv("mv", "-f", v + ".prev", v),
            argv("rm", "-f", v, v + ".link"),
        ],
    ),
    # storage
    Case("storage.mount_fact", fact(storage.mount_fact), lambda v, b: [pair("findmnt", "--mountpoint", v)]),
    Case(
        "storage.fstab_fact",
        fact(storage.fstab_fact),
        lambda v, b: [
            env("awk", "HUBSWARM_PATH", v),
            argv("awk", '$2 "" == ENVIRON["HUBSWARM_PATH"]', "/etc/fstab"),
        ],
    ),
    Case(
        "storage.mount_commands",
        run_mount,
        lambda v, b: [
            argv("install", "-d", v),
            argv("echo", storage.fstab_line(v, v)),
            argv("mount", v),
        ],
    ),
    Case("storage.manifest_fact", fact(storage.manifest_fact), lambda v, b: [argv("cd", v)]),
    Case(
        "homes_probe.create_command",
        script(lambda v: homes_probe.create_command(v, v)),
        lambda v, b: [
            pair("docker", "--mount", f"type=bind,source={v},target=/hubswarm-homes,readonly"),
            pair("docker", "--", v),
        ],
    ),
    Case(
        "backup.stored_fact",
        fact(lambda v: backup.stored_fact(hub_config(homes_path=v))),
        lambda v, b: [argv("cd", v + "/.hubswarm-backups")],
    ),
    Case(
        "backup.backup_tool",
        script(lambda v: backup.backup_tool(hub_config(homes_path=v, srv=v, venv=v))),
        lambda v, b: [
            argv("install", "-d", "-m", "700", v + "/.hubswarm-backups"),
            argv("mktemp", v + "/.hubswarm-backups/.partial.XXXXXX"),
        ],
    ),
    Case(
        "backup.upload_command",
        run_backup_upload,
        lambda v, b: [
            ran("venv/bin/python", "-m", "hubswarm_hub.backups", "upload", "a.tar.gz", "--bucket", v, "--cluster", v)
        ],
    ),
    Case(
        "storage.unpack_script",
        script(storage.unpack_script, stdin=lambda v: "tar"),
        lambda v, b: [
            argv("rm", "-rf", v + ".new"),
            argv("install", "-d", v + ".new"),
            pair("tar", "-C", v + ".new"),
            argv("chmod", "-R", "a+rX", v + ".new"),
            argv("rsync", "-a", "--delete", v + ".new/", v + "/"),
        ],
    ),
    Case(
        "storage.synced_fact",
        fact(lambda v: storage.synced_fact(hub_config(homes_path=v))),
        lambda v, b: [argv("cat", f"{v}/{storage.SYNCED_STAMP}")],
    ),
    Case(
        "storage.home_tool",
        run_sync_tool,
        lambda v, b: [
            env("hubswarm-home", "HUBSWARM_HOMES", v),
            env("hubswarm-home", "HUBSWARM_NOTEBOOKS", v + "/notebooks"),
        ],
    ),
    # the course folders
    Case("course.folders_fact", fact(course.folders_fact), lambda v, b: [argv("cd", v)]),
    Case(
        "course.folder_changes",
        script(lambda v: course.folder_changes(v, {".shared/x": course.Folder(0o2770, 0, 1000001)}, {})[0][1]),
        lambda v, b: [argv("install", "-d", "-m", "02770", "-o", "0", "-g", "1000001", v + "/.shared/x")],
    ),
    Case(
        "course.folders_fact (a course for nbgrader)",
        fact(lambda v: course.folders_fact("homes", v)),
        lambda v, b: [arg("find", f".nbgrader/exchange/{v}"), arg("find", f".shared/instructors/{v}")],
        fit=one_line,
    ),
    Case(
        "course.folder_changes (nbgrader's folders)",
        script(
            lambda v: " && ".join(
                command for _, command in course.folder_changes("/h", course.wanted_folders({"instructors"}, {}, v), {})
            )
        ),
        lambda v, b: [
            argv("install", "-d", "-m", "02775", "-o", "0", "-g", "1000001", f"/h/.nbgrader/exchange/{v}"),
            argv("install", "-d", "-m", "02770", "-o", "0", "-g", "1000001", f"/h/.shared/instructors/{v}"),
        ],
    ),
    # hub (srv is relative under a folder that does not exist: the stamp redirect can go nowhere)
    Case(
        "hub.hub_inputs",
        fact(lambda v: hub.hub_inputs(hub_config(srv=v))),
        lambda v, b: [*cat_inputs(v), argv("cat", f"{v}/.running-inputs")],
        fit=lambda v: "nx" + v,
    ),
    Case(
        "services.restart_plan",
        script(
            lambda v: services.restart_plan(
                v, F.UnitState("", ""), [], hub.sources(hub_config(srv=v)), hub.stamp(hub_config(srv=v))
            )[1]
        ),
        lambda v, b: cat_inputs(v),
        fit=lambda v: "nx" + v,
    ),
    Case(
        "proxy.token_script",
        script(lambda v: proxy.token_script(hub_config(srv=v))),
        lambda v, b: [argv("mktemp", f"{v}/proxy.env.XXXXXX")],
        fit=lambda v: "nx" + v,
    ),
    # swarm
    Case(
        "swarm.init_command",
        script(lambda v: swarm.init_command(swarm.SwarmState("inactive", False, ""), v, "hub")),
        lambda v, b: [argv("docker", "swarm", "init", "--advertise-addr", v)],
    ),
    Case(
        "swarm.label_command",
        script(lambda v: swarm.label_command({v: ({}, True), v + "b": ({swarm.NOTEBOOK_LABEL: "x"}, False)})),
        lambda v, b: [
            argv("docker", "node", "update", "--label-add", f"{swarm.NOTEBOOK_LABEL}=true", "--", v),
            argv("docker", "node", "update", "--label-rm", swarm.NOTEBOOK_LABEL, "--", v + "b"),
        ],
    ),
    Case(
        "swarm.swarm_nodes (node answers)",
        run_swarm_nodes,
        lambda v, b: [
            argv("docker", "node", "update", "--label-add", f"{swarm.NOTEBOOK_LABEL}=true", "--", v),
            argv("docker", "node", "update", "--label-rm", swarm.NOTEBOOK_LABEL, "--", v + "m"),
            argv("docker", "node", "rm", "--", v + "old"),
        ],
        fit=one_word,
    ),
    Case(
        "swarm.swarm_init (address answer)",
        run_swarm_init,
        lambda v, b: [argv("docker", "swarm", "init", "--advertise-addr", v)],
        fit=one_word,
    ),
    Case(
        "swarm.swarm_join (address answer)",
        run_swarm_join,
        lambda v, b: [
            stdin_json("curl", lambda body: body["AdvertiseAddr"] == v and body["RemoteAddrs"] == [f"{v}:2377"]),
        ],
        fit=one_word,
    ),
    Case(
        "managers.promote_command",
        script(lambda v: managers.promote_command([v, v + "b"])),
        lambda v, b: [argv("docker", "node", "promote", "--", v, v + "b")],
    ),
    Case(
        "managers.demote_command",
        script(lambda v: managers.demote_command([v, v + "b"])),
        # one at a time, each once out of the managers (the sandbox's stubs never say so: the first only)
        lambda v, b: [argv("docker", "node", "demote", "--", v)],
    ),
    # workers (remove-worker)
    Case(
        "swarm.drain_command",
        script(swarm.drain_command),
        lambda v, b: [argv("docker", "node", "update", "--availability", "drain", v)],
    ),
    Case(
        "swarm.node_rm_command",
        script(swarm.node_rm_command),
        lambda v, b: [argv("docker", "node", "rm", "--force", v)],
    ),
    # status
    Case(
        "python_env.version_fact",
        run_status_version,
        lambda v, b: [ran(f"{v}/bin/python", "-c", "import jupyterhub; print(jupyterhub.__version__)")],
        fit=venv_folder,
    ),
    Case("status.cert_end_fact", fact(status.cert_end_fact), lambda v, b: [pair("openssl", "-in", v)]),
    Case("status.disk_fact", fact(status.disk_fact), lambda v, b: [argv("stat", "-f", "-c", "%S %b %a", "--", v)]),
    Case(
        "status.routes_fact",
        run_status_routes,
        lambda v, b: [
            argv("curl", "-sf", "--max-time", "5", "-H", "@-", proxy.API_URL + "/api/routes"),
            ("the token reached curl on stdin only", token_on_stdin_only),
        ],
        fit=venv_folder,
    ),
    # images
    Case(
        "images.image_id_fact",
        fact(images.image_id_fact),
        lambda v, b: [argv("docker", "image", "inspect", "--format", "{{.Id}}", v)],
    ),
    Case("images.pull_image", run_pull, lambda v, b: [argv("docker", "pull", "-q", v)]),
    # python_env (the venv is a relative folder here, see run_venv)
    Case(
        "python_env venv",
        run_venv,
        lambda v, b: [
            argv("readlink", "-f", f"{v}/bin/python"),
            ran(f"{v}/bin/python", "-c"),  # its name tells no version: it is asked
            argv(python_name(v), "-m", "venv", v),
            ran(f"{v}/bin/python", "-m", "pip", "install"),
        ],
        fit=venv_folder,
    ),
    # docker
    Case("docker.groups_fact", fact(docker.groups_fact), lambda v, b: [argv("id", "-nG", v)]),
    Case("docker.ensure_in_group", run_group, lambda v, b: [argv("usermod", "-aG", v, v)]),
    Case(
        "services.ensure_service",
        run_service,
        lambda v, b: [argv("systemctl", "enable", v), argv("systemctl", "start", v)],
    ),
    Case("services.stop_service", run_stop_service, lambda v, b: [argv("systemctl", "disable", "--now", v)]),
    # packages
    Case(
        "packages.install_commands",
        run_install,
        lambda v, b: [
            arg("apt-get", v),
            arg("apt-get", "curl"),
            arg("apt-get", "update"),
            argv("dnf", "install", "-y", "-q", v),
        ],
    ),
]

BAD_SIGNS = ("command not found", "syntax error", "unexpected EOF", "bad substitution")


def check_case(sandbox, case, value):
    assert "\x00" not in value
    value = case.fit(value) if case.fit else value
    assert not MARKER.exists(), "a marker was left by an earlier example"
    box = sandbox.box()
    try:
        case.run(box, value)
        calls = box.calls()
        shown = "\n".join(f"  {c.path} {c.args!r} {c.env!r}" for c in calls)
        assert not MARKER.exists(), f"INJECTED: {value!r} ran code (marker created); stderr:\n{box.stderr}"
        for sign in BAD_SIGNS:
            assert sign not in box.stderr, f"{value!r}: bash says {sign!r}:\n{box.stderr}"
        for what, ok in case.expect(value, box):
            assert ok(calls), (
                f"{value!r} did not arrive literally: expected {what}; calls:\n{shown}\nstderr:\n{box.stderr}"
            )
    finally:
        MARKER.unlink(missing_ok=True)
        shutil.rmtree(box.dir, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(value=hostile)
@example(value=KITCHEN_SINK)
@example(value="*")
@example(value="-n")
@example(value="a'b\"c\\d`e$f\ng")
def test_hostile_value_is_quoted(sandbox, case, value):
    check_case(sandbox, case, value)


def test_sudo_sends_the_script_as_one_argument():
    sent = []
    host = Host(SimpleNamespace(host="h", user="u", port=22), "h", Run(config=None, recap=Recap(stream=io.StringIO())))
    host._exec = lambda command, stdin=None: sent.append(command) or (0, "", "")
    host.sudo(KITCHEN_SINK)
    assert shlex.split(sent[0]) == ["sudo", "-n", "bash", "-c", KITCHEN_SINK]


# --- a value inside awk: matched literally by REAL awk ---------------------------------------------


@settings(max_examples=40)
@given(value=hostile.map(one_word))
@example(value="/mnt/a\\tb")  # awk -v would turn this \t into a tab
@example(value=f'"){{system(">{M}")}}("')
def test_fstab_fact_matches_the_path_literally_with_real_awk(value):
    assert shutil.which("awk")
    with tempfile.TemporaryDirectory() as tmp:
        fstab = Path(tmp) / "fstab"
        wanted = storage.fstab_line("fs-1", value)
        near_misses = [storage.fstab_line("fs-1", p) for p in ("/other", value + "x", "x" + value)]
        fstab.write_text("\n".join([near_misses[0], wanted, *near_misses[1:], ""]))
        command = storage.fstab_fact(value).command
        assert command.count("/etc/fstab") == 1
        out = subprocess.run(
            ["bash", "-c", command.replace("/etc/fstab", shlex.quote(str(fstab)))],
            capture_output=True,
            check=False,
            timeout=120,
            env={"PATH": os.environ["PATH"], "MARKER": M, "LC_ALL": "C.UTF-8"},
        )
        assert not MARKER.exists()
        assert out.stdout.decode() == wanted + "\n", out.stderr.decode()


# --- a remote answer in the values the hub's configuration reads --------------------------------------


@settings(max_examples=60)
@given(value=hostile)
@example(value='10.0.0.5", "authenticator": "dummy')
def test_hub_ip_reaches_the_hub_config_as_data(value):
    """The hub's address (hostname -I on the hub) reaches the hub's configuration through
    hubswarm.json as it was: a string, never code or another value."""
    with tempfile.TemporaryDirectory() as srv:
        Path(srv, "userlist").write_text("")
        config = hub_config(srv=srv, authenticator="password")
        text = hub.values_text(hub.hub_values(config, value, "hub.example.com"))
        c = Config()
        hub_side_config.apply(c, json.loads(text), environ={"HUB_USER_PASSWORD": "u", "HUB_ADMIN_PASSWORD": "a"})
    assert c.JupyterHub.hub_bind_url == c.JupyterHub.hub_connect_url == f"http://{value}:8081"
    assert c.JupyterHub.authenticator_class.__name__ == "UserlistSharedPasswordAuthenticator"
