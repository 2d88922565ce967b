"""Facts: read-only probes of a host, batched into one remote command.

A fact is a shell snippet run as root that changes nothing. Tasks ask a
:class:`~tasks.core.host.Host` for the facts they need; the host runs every
fact it does not know yet in a single SSH command and caches the answers until
something on the host changes.
"""

import shlex
from dataclasses import dataclass

MARKER = "@@hubswarm-fact@@"


@dataclass(frozen=True)
class Fact:
    """A named read-only probe: ``command`` runs as root under ``bash``."""

    key: str
    command: str


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


def batch_script(facts):
    """One bash script that runs every fact and frames each answer."""
    parts = []
    for fact in facts:
        parts.append(
            f"{{ {fact.command}\n}} 2>/dev/null </dev/null; printf '\\n{MARKER} %s %d\\n' {shlex.quote(fact.key)} $?"
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
    return Fact("os-release", "cat /etc/os-release")


def file_state(path):
    """sha256, mode, owner and group of a file; empty answer when absent."""
    q = shlex.quote(path)
    return Fact(
        f"file:{path}",
        f"test -f {q} && printf '%s %s\\n' \"$(sha256sum < {q} | cut -d' ' -f1)\" \"$(stat -c '%a %U %G' {q})\"",
    )


def dir_state(path):
    q = shlex.quote(path)
    return Fact(f"dir:{path}", f"test -d {q} && stat -c '%a %U %G' {q}")


def command_output(key, command):
    """Any read-only command, cached under ``key``."""
    return Fact(key, command)


def packages_installed(names):
    """Which of ``names`` are installed, by dpkg or else rpm, one per line."""
    listed = " ".join(shlex.quote(n) for n in sorted(names))
    return Fact(
        "packages:" + ",".join(sorted(names)),
        f"if command -v dpkg-query >/dev/null; then "
        f"dpkg-query -W -f='${{Package}} ${{Status}}\\n' {listed} 2>/dev/null | "
        "awk '$4 == \"installed\" {print $1}'; "
        f"else rpm -q --qf '%{{NAME}}\\n' {listed} 2>/dev/null | grep -v 'not installed'; fi",
    )


def systemd_unit(unit):
    """``enabled`` and ``active`` state of a systemd unit, one per line."""
    q = shlex.quote(unit)
    return Fact(
        f"unit:{unit}",
        f"systemctl is-enabled {q} 2>/dev/null || true; systemctl is-active {q} 2>/dev/null || true",
    )


def addresses():
    """The host's IPv4/IPv6 addresses, space separated."""
    return Fact("addresses", "hostname -I")


def instance_metadata(item):
    """An EC2 instance metadata item (IMDSv2); the session token stays off argv."""
    return Fact(
        f"imds:{item}",
        "t=$(curl -sf -X PUT --max-time 2 -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
        "http://169.254.169.254/latest/api/token) && "
        "printf 'X-aws-ec2-metadata-token: %s\\n' \"$t\" | curl -sf --max-time 2 -H @- "
        + shlex.quote(f"http://169.254.169.254/latest/meta-data/{item}"),
    )
