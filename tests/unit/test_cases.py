"""The tables of cases/*.yaml, run: steps on a fake host (facts in, commands and changes
out) and facts (the command a host runs, what it prints, the value a step reads)."""

import pytest
from cases import load, merged, plain

from fakehost import parsed
from tasks import settings
from tasks.core import HubswarmError
from tasks.settings import profiles, validate

STEPS = [case for name in ("node", "hub", "cluster", "course") for case in load(name, "steps")]


@pytest.mark.parametrize("case", STEPS)
def test_step(make_host, recap_out, case):
    """A case: ``step`` (and its ``args``) run on a host with ``facts`` (an answer: its
    text, ``[rc, text]``, or null for a failed probe; a list of such mappings is merged), ``check`` mode and ``config``
    overrides; ``after``, ``prints`` and ``fail_on`` say what a change script (by a part of
    it) makes true, prints or fails with. It expects the exact ``commands``, ``probes``
    and ``changes`` it names, an ``error`` (a regular expression), and words in the ``output``."""
    answers = {key: tuple(a) if isinstance(a, list) else a for key, a in merged(case.get("facts", {})).items()}
    host, runner = make_host(
        answers,
        check=case.get("check", False),
        **{k: case[k] for k in ("user", "address") if k in case},
        **case.get("config", {}),
    )
    runner.after.update(case.get("after", {}))
    runner.prints.update(case.get("prints", {}))
    runner.fail_on.update({needle: tuple(failure) for needle, failure in case.get("fail_on", {}).items()})
    if "error" in case:
        with pytest.raises(HubswarmError, match=case["error"]):
            case["step"](host, *case.get("args", []))
    else:
        case["step"](host, *case.get("args", []))
    for key, got in (("commands", runner.commands), ("probes", runner.probes), ("changes", host.record.changes)):
        if key in case:
            assert got == case[key]
    for words in case.get("output", []):
        assert words in recap_out.getvalue()


FACTS = load("facts", "facts")


@pytest.mark.parametrize("case", FACTS)
def test_fact(case):
    """A case: the ``fact``, the ``command`` it runs (when the case names it), what the
    command printed (``out``) with its exit status (``rc``, 0 unless named), and the
    ``value`` the fact parses that to."""
    fact = case["fact"]
    if "command" in case:
        assert fact.command == case["command"]
    assert plain(parsed(fact, case.get("out", ""), case.get("rc", 0))) == plain(case["value"])


PROFILES = load("profiles", "profiles")


@pytest.mark.parametrize("case", PROFILES)
def test_profiles_file(tmp_path, case):
    """A case: the profiles ``file`` (text, or bytes) and any other settings (``env``); the
    settings' ``problems`` (the file's path written FILE) or none, and then each of the
    ``profiles`` it gives, with the keys the case names."""
    path = tmp_path / "profiles.yaml"
    getattr(path, "write_bytes" if isinstance(case["file"], bytes) else "write_text")(case["file"])
    env = {"HUBSWARM_DOMAIN": "hub.example.com", **case.get("env", {}), "HUBSWARM_PROFILES": str(path)}
    section = settings.defaults(env)["hubswarm"]
    lines = [line.replace(str(path), "FILE") for line in validate.problems(section)]
    assert lines == case.get("problems", [])
    if "profiles" in case:
        found, _ = profiles.read(path, section)
        wanted = case["profiles"]
        assert len(found) == len(wanted)
        assert [{key: profile[key] for key in keys} for profile, keys in zip(found, wanted, strict=True)] == wanted
