"""How a userlist email becomes a user name on the hub: one rule, used everywhere.

hubswarm checks the local ``userlist`` with it before any host is touched, and
``pip-install`` installs this very file into the hub's virtualenv, where the hub's
configuration (:mod:`.config`) reads the userlist with it: the hub, its
authenticator and the home tool see the same names. Standard library only.

The rule (documented in the README): the email's local part, lower-cased;
accents folded to plain letters (``rené`` -> ``rene``); every run of other
characters than ``a-z``, ``0-9``, ``.``, ``_`` and ``-`` becomes one ``-``
(``first.last+cs101`` -> ``first.last-cs101``, ``o'brien`` -> ``o-brien``);
leading and trailing ``.``, ``_`` and ``-`` dropped. What is left must be a
name of :data:`NAME_PATTERN` (so never ``.`` or ``..``) whose notebook service
name fits Docker's 63 characters; otherwise the line is refused.
"""

import re
import string
import sys
import unicodedata
from dataclasses import dataclass

#: A user name: also a home folder and part of a swarm service name.
#: ``files/hubswarm-home`` checks names against this same pattern.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
#: DockerSpawner names a user's service ``jupyter-<escaped name>``.
SERVICE_PREFIX = "jupyter-"
SERVICE_NAME_MAX = 63
#: The words a userlist line may have after its email (and any number of ``group:NAME``).
ROLES = ("admin", "instructor")
#: The group every user a line marks ``instructor`` is in: the course's teachers.
INSTRUCTORS = "instructors"
#: A group's name, after ``group:``.
GROUP_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"
WORDS = "write 'email [admin] [instructor] [group:NAME ...]'"

_NAME = re.compile(NAME_PATTERN)
_GROUP = re.compile(GROUP_PATTERN)
_OTHER = re.compile(r"[^a-z0-9._-]+")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SERVICE_SAFE = set(string.ascii_lowercase + string.digits)


class UserlistError(ValueError):
    """A userlist line that cannot become a user: what is wrong and the fix."""


@dataclass(frozen=True)
class Line:
    """One userlist line's user: their email, name on the hub, roles and groups."""

    number: int
    email: str
    name: str
    admin: bool = False
    instructor: bool = False
    groups: tuple = ()


def service_name(name):
    """The swarm service DockerSpawner makes for ``name`` (its escaping: ``-`` + hex)."""
    return SERVICE_PREFIX + "".join(c if c in _SERVICE_SAFE else "".join(f"-{b:02x}" for b in c.encode()) for c in name)


def check_email(email):
    """``email`` lower-cased and NFC-normalised; UserlistError when it is not one."""
    email = unicodedata.normalize("NFC", email).lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "@" in local:
        raise UserlistError(f"{email!r} is not an email address: {WORDS}")
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise UserlistError(
            f"{email!r} is not an email address (its domain {domain!r} is not a DNS name; "
            "write an international domain in its xn-- form): " + WORDS
        )
    return email


def username(email):
    """The hub user name of a checked email; UserlistError when it gives no usable name."""
    local = email.rpartition("@")[0]
    folded = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode().lower()
    name = _OTHER.sub("-", folded).strip("._-")
    if not _NAME.match(name):
        raise UserlistError(
            f"{email!r} gives no usable user name (letters a-z and digits are needed in the part "
            "before @): use another address of that person"
        )
    if len(service_name(name)) > SERVICE_NAME_MAX:
        raise UserlistError(
            f"{email!r} gives the user name {name!r}, too long for a notebook service "
            f"({len(service_name(name))} > {SERVICE_NAME_MAX} characters): use a shorter address"
        )
    return name


def parse_line(raw, number=0):
    """The :class:`Line` of one userlist line, None for a blank or comment line."""
    words = raw.split("#", 1)[0].split()
    if not words:
        return None
    email, roles, groups = check_email(words[0]), [], []
    for word in words[1:]:
        if word in roles or (word.startswith("group:") and word.removeprefix("group:") in groups):
            raise UserlistError(f"{word!r} twice: {WORDS}")
        if word in ROLES:
            roles.append(word)
        elif word.startswith("group:"):
            group = word.removeprefix("group:")
            if group == INSTRUCTORS:
                raise UserlistError(f"{word!r}: the {INSTRUCTORS} group is the lines marked 'instructor': {WORDS}")
            if not _GROUP.match(group):
                raise UserlistError(
                    f"{word!r} is no group name (letters a-z, digits, '.', '_' and '-', at most 64): {WORDS}"
                )
            groups.append(group)
        else:
            raise UserlistError(f"unknown word {word!r}: {WORDS}")
    return Line(number, email, username(email), "admin" in roles, "instructor" in roles, tuple(groups))


def parse_userlist(text):
    """(lines, problems): the :class:`Line` of every good line, and ``(line number,
    message)`` of every bad one, a second line of a name included."""
    users, problems, seen = [], [], {}
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            line = parse_line(raw, number)
        except UserlistError as exc:
            problems.append((number, str(exc)))
            continue
        if line is None:
            continue
        if line.name in seen:
            first = seen[line.name]
            problems.append(
                (
                    number,
                    f"{line.email!r} and {first.email!r} on line {first.number} both become user {line.name!r}: "
                    "keep one line per person, or use another address for one of them",
                )
            )
            continue
        seen[line.name] = line
        users.append(line)
    return users, problems


@dataclass(frozen=True)
class HubUsers:
    """What the hub's configuration needs from its userlist."""

    allowed: set
    admins: set
    logins: dict  # an email, as a login may spell it -> the user name
    groups: dict  # a group's name -> its members' names (the instructors' group too)


def hub_users(path):
    """The hub's users from the userlist file at ``path``.

    A bad line (only possible if the file was edited on the hub) is left out
    and reported on stderr, never fatal: a userlist must not stop the hub.
    """
    with open(path, encoding="utf-8") as f:
        users, problems = parse_userlist(f.read())
    for number, problem in problems:
        print(f"userlist line {number} left out: {problem}", file=sys.stderr)
    logins, groups = {}, {}
    for line in users:
        for form in ("NFC", "NFD"):
            logins[unicodedata.normalize(form, line.email)] = line.name
        for group in (*((INSTRUCTORS,) if line.instructor else ()), *line.groups):
            groups.setdefault(group, set()).add(line.name)
    return HubUsers(
        allowed={line.name for line in users},
        admins={line.name for line in users if line.admin},
        logins=logins,
        groups=groups,
    )
