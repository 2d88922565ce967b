"""Authenticators the hub can use, the local secrets each one needs, and the hub's
env file that holds them (``write-env``).

``google`` (the original deployment's) and ``github`` log users in by OAuth;
``password`` is JupyterHub's shared-password authenticator, for the lab only.
"""

import os

from .certs import hub_name, is_address, public_name_probes
from .core import HubswarmError, facts, secret, step

OAUTH = ("google", "github")
PASSWORD = "password"
AUTHENTICATORS = (*OAUTH, PASSWORD)
# JupyterHub's SharedPasswordAuthenticator minimums.
USER_PASSWORD_MIN, ADMIN_PASSWORD_MIN = 8, 32


def checked_authenticator(config):
    """The authenticator's name (settings lower-case it); one-line error when unknown or out of place."""
    name = config.authenticator
    if name not in AUTHENTICATORS:
        raise HubswarmError(
            f"unknown authenticator {name!r}: set HUBSWARM_AUTHENTICATOR to one of " + ", ".join(AUTHENTICATORS)
        )
    if name == PASSWORD and not config.lab:
        raise HubswarmError(
            "the password authenticator is for the lab only: use google or github "
            "(HUBSWARM_AUTHENTICATOR) on a real cluster"
        )
    return name


def hub_secrets(config, environ=os.environ):
    """The variables the hub's env file holds, read from .env or the environment.

    Every value is registered as a secret, so no output of the run shows it.
    """
    name = checked_authenticator(config)
    metrics = metrics_values(environ)
    if name == PASSWORD:
        user = environ.get("HUBSWARM_HUB_PASSWORD", "")
        admin = environ.get("HUBSWARM_HUB_ADMIN_PASSWORD", "")
        if len(user) < USER_PASSWORD_MIN or len(admin) < ADMIN_PASSWORD_MIN or user == admin:
            raise HubswarmError(
                f"the password authenticator needs HUBSWARM_HUB_PASSWORD ({USER_PASSWORD_MIN}+ "
                f"characters) and a different HUBSWARM_HUB_ADMIN_PASSWORD ({ADMIN_PASSWORD_MIN}+): "
                "set them in .env (lab.up writes both into .lab/lab.env)"
            )
        values = {"HUB_USER_PASSWORD": secret(user), "HUB_ADMIN_PASSWORD": secret(admin), **metrics}
        return one_line_values(
            values, {"HUB_USER_PASSWORD": "HUBSWARM_HUB_PASSWORD", "HUB_ADMIN_PASSWORD": "HUBSWARM_HUB_ADMIN_PASSWORD"}
        )
    values = {}
    for var in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET"):
        value = environ.get(var, "").strip()
        if not value:
            raise HubswarmError(
                f"{var} is missing: put the {name} OAuth client's {var} in .env (see .env.example) or the environment"
            )
        values[var] = secret(value) if var == "OAUTH_CLIENT_SECRET" else value
    callback = environ.get("OAUTH_CALLBACK_URL", "").strip()
    if callback:
        from .validate import https_url_problem

        problem = https_url_problem(callback)
        if problem:
            raise HubswarmError(
                f"OAUTH_CALLBACK_URL: {callback!r} {problem}: set it to the OAuth client's redirect URI "
                "(https://HUB/hub/oauth_callback), or leave it unset"
            )
        values["OAUTH_CALLBACK_URL"] = callback
    return one_line_values({**values, **metrics})


METRICS_TOKEN_MIN = 32


def metrics_values(environ):
    """The token a Prometheus scrape of /hub/metrics uses (HUBSWARM_METRICS_TOKEN), if any."""
    token = environ.get("HUBSWARM_METRICS_TOKEN", "").strip()
    if not token:
        return {}
    if len(token) < METRICS_TOKEN_MIN or not all(c.isascii() and c.isalnum() or c in "-_." for c in token):
        raise HubswarmError(
            f"HUBSWARM_METRICS_TOKEN must be {METRICS_TOKEN_MIN} or more letters, digits, '-', '_' or '.': "
            "make one with `openssl rand -hex 32`"
        )
    return {"METRICS_API_TOKEN": secret(token)}


def one_line_values(values, setting_of=None):
    """``values`` when each is one line of printable text: a line break would end its
    line of the hub's env file and start another variable there."""
    for var, value in values.items():
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            setting = (setting_of or {}).get(var, var)
            raise HubswarmError(
                f"{setting} holds a line break or another control character: copy the value again, as one line"
            )
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
