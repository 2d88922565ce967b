"""facts.batch_script / parse_batch: one command for many probes, framed answers."""

import json
import shlex
import shutil
import subprocess

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
        timeout=120,
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
def test_real_bash_runs_the_facts_side_by_side(tmp_path):
    """Of twenty probes, the first of each lane waits until every lane's first has started: all
    answer, in the facts' order (lanes one after another, the first would wait its minute out and
    the batch outlive the test's bound)."""
    started = shlex.quote(str(tmp_path))
    # (Given up after a minute, so that lanes run one after another end, and the test fails.)
    wait_for_all = (
        f"n=0; until [ $(ls {started} | wc -l) -ge {F.LANES} ] || [ $((n += 1)) -gt 1200 ]; do sleep 0.05; done"
    )
    wanted = [
        F.Fact(f"probe {i}", f"touch {started}/{i}; {wait_for_all}; echo {i}" if i < F.LANES else f"echo {i}")
        for i in range(20)
    ]
    out = subprocess.run(["bash", "-c", F.batch_script(wanted)], capture_output=True, text=True, timeout=60).stdout
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


# --- joint probes: one command for the facts of a kind -------------------------------


def probe_in_bash(wanted):
    out = subprocess.run(["bash", "-c", F.batch_script(wanted)], capture_output=True, text=True, timeout=120).stdout
    return F.parse_batch(out, wanted)


def test_files_probed_together_answer_as_each_alone(tmp_path):
    """A file, a missing one, a folder, and names a shell or sha256sum could misread."""
    names = ["a b", "missing", "folder", "-dash", "back\\slash", "it's", "$(x)"]
    for name in names:
        if name == "folder":
            (tmp_path / name).mkdir()
        elif name != "missing":
            (tmp_path / name).write_text(name)
    (tmp_path / "a b").chmod(0o600)
    wanted = [F.file_state(str(tmp_path / name)) for name in names]
    script = F.batch_script(wanted)
    assert script.count("sha256sum") == 1 and len(probe_keys(script)) == 1
    together = probe_in_bash(wanted)
    alone = {}
    for fact in wanted:
        alone.update(probe_in_bash([fact]))
    assert together == alone
    assert together[wanted[0].key].text.split()[1] == "600"
    assert [together[f.key].ok for f in wanted] == [True, False, False, True, True, True, True]


def test_one_fact_of_a_kind_runs_its_own_command():
    unit = F.systemd_unit("nginx")
    assert F.probes_of([F.os_release(), unit]) == [F.os_release(), unit]


def test_a_joint_probe_takes_the_place_of_its_first_fact():
    nginx, docker, release = F.systemd_unit("nginx"), F.systemd_unit("docker"), F.os_release()
    probes = F.probes_of([nginx, release, docker])
    assert [p.command for p in probes] == [
        "systemctl show -p UnitFileState -p ActiveState nginx docker",
        release.command,
    ]
    assert probes_keys_of(probes) == [["unit:nginx", "unit:docker"], "os-release"]


def probes_keys_of(probes):
    return [json.loads(p.key.removeprefix(F.JOINT)) if p.key.startswith(F.JOINT) else p.key for p in probes]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            F.Answer(0, "ActiveState=active\nUnitFileState=enabled\n\nActiveState=inactive\nUnitFileState=\n"),
            [F.UnitState("enabled", "active"), F.UnitState("", "inactive")],
            id="in-order",
        ),
        pytest.param(F.Answer(127, ""), [F.UnitState("", "")] * 2, id="no-systemctl"),
        pytest.param(F.Answer(0, "ActiveState=active\n"), [F.UnitState("", "")] * 2, id="one-block-for-two"),
    ],
)
def test_units_probed_together(answer, expected):
    units = ["nginx", "nope.timer"]
    assert [F.unit_state(a) for a in F.units_split(answer, units)] == expected


@pytest.mark.parametrize(
    "out",
    [
        pytest.param("1\n0\n644 root root\n", id="no-hash-line"),
        pytest.param("1\n", id="cut-short"),
        pytest.param("1\n1\n644 root root\n" + "a" * 64 + "  /x\n", id="a-stat-missing"),
    ],
)
def test_files_answer_absent_when_the_joint_answer_does_not_add_up(out):
    assert F.files_split(F.Answer(0, out), ["/x", "/y"]) == [F.Answer(1, "")] * 2
