"""Settings: read from an environment mapping, as :mod:`tasks.settings.table` declares them.

``fabfile.py`` passes ``os.environ`` (after :func:`load_environment`); tests
pass a plain dict, so they see exactly the table's defaults. Values come out
normalised, and :func:`tasks.settings.validate.checked` checks them all before any task
touches a host. ``python3 -m tasks.settings --write`` writes ``.env.example``
and the README's table of settings from the table.
"""

import os
from pathlib import Path

from dotenv import dotenv_values, load_dotenv

from .kinds import as_flag
from .table import CONFIG_SETTINGS, PROJECT, SETTING


def load_environment(project=PROJECT, environ=os.environ):
    """Load a running lab's ``.lab/lab.env``, then ``.env``, under what ``environ`` has.

    ``HUBSWARM_LAB=0`` (in the environment or ``.env``) ignores the lab. Returns
    the lab's env file when it was loaded, else None.
    """
    lab_env, dot_env = lab_folder(project, environ) / "lab.env", Path(project) / ".env"
    wanted = environ.get("HUBSWARM_LAB")
    if wanted is None and dot_env.is_file():
        wanted = dotenv_values(dot_env).get("HUBSWARM_LAB")
    ignored = bool((wanted or "").strip()) and as_flag(wanted) is False
    use_lab = lab_env.is_file() and not ignored
    if use_lab:
        _load(lab_env, environ)
    _load(dot_env, environ)
    return lab_env if use_lab else None


def lab_slot(environ):
    """The number of the lab this process works on (HUBSWARM_LAB_SLOT); None when it is no number
    of a lab (the run's checks then say so)."""
    setting = SETTING["HUBSWARM_LAB_SLOT"]
    value = setting.kind.normalise(setting.value_in(environ))
    return None if setting.line(value) else int(value)


def lab_folder(project, environ):
    """The folder of that lab's key, settings and state: ``.lab``, or ``.lab-N`` beside it."""
    slot = lab_slot(environ)
    return Path(project) / (".lab" if not slot else f".lab-{slot}")


def _load(path, environ):
    if environ is os.environ:
        load_dotenv(path)
    else:  # a test's mapping: the same rule, the environment wins
        for key, value in dotenv_values(path).items():
            environ.setdefault(key, value or "")


def defaults(environ):
    """The collection configuration for ``environ`` (a mapping of variables)."""
    hubswarm = {
        "tags": {"hub": "hub", "worker": "worker"},
        "srv": "/srv/jupyterhub",
        "venv": "/opt/jupyterhub",
    }
    for setting in CONFIG_SETTINGS:
        *holders, key = setting.key
        section = hubswarm
        for holder in holders:
            section = section.setdefault(holder, {})
        section[key] = setting.kind.normalise(setting.value_in(environ))
    if hubswarm["lab"] is True:
        hubswarm["profile"] = ""  # the lab's fake credentials must not meet a real profile
    ssh_user, ssh_key = hubswarm["ssh"]["user"], hubswarm["ssh"]["key"]
    return {
        # stdin at EOF (CI, cron) must not break sudo; secrets go on stdin explicitly.
        "run": {"in_stream": False},
        # An unreachable host fails in seconds, not minutes.
        "timeouts": {"connect": 15},
        **({"user": ssh_user} if ssh_user else {}),
        **({"connect_kwargs": {"key_filename": [ssh_key]}} if ssh_key else {}),
        "hubswarm": hubswarm,
    }
