"""The hub's users and secrets: the ``userlist`` and the OAuth env file.

A userlist has one ``email [admin]`` per line; ``#`` starts a comment. A
user's name on the hub follows one rule, :mod:`tasks.hubswarm_hub.usernames`.
"""

from dataclasses import dataclass
from pathlib import Path

from .auth import OAUTH, hub_secrets
from .certs import hub_name, is_address, public_name_probes
from .core import HubswarmError, facts, step
from .hubswarm_hub import usernames


@dataclass(frozen=True)
class User:
    email: str
    admin: bool

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
    if not any(admin for *_, admin in users):
        raise HubswarmError(f"{source}: no admin: add ' admin' after at least one email")
    return [User(email, admin) for _, email, _, admin in users]


def render_userlist(users):
    return "".join(f"{u.email}{' admin' if u.admin else ''}\n" for u in users)


def read_userlist(config):
    path = Path(config.userlist)
    if not path.is_file():
        raise HubswarmError(f"{path} not found: create it with one 'email [admin]' per line (see userlist.example)")
    return parse_userlist(path.read_text(), source=str(path))


def render_env(values):
    """systemd EnvironmentFile lines, values double-quoted."""

    def quoted(v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f"{k}={quoted(v)}\n" for k, v in values.items())


def callback_url(host, values):
    """The OAuth callback: OAUTH_CALLBACK_URL when set, else on the hub's public name,
    which must be a DNS name (OAuth providers take no bare IP address)."""
    if "OAUTH_CALLBACK_URL" in values:
        return values["OAUTH_CALLBACK_URL"]
    name = hub_name(host)
    if is_address(name):
        raise HubswarmError(
            f"no public name for the OAuth callback on {host.name}: set HUBSWARM_DOMAIN to the hub's "
            "DNS name (or OAUTH_CALLBACK_URL); the instance has no public host name in its metadata"
        )
    return f"https://{name}/hub/oauth_callback"


def env_values(host, values):
    """The env file's variables: the secrets, and the callback URL for OAuth."""
    if host.config.authenticator in OAUTH:
        return {**values, "OAUTH_CALLBACK_URL": callback_url(host, values)}
    return dict(values)


def srv_file_probes(name):
    """``probes`` for a step that writes ``/srv/jupyterhub/<name>``."""
    return lambda host: [facts.dir_state(host.config.srv), facts.file_state(f"{host.config.srv}/{name}")]


def env_probes(host):
    return [*srv_file_probes("env")(host), *public_name_probes(host)]


@step("write-env", needs=hub_secrets, probes=env_probes, preflight=env_values)
def write_env(host, values):
    """Write the OAuth client id, secret and callback URL (from .env) to /srv/jupyterhub/env, 0600 root."""
    srv = host.config.srv
    host.ensure_dir(srv, mode="700")
    host.ensure_file(f"{srv}/env", render_env(env_values(host, values)), mode="600", secret=True)


@step("userlist", needs=read_userlist, probes=srv_file_probes("userlist"))
def write_userlist(host, users):
    """Check the local userlist ('email [admin]' per line) and write it to /srv/jupyterhub/userlist, 0600."""
    srv = host.config.srv
    host.ensure_dir(srv, mode="700")
    host.ensure_file(f"{srv}/userlist", render_userlist(users), mode="600")
