"""Authenticators the hub can use, the local secrets each one needs, and the hub's
env file that holds them (``write-env``).

``google`` (the original deployment's) and ``github`` log users in by OAuth;
``password`` is JupyterHub's shared-password authenticator, for the lab only.
Their settings, secrets too, are rows of :mod:`tasks.settings.table`.
"""

import os

from ..core import HubswarmError, facts, secret, step
from ..settings.table import OAUTH, PASSWORD, SETTING
from ..settings.validate import problems
from .certs import hub_name, is_address, public_name_probes

# The settings each way of logging in puts in the hub's env file, besides the metrics token.
OAUTH_CLIENT = ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET")
OAUTH_SETTINGS = (*OAUTH_CLIENT, "OAUTH_CALLBACK_URL")
PASSWORD_SETTINGS = ("HUBSWARM_HUB_PASSWORD", "HUBSWARM_HUB_ADMIN_PASSWORD")


def checked_authenticator(config):
    """The authenticator's name (settings lower-case it); one-line error when unknown or out of place."""
    lines = problems({"authenticator": config.authenticator, "lab": config.lab})
    if lines:
        raise HubswarmError(lines[0])
    return config.authenticator


def hub_secrets(config, environ=os.environ):
    """The variables the hub's env file holds, read from .env or the environment.

    Each is checked as its setting says; the secret ones are registered, so no output of the run shows them.
    """
    name = checked_authenticator(config)
    if name == PASSWORD:
        wanted = PASSWORD_SETTINGS
    else:
        wanted = OAUTH_SETTINGS
        for variable in OAUTH_CLIENT:
            if not environ.get(variable, "").strip():
                raise HubswarmError(
                    f"{variable} is missing: put the {name} OAuth client's {variable} in .env (see .env.example) "
                    "or the environment"
                )
    values = {}
    for variable in (*wanted, "HUBSWARM_METRICS_TOKEN"):
        setting = SETTING[variable]
        value = setting.kind.normalise(environ.get(variable, ""))
        problem = setting.line(value)
        if problem:
            raise HubswarmError(problem)
        if value:
            values[setting.hub_env] = secret(value) if setting.secret else value
    if name == PASSWORD and values["HUB_USER_PASSWORD"] == values["HUB_ADMIN_PASSWORD"]:
        raise HubswarmError("HUBSWARM_HUB_ADMIN_PASSWORD is HUBSWARM_HUB_PASSWORD too: use two different passwords")
    return values


# --- the hub's env file: these secrets and the OAuth callback ---------------------------


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
