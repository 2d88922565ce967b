"""The hub's users: the ``userlist``.

A userlist has one ``email [admin] [instructor] [group:NAME ...]`` per line; ``#``
starts a comment. A user's name on the hub follows one rule,
:mod:`tasks.hubswarm_hub.usernames`; instructors are in the group ``instructors``,
and each ``group:NAME`` makes the user a member of that JupyterHub group.
"""

from dataclasses import dataclass
from pathlib import Path

from ..core import HubswarmError, step
from ..hubswarm_hub import usernames
from .auth import srv_file_probes


@dataclass(frozen=True)
class User:
    email: str
    admin: bool
    instructor: bool = False
    groups: tuple = ()

    @property
    def name(self):
        """The user's name on the hub (:func:`tasks.hubswarm_hub.usernames.username`)."""
        return usernames.username(self.email)


def parse_userlist(text, source="userlist"):
    """Users from userlist text; HubswarmError naming file, line and fix on bad input."""
    users, problems = usernames.parse_userlist(text)
    if problems:
        number, message = problems[0]
        raise HubswarmError(f"{source} line {number}: {message}")
    if not any(line.admin for line in users):
        raise HubswarmError(f"{source}: no admin: add ' admin' after at least one email")
    return [User(line.email, line.admin, line.instructor, line.groups) for line in users]


def render_userlist(users):
    """The userlist the hub reads: each user's line, its words in one order."""
    return "".join(
        " ".join([u.email, *(["admin"] if u.admin else []), *(["instructor"] if u.instructor else [])])
        + "".join(f" group:{group}" for group in u.groups)
        + "\n"
        for u in users
    )


def read_userlist(config):
    path = Path(config.userlist)
    if not path.is_file():
        raise HubswarmError(
            f"{path} not found: create it with one 'email [admin] [instructor] [group:NAME ...]' per line "
            "(see userlist.example)"
        )
    return parse_userlist(path.read_text(), source=str(path))


@step("userlist", needs=read_userlist, probes=srv_file_probes("userlist"))
def write_userlist(host, users):
    """Check the local userlist ('email [admin] [instructor] [group:NAME ...]' per line) and write
    it to /srv/jupyterhub/userlist, 0600."""
    srv = host.config.srv
    host.ensure_dir(srv, mode="700")
    host.ensure_file(f"{srv}/userlist", render_userlist(users), mode="600")
