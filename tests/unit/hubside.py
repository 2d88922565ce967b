"""Load a rendered jupyterhub_config.py as the hub does: with the real JupyterHub and
DockerSpawner, and hubswarm's hub-side package installed where the config imports it."""

import shutil
import sys

from fakehost import hub_config
from tasks import hub, python_env


def load_hub_config(tmp_path, monkeypatch, userlist="teacher@x.io admin\n", **config):
    """(JupyterHub app with the config loaded, the hub-side package as the hub imports it)."""
    from jupyterhub.app import JupyterHub

    site, srv = tmp_path / "site-packages", tmp_path / "srv"
    srv.mkdir(exist_ok=True)
    shutil.copytree(
        python_env.HUB_PACKAGE, site / python_env.PACKAGE_NAME, ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    for name in [m for m in sys.modules if m == python_env.PACKAGE_NAME or m.startswith(python_env.PACKAGE_NAME + ".")]:
        monkeypatch.delitem(sys.modules, name)
    for index, name in enumerate(
        ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OAUTH_CALLBACK_URL", "HUB_USER_PASSWORD", "HUB_ADMIN_PASSWORD")
    ):
        monkeypatch.setenv(name, str(index) * 32)  # (the two passwords must differ)
    (srv / "userlist").write_text(userlist)
    path = srv / "jupyterhub_config.py"
    path.write_text(hub.render_hub_config(hub_config(srv=str(srv), **config), "10.0.0.5", "hub.example.com"))
    app = JupyterHub()
    app.load_config_file(str(path))
    return app, sys.modules[python_env.PACKAGE_NAME]
