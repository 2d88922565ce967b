"""The hub's users and secrets: the ``userlist`` and the OAuth env file.

A userlist has one ``email [admin]`` per line; ``#`` starts a comment. A
user's name on the hub is the email's local part, lower-cased.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from .auth import OAUTH, hub_secrets
from .core import HubswarmError, facts, step

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLES = ("admin",)


@dataclass(frozen=True)
class User:
    email: str
    admin: bool

    @property
    def name(self):
        return username(self.email)


def username(email):
    return email.split("@", 1)[0].lower()


def parse_userlist(text, source="userlist"):
    """Users from userlist text; HubswarmError naming file, line and fix on bad input."""
    users, seen = [], {}
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{source} line {number}"
        email, roles = words[0], words[1:]
        if not EMAIL.match(email):
            raise HubswarmError(f"{where}: {email!r} is not an email address: write 'email [admin]'")
        if len(roles) > 1:
            raise HubswarmError(f"{where}: too many words: write 'email [admin]'")
        if roles and roles[0] not in ROLES:
            raise HubswarmError(f"{where}: unknown role {roles[0]!r}: the only role word is 'admin'")
        user = User(email.lower(), bool(roles))
        if user.name in seen:
            raise HubswarmError(
                f"{where}: user {user.name!r} is already on line {seen[user.name]} "
                "(same email local part): keep one line per person"
            )
        seen[user.name] = number
        users.append(user)
    if not any(u.admin for u in users):
        raise HubswarmError(f"{source}: no admin: add ' admin' after at least one email")
    return users


def render_userlist(users):
    return "".join(f"{u.email}{' admin' if u.admin else ''}\n" for u in users)


def read_userlist(config):
    path = Path(config.userlist)
    if not path.is_file():
        raise HubswarmError(
            f"{path} not found: create it with one 'email [admin]' per line "
            "(see userlist.example)"
        )
    return parse_userlist(path.read_text(), source=str(path))


def render_env(values):
    """systemd EnvironmentFile lines, values double-quoted."""
    def quoted(v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f"{k}={quoted(v)}\n" for k, v in values.items())


def callback_url(host, values):
    if "OAUTH_CALLBACK_URL" in values:
        return values["OAUTH_CALLBACK_URL"]
    name = host.config.domain
    if not name:
        name = host.fact(facts.instance_metadata("public-hostname")).text
    if not name:
        raise HubswarmError(
            f"no callback URL for {host.name}: set HUBSWARM_DOMAIN (or OAUTH_CALLBACK_URL); "
            "the instance has no public hostname in its metadata"
        )
    return f"https://{name}/hub/oauth_callback"


def srv_file_probes(name):
    """``probes`` for a step that writes ``/srv/jupyterhub/<name>``."""
    return lambda host: [facts.dir_state(host.config.srv), facts.file_state(f"{host.config.srv}/{name}")]


@step("write-env", needs=hub_secrets, probes=srv_file_probes("env"))
def write_env(host, values):
    """Write the OAuth client id, secret and callback URL (from .env) to /srv/jupyterhub/env, 0600 root."""
    values = dict(values)
    if host.config.authenticator in OAUTH:
        values["OAUTH_CALLBACK_URL"] = callback_url(host, values)
    srv = host.config.srv
    host.ensure_dir(srv, mode="700")
    host.ensure_file(f"{srv}/env", render_env(values), mode="600", secret=True)


@step("userlist", needs=read_userlist, probes=srv_file_probes("userlist"))
def write_userlist(host, users):
    """Check the local userlist ('email [admin]' per line) and write it to /srv/jupyterhub/userlist, 0600."""
    srv = host.config.srv
    host.ensure_dir(srv, mode="700")
    host.ensure_file(f"{srv}/userlist", render_userlist(users), mode="600")
