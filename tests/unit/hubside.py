"""Load jupyterhub_config.py as the hub does: with the real JupyterHub and DockerSpawner,
hubswarm's hub-side package installed where the config imports it, and the values
hub-config writes beside it."""

import shutil
import sys
from pathlib import Path

from fakehost import hub_config
from tasks.core.templates import file_text
from tasks.hub import jupyterhub as hub
from tasks.hub import python_env

#: The hub's secrets, as its env file gives them (the two passwords must differ).
SECRETS = {
    name: str(index) * 32
    for index, name in enumerate(
        ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OAUTH_CALLBACK_URL", "HUB_USER_PASSWORD", "HUB_ADMIN_PASSWORD")
    )
}


def load_hub_config(tmp_path, monkeypatch, userlist="teacher@x.io admin\n", **config):
    """(JupyterHub app with the config loaded, the hub-side package as the hub imports it),
    for hubswarm's settings ``config`` (over fakehost's)."""
    from jupyterhub.app import JupyterHub

    site, srv = tmp_path / "site-packages", tmp_path / "srv"
    srv.mkdir(exist_ok=True)
    shutil.copytree(
        python_env.HUB_PACKAGE, site / python_env.PACKAGE_NAME, ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    for name in [m for m in sys.modules if m == python_env.PACKAGE_NAME or m.startswith(python_env.PACKAGE_NAME + ".")]:
        monkeypatch.delitem(sys.modules, name)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (srv / "userlist").write_text(userlist)
    settings = hub_config(srv=str(srv), **config)
    values = hub.hub_values(settings, "10.0.0.5", "hub.example.com")
    Path(hub.values_path(settings)).write_text(hub.values_text(values))
    Path(hub.config_path(settings)).write_text(file_text("jupyterhub_config.py"))
    app = JupyterHub()
    app.load_config_file(hub.config_path(settings))
    return app, sys.modules[python_env.PACKAGE_NAME]
