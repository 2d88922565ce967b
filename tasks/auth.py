"""Authenticators the hub can use, and the local secrets each one needs.

``google`` (the original deployment's) and ``github`` log users in by OAuth;
``password`` is JupyterHub's shared-password authenticator, for the lab only.
"""

import os

from .core import HubswarmError, secret

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
    if name == PASSWORD:
        user = environ.get("HUBSWARM_HUB_PASSWORD", "")
        admin = environ.get("HUBSWARM_HUB_ADMIN_PASSWORD", "")
        if len(user) < USER_PASSWORD_MIN or len(admin) < ADMIN_PASSWORD_MIN or user == admin:
            raise HubswarmError(
                f"the password authenticator needs HUBSWARM_HUB_PASSWORD ({USER_PASSWORD_MIN}+ "
                f"characters) and a different HUBSWARM_HUB_ADMIN_PASSWORD ({ADMIN_PASSWORD_MIN}+): "
                "set them in .env (lab.up writes both into .lab/lab.env)"
            )
        values = {"HUB_USER_PASSWORD": secret(user), "HUB_ADMIN_PASSWORD": secret(admin)}
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
    return one_line_values(values)


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
