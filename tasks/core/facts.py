"""Facts: read-only probes of a host, batched into one remote command.

A fact owns its command (a shell snippet run as root that changes nothing) and
its parser. Tasks ask a :class:`~tasks.core.host.Host` for the facts they
need; the host runs every fact it does not know yet in a single SSH command
(side by side), caches the answers until something on the host changes, and
hands back each fact's parsed value.
"""

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

MARKER = "@@hubswarm-fact@@"


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
class Fact:
    """A named read-only probe: ``command`` runs as root under ``bash``;
    ``parse`` turns its :class:`Answer` into what :meth:`Host.fact` returns."""

    key: str
    command: str
    parse: Callable = field(default=text, compare=False)


# Facts run side by side in this many shells, each running its share in turn: a shell
# per fact would cost more in forks than it gains.
LANES = 8


def batch_script(facts):
    """One bash script that runs every fact, side by side (facts only read, so none waits
    for another: the host's cores share the work), and prints each answer framed, in order."""
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


def parse_batch(output):
    """Split the framed output of :func:`batch_script` into answers by key."""
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


def file_state(path):
    """ "sha256 mode owner group" of a file; "" when absent."""
    q = shlex.quote(path)
    return Fact(
        f"file:{path}",
        f"test -f {q} && s=$(stat -c '%a %U %G' {q}) && h=$(sha256sum < {q}) && printf '%s %s\\n' \"${{h%% *}}\" \"$s\"",
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


def systemd_unit(unit):
    """A systemd unit's :class:`UnitState`, in one systemctl run."""
    return Fact(f"unit:{unit}", f"systemctl show -p UnitFileState -p ActiveState {shlex.quote(unit)}", parse=unit_state)


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
