"""Host: batched cached facts, sudo errors, ensure / ensure_file / ensure_dir, the recap."""

import hashlib
import io
import shlex
import socket
from types import SimpleNamespace

import pytest

from fakehost import FakeRunner
from tasks.core import HubswarmError, secret
from tasks.core.changes import recorded
from tasks.core.host import Host, file_diff
from tasks.core.recap import Recap
from tasks.core.run import Run
from tasks.core.secrets import MASK

# --- sudo ----------------------------------------------------------------------------


def bare_host(result):
    host = Host(SimpleNamespace(host="10.0.0.5", user="admin", port=22), "hub1", Run(config=None))
    calls = []

    def run(command, stdin=None):
        calls.append((command, stdin.read().decode() if stdin is not None else None))
        return result.exited, result.stdout, result.stderr

    host._exec = run
    return host, calls


def test_sudo_wraps_script_in_sudo_n_bash():
    host, calls = bare_host(SimpleNamespace(exited=0, stdout="out\n", stderr=""))
    assert host.sudo("echo 'a b'; id", stdin="data") == "out\n"
    assert calls == [("sudo -n bash -c " + shlex.quote("echo 'a b'; id"), "data")]


def test_sudo_needs_passwordless_sudo():
    host, _ = bare_host(SimpleNamespace(exited=1, stdout="", stderr="sudo: a password is required\n"))
    with pytest.raises(HubswarmError) as err:
        host.sudo("true")
    message = str(err.value)
    assert "\n" not in message
    assert "passwordless sudo" in message and "hub1" in message and "admin" in message


@pytest.mark.parametrize(
    "stdout, stderr, tail",
    [
        ("", "line one\nmv: cannot move: Permission denied\n", "mv: cannot move: Permission denied"),
        ("only stdout\nlast\n", "", "last"),
        ("", "", ""),
    ],
)
def test_sudo_failure_is_one_line_without_the_payload(stdout, stderr, tail):
    payload = 'OAUTH_CLIENT_SECRET="payload-value-123"\n'
    host, _ = bare_host(SimpleNamespace(exited=2, stdout=stdout, stderr=stderr))
    with pytest.raises(HubswarmError) as err:
        host.sudo("cat > /x", stdin=payload, what="file /x")
    assert str(err.value) == f"file /x failed (exit 2): {tail}"
    assert "payload-value-123" not in str(err.value)


# --- facts ---------------------------------------------------------------------------


def test_facts_are_batched_and_cached(make_host):
    from tasks.core import facts as F

    host, runner = make_host({"os-release": "ID=debian", "addresses": "10.0.0.5 172.17.0.1"})
    answers = host.facts(F.os_release(), F.addresses(), F.os_release())
    assert answers == ({"ID": "debian"}, ["10.0.0.5", "172.17.0.1"], {"ID": "debian"})
    assert runner.probes == [["os-release", "addresses"]]
    assert host.fact(F.addresses()) == ["10.0.0.5", "172.17.0.1"]
    host.facts(F.addresses(), F.Fact("which:node", "command -v node"))
    assert runner.probes == [["os-release", "addresses"], ["which:node"]]
    host.forget()
    host.fact(F.addresses())
    assert runner.probes[-1] == ["addresses"]
    assert runner.commands == []


@pytest.mark.parametrize(
    "address, own, ip",
    [("10.0.0.5", "172.17.0.1 10.0.0.5", "10.0.0.5"), ("54.1.2.3", "10.0.0.5 172.17.0.1", "10.0.0.5")],
)
def test_private_ip(make_host, address, own, ip):
    host, _ = make_host({"addresses": own}, address=address)
    assert host.private_ip() == ip


def test_private_ip_none(make_host):
    host, _ = make_host({"addresses": ""})
    with pytest.raises(HubswarmError, match="reports no IP address"):
        host.private_ip()


# --- ensure --------------------------------------------------------------------------


def test_ensure_empty_script_is_no_change(make_host):
    host, runner = make_host()
    assert host.ensure("nothing", "") is False
    assert runner.calls == [] and host.record.changes == []


def test_ensure_runs_records_and_forgets(make_host, recap_out):
    from tasks.core import facts as F

    host, runner = make_host({"addresses": "10.0.0.5"})
    host.fact(F.addresses())
    assert host.ensure("a change", "touch /x") is True
    assert runner.commands == ["touch /x"]
    assert runner.calls[0].command.startswith("sudo -n bash -c 'exec 9>>/run/lock/hubswarm.lock; flock")
    assert host.record.changes == ["a change"]
    assert recap_out.getvalue() == "[10.0.0.5] test-step: a change\n"
    host.fact(F.addresses())
    assert len(runner.probes) == 2  # re-probed after the change


def test_ensure_in_check_mode_only_says(make_host, recap_out):
    host, runner = make_host(check=True)
    assert host.ensure("a change", "touch /x") is True
    assert runner.calls == []
    assert host.record.changes == ["a change"]
    assert recap_out.getvalue() == "[10.0.0.5] test-step: would a change\n"


def test_ensure_failure_raises(make_host):
    host, runner = make_host()
    runner.fail_on["touch"] = (1, "touch: read-only file system")
    with pytest.raises(HubswarmError, match=r"^a change failed \(exit 1\): touch: read-only file system$"):
        host.ensure("a change", "touch /x")


@pytest.mark.parametrize(
    "state, changes", [("700 root root", False), ("755 root root", True), ("", True), ("700 admin root", True)]
)
def test_ensure_dir(make_host, state, changes):
    host, runner = make_host({"dir:/srv/j h": state})
    assert host.ensure_dir("/srv/j h", mode="700") is changes
    assert runner.commands == (["install -d -m 700 -o root -g root '/srv/j h'"] if changes else [])


CONTENT = 'line 1\nTOKEN="very-secret-content"\n'
SHA = hashlib.sha256(CONTENT.encode()).hexdigest()


def test_ensure_file_atomic_write_with_content_on_stdin(make_host):
    host, runner = make_host({"file:/etc/my app.conf": ""})
    assert host.ensure_file("/etc/my app.conf", CONTENT, mode="640", owner="root", group="adm") is True
    [call] = runner.calls
    assert "very-secret-content" not in call.command
    assert "very-secret-content" not in call.script
    assert call.stdin == CONTENT
    script = call.script
    assert script.startswith("set -e; ")
    assert 'mktemp "$d/.hubswarm.XXXXXX"' in script and "d=$(dirname '/etc/my app.conf')" in script
    assert 'cat > "$t"' in script
    assert 'chown root:adm "$t"; chmod 640 "$t"; mv -f "$t" \'/etc/my app.conf\'' in script
    # order: write, own, mode, then the atomic rename
    assert script.index("cat >") < script.index("chown") < script.index("chmod") < script.index("mv -f")
    assert "trap 'rm -f \"$t\"' EXIT" in script
    assert host.record.changes == ["write /etc/my app.conf (640 root:adm)"]


@pytest.mark.parametrize(
    "state, changes",
    [
        (f"{SHA} 644 root root", False),
        (f"{SHA} 600 root root", True),  # mode only
        (f"{SHA} 644 admin root", True),  # owner only
        ("0" * 64 + " 644 root root", True),  # content
        ("", True),  # absent
    ],
)
def test_ensure_file_idempotent(make_host, state, changes):
    host, runner = make_host({"file:/etc/x": state})
    assert host.ensure_file("/etc/x", CONTENT) is changes
    assert len(runner.calls) == int(changes)


@pytest.mark.parametrize("sha_same", [True, False])
def test_ensure_file_check_mode_shows_a_diff_and_writes_nothing(make_host, recap_out, sha_same):
    state = f"{SHA if sha_same else '0' * 64} 600 root root"
    host, runner = make_host({"file:/etc/x": state, "content:/etc/x": "line 1\nold\n"}, check=True)
    assert host.ensure_file("/etc/x", CONTENT) is True
    assert runner.calls == []
    out = recap_out.getvalue()
    if sha_same:  # only the mode differs: no need to read the old content
        assert "content:/etc/x" not in runner.probed
        assert out == "[10.0.0.5] test-step: would write /etc/x (644 root:root)\n"
    else:
        assert "would change /etc/x:\n--- /etc/x (now)\n+++ /etc/x (wanted)\n" in out
        assert '-old\n+TOKEN="very-secret-content"' in out


# --- file_diff ------------------------------------------------------------------------


def test_file_diff_secret_hides_values():
    text = file_diff("/srv/env", 'A="old-a"\nB="same"\n', 'A="new-a"\nB="same"\n# c\n', secret=True)
    assert "old-a" not in text and "new-a" not in text and "same" not in text
    assert "+# c" in text


def test_file_diff_secret_shows_which_lines_changed():
    text = file_diff("/srv/env", 'A="old-a"\nB="same"\n', 'A="new-a"\nB="same"\n', secret=True)
    assert "old-a" not in text and "new-a" not in text
    changed = [line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert [line[:3] for line in changed] == ["-A=", "+A="]


def test_file_diff_masks_registered_secrets():
    secret("registered-secret")
    assert "registered-secret" not in file_diff("/x", "", "value registered-secret\n")


def test_file_diff_mode_only():
    assert file_diff("/x", "same\n", "same\n") == "(mode or owner only)"


# --- recap ------------------------------------------------------------------------------


def make_recap(check=False):
    out = io.StringIO()
    recap = Recap(stream=out)
    a = recap.start("hub1", "install-nodejs", check)
    b = recap.start("hub1", "write-env", check)
    b.changes.append("file /srv/jupyterhub/env")
    c = recap.start("worker-long-name", "install-docker", check)
    c.error = "docker install failed (exit 1): E: no space"
    for r, t in ((a, 0.04), (b, 1.26), (c, 12.0)):
        r.elapsed = t
    return recap, out


def test_recap_table():
    recap, _ = make_recap()
    assert recap.table().split("\n") == [
        "",
        "RECAP",
        "HOST              TASK            STATUS   TIME",
        "hub1              install-nodejs  ok       0.0s",
        "hub1              write-env       changed  1.3s",
        "worker-long-name  install-docker  failed   12.0s",
        "ok=1 changed=1 failed=1",
        "failed: worker-long-name install-docker: docker install failed (exit 1): E: no space",
        "ssh: 0 connection(s), 0 remote command(s)",
    ]
    assert [r.task for r in recap.failed()] == ["install-docker"]


def test_recap_table_check_mode_wording():
    recap, _ = make_recap(check=True)
    lines = recap.table().split("\n")
    assert lines[1] == "RECAP (check mode: nothing was changed)"
    assert "would change" in lines[4]
    assert lines[-3] == "ok=1 would_change=1 failed=1"


def test_recap_empty_prints_nothing():
    out = io.StringIO()
    recap = Recap(stream=out)
    assert recap.table() == ""
    recap.print_table()
    assert out.getvalue() == ""


def test_recap_masks_secrets_in_table_and_notes():
    recap, out = make_recap()
    secret("hunter2-secret")
    recap.records[2].error = "failed: token hunter2-secret rejected"
    recap.records[1].task = "task-hunter2-secret"
    recap.note(recap.records[1], "wrote hunter2-secret")
    check_record = recap.start("hub1", "x", True)
    recap.note(check_record, "set hunter2-secret")
    recap.print_table()
    text = out.getvalue()
    assert "hunter2-secret" not in text
    assert f"[hub1] task-{MASK}: wrote {MASK}\n" in text
    assert f"[hub1] x: would set {MASK}\n" in text
    assert f"failed: token {MASK} rejected" in text


def test_hosts_in_parallel_never_share_a_line():
    """Each line reaches the stream whole, in one write: hosts' notes never run into each other."""
    import threading

    class Writes(io.StringIO):
        def __init__(self):
            super().__init__()
            self.writes = []

        def write(self, text):
            self.writes.append(text)
            return super().write(text)

    out = Writes()
    recap = Recap(stream=out)
    records = [recap.start(f"10.213.0.{n}", "install-packages", False) for n in range(8)]
    threads = [
        threading.Thread(target=lambda r=r: [recap.note(r, f"install rsync {i}") for i in range(50)]) for r in records
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(out.writes) == 400
    assert all(text.endswith("\n") and text.count("\n") == 1 for text in out.writes)


def test_secret_register_ignores_short_and_empty_values():
    from tasks.core.secrets import mask

    assert secret("abc") == "abc" and secret("") == "" and secret(None) is None
    assert mask("abc xyz") == "abc xyz"
    secret("abcd")
    secret("abcdef")
    assert mask("abcdef abcd") == f"{MASK} {MASK}"  # longest first
    assert mask("") == "" and mask(None) is None


def test_fake_runner_answers_defaults():
    runner = FakeRunner({})
    from tasks.core import facts as F

    assert runner.probe([F.Fact("which:x", "command -v x")]) == {"which:x": F.Answer(1, "")}


def test_changes_wait_for_a_killed_runs_leftover(tmp_path):
    """What a killed run left running (apt, pip) holds the change lock: the next
    change starts only after it ended. Run in real bash with the lock in tmp_path."""
    import subprocess
    import time

    from tasks.core import host as host_module

    lock = host_module.CHANGE_LOCK.replace(host_module.LOCK_FILE, str(tmp_path / "lock"))
    log = tmp_path / "log"
    leftover = subprocess.Popen(["bash", "-c", lock + f"echo left-start >> {log}; sleep 1; echo left-end >> {log}"])
    while not log.exists():
        time.sleep(0.01)
    subprocess.run(["bash", "-c", lock + f"echo next >> {log}"], check=True)
    leftover.wait()
    assert log.read_text().split() == ["left-start", "left-end", "next"]


# --- the SSH connection's socket ------------------------------------------------------


class OpeningConnection:
    """Stands in for a Fabric Connection: records the socket its open() was given."""

    def __init__(self, port, gateway=None):
        self.host, self.port, self.gateway, self.connect_timeout = "127.0.0.1", port, gateway, 5
        self.connect_kwargs, self.seen = {}, None

    def open(self):
        sock = self.connect_kwargs.get("sock")
        self.seen = sock and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_ssh_runs_over_a_socket_without_nagle(listener):
    """Else each command waits 40 ms for a delayed ACK; the socket stays the connection's only."""
    connection = OpeningConnection(listener)
    Host(connection, "127.0.0.1", Run(config=SimpleNamespace())).connect()
    assert connection.seen == 1
    assert connection.connect_kwargs == {}


def test_a_gateway_carries_the_connection_itself(listener):
    connection = OpeningConnection(listener, gateway=object())
    Host(connection, "127.0.0.1", Run(config=SimpleNamespace())).connect()
    assert connection.seen is None


def test_a_host_that_refuses_is_an_os_error():
    """Host.open makes it Unreachable, as when paramiko made the socket."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(OSError):
        Host(OpeningConnection(port), "127.0.0.1", Run(config=SimpleNamespace())).connect()


def test_the_socket_stays_out_of_the_config_every_connection_shares(listener):
    """A host that connects while another does must not find the other's socket."""
    from fabric import Config, Connection

    config = Config(overrides={"connect_kwargs": {"key_filename": ["/k"]}})
    connection, seen = Connection("127.0.0.1", port=listener, config=config), {}

    def open_():
        seen["own"] = connection.connect_kwargs.get("sock")
        seen["other"] = Connection("127.0.0.2", config=config).connect_kwargs.get("sock")

    connection.open = open_
    Host(connection, "127.0.0.1", Run(config=SimpleNamespace())).connect()
    assert seen["own"] is not None and seen["other"] is None
    assert "sock" not in connection.connect_kwargs and "sock" not in config.connect_kwargs


# --- the change engine hosts and the AWS account share -----------------------------------


@pytest.mark.parametrize(
    "check, what, action, made, said",
    [
        (False, "create group g", True, ["ran"], ["[r] t: create group g"]),
        (True, "create group g", True, [], ["[r] t: would create group g"]),
        (False, ["add tcp 22", "add tcp 80"], True, ["ran"], ["[r] t: add tcp 22", "[r] t: add tcp 80"]),
        (False, [], False, [], ["[r] t: ok"]),  # nothing to do
    ],
)
def test_a_recorded_target_changes_once_and_only_outside_check_mode(check, what, action, made, said):
    recap = Recap(stream=io.StringIO())
    done = []
    with recorded(Run(SimpleNamespace(), check=check, recap=recap), "r", "t") as target:
        assert target.ensure(what, action and (lambda: done.append("ran"))) is action
    assert done == made
    assert recap.stream.getvalue().splitlines() == said
    assert recap.records[0].changes == ([what] if isinstance(what, str) else what)


def test_a_failed_change_is_one_line_and_stops_the_run():
    recap = Recap(stream=io.StringIO())
    with pytest.raises(HubswarmError, match="^r t: KeyError: 'GroupId'$"):
        with recorded(Run(SimpleNamespace(), recap=recap), "r", "t") as target:
            target.ensure("create group g", lambda: {}["GroupId"])
    assert recap.records[0].error == "KeyError: 'GroupId'"
