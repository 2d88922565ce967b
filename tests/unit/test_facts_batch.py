"""facts.batch_script / parse_batch: one command for many probes, framed answers."""

import shutil
import subprocess
import time

import pytest

from fakehost import frame, probe_keys
from tasks.core import facts as F


def test_batch_script_frames_every_fact_in_order():
    script = F.batch_script([F.Fact("a", "echo 1"), F.Fact("b c", "echo 2")])
    assert probe_keys(script) == ["a", "b c"]
    assert script.count(F.MARKER) == 2
    # each probe is silenced on stderr and reads no stdin
    assert script.count("2>/dev/null </dev/null") == 2


@pytest.mark.parametrize(
    "outputs",
    [
        pytest.param({"a": (0, "x")}, id="no-trailing-newline"),
        pytest.param({"a": (0, "")}, id="empty"),
        pytest.param({"a": (1, "")}, id="empty-failed"),
        pytest.param({"a": (3, "partial")}, id="non-zero-with-output"),
        pytest.param({"a": (0, "one\ntwo")}, id="multi-line"),
        pytest.param({"a": (0, "x"), "b": (0, ""), "c": (2, "y z")}, id="several"),
        pytest.param({"a": (0, "  indented")}, id="leading-space"),
    ],
)
def test_parse_batch_round_trip(outputs):
    answers = F.parse_batch(frame(outputs.items()))
    assert {k: (a.rc, a.out) for k, a in answers.items()} == outputs


@pytest.mark.parametrize("out", ["x\n", "a\nb\n", "x\n\n"])
def test_parse_batch_keeps_a_probes_trailing_newline(out):
    assert F.parse_batch(frame([("a", (0, out))]))["a"].out == out


@pytest.mark.parametrize(
    "printed, text",
    [("x\n", "x"), ("a\nb\n", "a\nb"), ("", ""), ("  v18.19.0  \n", "v18.19.0")],
)
def test_answer_text_is_stripped_whatever_the_newlines(printed, text):
    assert F.parse_batch(frame([("a", (0, printed))]))["a"].text == text


def test_answer_ok_follows_exit_code():
    answers = F.parse_batch(frame([("good", (0, "")), ("bad", (1, "")), ("odd", (127, "x"))]))
    assert [answers[k].ok for k in ("good", "bad", "odd")] == [True, False, False]
    assert answers["odd"].rc == 127


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_real_bash_round_trip():
    """The script really runs under bash and parses back to each probe's stdout and status."""
    wanted = [
        F.Fact("plain", "printf 'x'"),
        F.Fact("newline", "echo y"),
        F.Fact("empty", "true"),
        F.Fact("failed", "false"),
        F.Fact("status 3", "echo partial; (exit 3)"),
        F.Fact("stderr", "echo out; echo err >&2"),
        F.Fact("stdin", "cat"),  # must not hang: probes read /dev/null
    ]
    out = subprocess.run(
        ["bash", "-c", F.batch_script(wanted)],
        capture_output=True,
        text=True,
        timeout=10,
        stdin=subprocess.PIPE,
    ).stdout
    answers = F.parse_batch(out)
    assert list(answers) == [f.key for f in wanted]
    got = {k: (a.rc, a.text) for k, a in answers.items()}
    assert got == {
        "plain": (0, "x"),
        "newline": (0, "y"),
        "empty": (0, ""),
        "failed": (1, ""),
        "status 3": (3, "partial"),
        "stderr": (0, "out"),
        "stdin": (0, ""),
    }


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_real_bash_runs_the_facts_side_by_side():
    """Twenty probes of half a second answer in far less than ten, in the facts' order."""
    wanted = [F.Fact(f"slow {i}", f"sleep 0.5; echo {i}") for i in range(20)]
    started = time.monotonic()
    out = subprocess.run(["bash", "-c", F.batch_script(wanted)], capture_output=True, text=True, timeout=30).stdout
    assert time.monotonic() - started < 5
    answers = F.parse_batch(out)
    assert list(answers) == [f.key for f in wanted]
    assert [a.text for a in answers.values()] == [str(i) for i in range(20)]


def test_a_key_names_one_probe():
    """Answers are cached by key: two facts share a key only when they run the same probe
    (else one would get the other's answer), and every key survives the batch framing."""
    made = [
        F.os_release(),
        F.addresses(),
        F.file_state("/srv/x y"),
        F.file_state("/srv/x"),
        F.file_state("/srv/x y "),
        F.dir_state("/srv/x y"),
        F.dir_state("/srv"),
        F.packages_installed(["nginx", "curl"]),
        F.packages_installed(["curl", "nginx"]),
        F.packages_installed(["nginx"]),
        F.packages_installed(["nginx", "curl", "rsync"]),  # (no "," in a package name)
        F.packages_installed([], ["nginx", "curl"]),
        F.packages_installed(["nginx"], ["curl"]),
        F.packages_installed(["nginx", "curl"], ["curl"]),  # (nor a ";")
        F.systemd_unit("docker"),
        F.systemd_unit("nginx"),
        F.instance_metadata("public-hostname"),
        F.instance_metadata("public-ipv4"),
    ]
    for a in made:
        for b in made:
            assert (a.key == b.key) == (a.command == b.command), (a, b)
    keys = list(dict.fromkeys(f.key for f in made))
    assert probe_keys(F.batch_script([F.Fact(k, "true") for k in keys])) == keys


def test_file_state_quotes_the_path():
    assert "'/srv/x y'" in F.file_state("/srv/x y").command
