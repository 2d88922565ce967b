"""Facts: read-only probes of a host, batched into one remote command.

A fact owns its command (a shell snippet run as root that changes nothing) and
its parser. Tasks ask a :class:`~tasks.core.host.Host` for the facts they
need; the host runs every fact it does not know yet in a single SSH command
(side by side), caches the answers until something on the host changes, and
hands back each fact's parsed value.
"""

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

MARKER = "@@hubswarm-fact@@"
# The key of one probe that answers several facts: JOINT and a JSON list of their keys.
JOINT = "joint:"
BACKSLASH = "\\"


@dataclass(frozen=True)
class Answer:
    """What a probe printed (stdout only) and its exit status."""

    rc: int
    out: str

    @property
    def ok(self):
        return self.rc == 0

    @property
    def text(self):
        return self.out.strip()


# --- parsers: an Answer in, the value a step reads out ---------------------------


def text(answer):
    """The output, stripped ("" when the probe printed nothing)."""
    return answer.text


def output(answer):
    """The output exactly as printed (a manifest, a file's content)."""
    return answer.out


def words(answer):
    return answer.out.split()


def lines(answer):
    """The output's non-blank lines."""
    return [line for line in answer.out.splitlines() if line.strip()]


def succeeded(answer):
    """Whether the probe's command succeeded (``test -e``, ``command -v``...)."""
    return answer.ok


def raw(answer):
    """The :class:`Answer` itself: exit status and output both matter."""
    return answer


@dataclass(frozen=True)
class Joint:
    """How facts of one kind are probed together: ``command(subjects)`` is one command
    for all of them, and ``split(answer, subjects)`` gives back, in order, the Answer
    each fact's own command would have. Every command a batch runs costs the host a
    fork and an exec: seven ``systemctl show`` cost four times what one costs."""

    kind: str
    command: Callable = field(compare=False)
    split: Callable = field(compare=False)


@dataclass(frozen=True)
class Fact:
    """A named read-only probe: ``command`` runs as root under ``bash``;
    ``parse`` turns its :class:`Answer` into what :meth:`Host.fact` returns.
    With a ``joint``, a batch may probe the fact's ``subject`` along with others."""

    key: str
    command: str
    parse: Callable = field(default=text, compare=False)
    joint: Joint | None = field(default=None, compare=False)
    subject: str = field(default="", compare=False)


# Facts run side by side in this many shells, each running its share in turn: a shell
# per fact would cost more in forks than it gains.
LANES = 8


def joint_groups(facts):
    """{joint: its facts} for each :class:`Joint` that more than one of ``facts`` has."""
    groups = {}
    for fact in facts:
        if fact.joint:
            groups.setdefault(fact.joint, []).append(fact)
    return {joint: members for joint, members in groups.items() if len(members) > 1}


def joint_key(members):
    return JOINT + json.dumps([m.key for m in members])


def probes_of(facts):
    """What a batch runs for ``facts``: each fact's own command, except one for the facts
    that share a :class:`Joint`, in the place of the first of them."""
    groups, probes = joint_groups(facts), []
    for fact in facts:
        members = groups.get(fact.joint)
        if not members:
            probes.append(fact)
        elif fact is members[0]:
            probes.append(Fact(joint_key(members), fact.joint.command([m.subject for m in members])))
    return probes


def batch_script(facts):
    """One bash script that runs every fact, side by side (facts only read, so none waits
    for another: the host's cores share the work), and prints each answer framed, in order."""
    facts = probes_of(facts)
    # Each answer waits in a file of its own, in RAM (/run) where root can write.
    parts = ["d=$(mktemp -d /run/hubswarm-facts.XXXXXX 2>/dev/null || mktemp -d) || exit", "trap 'rm -rf \"$d\"' EXIT"]
    for lane in range(min(LANES, len(facts))):
        parts.append("{")
        for index in range(lane, len(facts), LANES):
            parts.append(
                f"{{ {{ {facts[index].command}\n}} 2>/dev/null </dev/null; "
                f"printf '\\n{MARKER} %s %d\\n' {shlex.quote(facts[index].key)} $?\n}} >\"$d/{index}\""
            )
        parts.append("} &")
    parts.append(
        f"wait; for i in {{0..{len(facts) - 1}}}; do IFS= read -r -d '' a <\"$d/$i\"; printf '%s' \"$a\"; done"
    )
    return "\n".join(parts)


def parse_batch(output, facts=()):
    """Split the framed output of :func:`batch_script` for ``facts`` into answers by key."""
    answers = framed_answers(output)
    for joint, members in joint_groups(facts).items():
        joined = answers.pop(joint_key(members), None)
        if joined is not None:
            answers.update(
                zip((m.key for m in members), joint.split(joined, [m.subject for m in members]), strict=True)
            )
    return answers


def framed_answers(output):
    """The answers, by key, of framed output: each probe's output, then its marker line."""
    answers = {}
    body = []
    for line in output.split("\n"):
        if line.startswith(MARKER + " "):
            key, rc = line[len(MARKER) + 1 :].rsplit(" ", 1)
            # The newline batch_script adds before the marker ends the last body line.
            answers[key] = Answer(int(rc), "\n".join(body))
            body = []
        else:
            body.append(line)
    return answers


# --- common facts --------------------------------------------------------------


def os_release():
    """``/etc/os-release`` as a dict (quotes removed)."""
    return Fact("os-release", "cat /etc/os-release", parse=os_release_fields)


def os_release_fields(answer):
    fields = {}
    for line in answer.out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    return fields


def files_command(paths):
    """Per path a line, 1 for a file and 0 for none; then the files' ``stat`` lines and
    their ``sha256sum`` lines, in the same order: three processes, however many files."""
    listed = " ".join(shlex.quote(p) for p in paths)
    return (
        f'f=(); for p in {listed}; do if test -f "$p"; then f+=("$p"); echo 1; else echo 0; fi; done; '
        'if ((${#f[@]})); then stat -c \'%a %U %G\' -- "${f[@]}" && sha256sum -- "${f[@]}"; fi'
    )


def files_split(answer, paths):
    """Each path's :func:`file_state` answer from a :func:`files_command` answer. Should a
    file change between the test and the reading, every path reads as absent: what writes
    it then is what the next probe would ask for anyway."""
    found = answer.out.splitlines()
    flags, rest = found[: len(paths)], found[len(paths) :]
    present = flags.count("1")
    if not answer.ok or flags.count("0") + present != len(paths) or len(rest) != 2 * present:
        return [Answer(1, "")] * len(paths)
    # sha256sum starts a line with a backslash when it escapes the name; the hash follows.
    states = iter(
        f"{line.removeprefix(BACKSLASH)[:64]} {state}\n"
        for state, line in zip(rest[:present], rest[present:], strict=True)
    )
    return [Answer(0, next(states)) if flag == "1" else Answer(1, "") for flag in flags]


FILES = Joint("file", files_command, files_split)


def file_state(path):
    """ "sha256 mode owner group" of a file; "" when absent."""
    q = shlex.quote(path)
    return Fact(
        f"file:{path}",
        f"test -f {q} && s=$(stat -c '%a %U %G' {q}) && h=$(sha256sum < {q}) && printf '%s %s\\n' \"${{h%% *}}\" \"$s\"",
        joint=FILES,
        subject=path,
    )


def dir_state(path):
    """ "mode owner group" of a folder; "" when absent."""
    q = shlex.quote(path)
    return Fact(f"dir:{path}", f"test -d {q} && stat -c '%a %U %G' {q}")


def file_content(path):
    return Fact(f"content:{path}", f"cat {shlex.quote(path)}", parse=output)


def packages_installed(deb=(), rpm=()):
    """The set of packages installed: of the ``deb`` names where dpkg is, else of the
    ``rpm`` names. One probe serves either kind of host, so a step lists it before it
    knows which kind the host is."""

    def listed(names):
        return " ".join(shlex.quote(n) for n in sorted(names))

    by_dpkg = f"dpkg-query -W -f='${{Package}} ${{Status}}\\n' {listed(deb)} 2>/dev/null | awk '$4 == \"installed\" {{print $1}}'"
    by_rpm = f"rpm -q --qf '%{{NAME}}\\n' {listed(rpm)} 2>/dev/null | grep -v 'not installed'"
    return Fact(
        f"packages:{','.join(sorted(deb))};{','.join(sorted(rpm))}",
        f"if command -v dpkg-query >/dev/null; then {by_dpkg if deb else ':'}; else {by_rpm if rpm else ':'}; fi",
        parse=lambda answer: frozenset(answer.out.split()),
    )


@dataclass(frozen=True)
class UnitState:
    """What systemd says of a unit: ``enabled`` ("enabled", "disabled"...) and ``active``."""

    enabled: str
    active: str

    @property
    def running(self):
        return self.active == "active"


def unit_state(answer):
    """The :class:`UnitState` of ``systemctl show``'s ``Property=value`` lines."""
    shown = dict(line.partition("=")[::2] for line in answer.out.splitlines())
    return UnitState(shown.get("UnitFileState", ""), shown.get("ActiveState", ""))


def units_command(units):
    return "systemctl show -p UnitFileState -p ActiveState " + " ".join(shlex.quote(u) for u in units)


def units_split(answer, units):
    """Each unit's answer: systemctl shows the units in the order asked, a blank line
    between two (a unit that does not exist too, as inactive)."""
    blocks = answer.out.strip("\n").split("\n\n")
    if len(blocks) != len(units):
        return [Answer(answer.rc or 1, "")] * len(units)
    return [Answer(answer.rc, block + "\n") for block in blocks]


UNITS = Joint("unit", units_command, units_split)


def systemd_unit(unit):
    """A systemd unit's :class:`UnitState`, in one systemctl run (shared with the others
    a batch asks for)."""
    return Fact(f"unit:{unit}", units_command([unit]), parse=unit_state, joint=UNITS, subject=unit)


def addresses():
    """The host's IPv4/IPv6 addresses, a list."""
    return Fact("addresses", "hostname -I", parse=words)


def instance_metadata(item):
    """An EC2 instance metadata item (IMDSv2), "" when missing; the session token stays off argv."""
    return Fact(
        f"imds:{item}",
        "t=$(curl -sf -X PUT --max-time 2 -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
        "http://169.254.169.254/latest/api/token) && "
        "printf 'X-aws-ec2-metadata-token: %s\\n' \"$t\" | curl -sf --max-time 2 -H @- "
        + shlex.quote(f"http://169.254.169.254/latest/meta-data/{item}"),
    )
