"""The hub-side package (tasks/hubswarm_hub) and the config that uses it, loaded the way the
hub loads them: real JupyterHub, real DockerSpawner, a real traitlets Config."""

import asyncio
import concurrent.futures
import importlib

import pytest

from hubside import load_hub_config
from tasks import python_env


def run_async(coroutine):
    """Run a coroutine to its end on a loop of its own (another test may have left one running here)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def spawner_for(app, package, name="alice"):
    spawner_module = importlib.import_module(f"{package.__name__}.spawner")
    user = type("User", (), {"name": name, "escaped_name": name, "url": f"/user/{name}/"})()
    return spawner_module.HubswarmSpawner(config=app.config, user=user, _deprecated_db_session=None)


def test_the_config_assigns_the_spawner_and_its_values(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch, mem_limit="4G", homes_path="/shared/home")
    spawner_class = app.config.JupyterHub.spawner_class
    assert (
        spawner_class.__module__ == f"{python_env.PACKAGE_NAME}.spawner" and spawner_class.__name__ == "HubswarmSpawner"
    )
    spawner = spawner_for(app, package)
    assert spawner.mem_limit == 4 * 1024**3  # JupyterHub's own byte parsing
    assert spawner.cmd == ["jupyterhub-singleuser"]
    assert spawner.extra_endpoint_spec == {"ports": {None: (8888, "tcp", "host")}}
    assert spawner.extra_placement_spec == {"constraints": ["node.labels.hubswarm.notebooks == true"]}
    assert spawner.homes_path == "/shared/home"
    assert spawner.notebooks_path == str(tmp_path / "srv" / "notebooks")
    assert app.config.JupyterHub.hub_connect_url == "http://10.0.0.5:8081"


def test_the_userlist_is_read_with_the_same_rule(tmp_path, monkeypatch):
    roster = "Alice@x.io admin\nbob@y.org # c\n\nFirst.Last+cs101@x.io\no'brien@x.io\nRen\u00e9@x.io\n..@x.io\n"
    app, _ = load_hub_config(tmp_path, monkeypatch, userlist=roster)
    auth = app.config.Authenticator
    assert auth.allowed_users == {"alice", "bob", "first.last-cs101", "o-brien", "rene"}  # "..@" left out
    assert auth.admin_users == {"alice"}
    assert auth.allow_existing_users is False
    logins = auth.username_map
    assert logins["first.last+cs101@x.io"] == "first.last-cs101" and logins["o'brien@x.io"] == "o-brien"
    assert logins["ren\u00e9@x.io"] == logins["rene\u0301@x.io"] == "rene"


def test_the_spawner_reaches_the_notebook_on_its_node_and_host_port(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    answers = {
        "tasks": [
            {"NodeID": "n-old", "Status": {"PortStatus": {}}},
            {"NodeID": "n1", "Status": {"PortStatus": {"Ports": [{"TargetPort": 8888, "PublishedPort": 32801}]}}},
        ],
        "inspect_node": {"Status": {"Addr": "10.0.0.11"}},
    }
    asked = []

    async def docker(method, *args, **kwargs):
        asked.append((method, args, kwargs))
        return answers[method]

    spawner.docker = docker
    assert run_async(spawner.get_ip_and_port()) == ("10.0.0.11", 32801)
    assert asked[0] == ("tasks", (), {"filters": {"service": spawner.service_name, "desired-state": "running"}})
    assert asked[1][:2] == ("inspect_node", ("n1",))


def test_no_published_port_yet_is_an_error(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)

    async def docker(method, *args, **kwargs):
        return []

    spawner.docker = docker
    with pytest.raises(RuntimeError, match="no published port yet"):
        run_async(spawner.get_ip_and_port())


# --- hub-config installs the package into the venv ------------------------------------

SITE = "/opt/jupyterhub/lib/python3.11/site-packages"
PACKAGE_KEY = "hub-package:/opt/jupyterhub"


def test_package_installed_when_missing_then_left_alone(make_host):
    host, runner = make_host({PACKAGE_KEY: SITE})  # venv there, no package yet
    assert python_env.ensure_package(host) is True
    [call] = runner.calls
    assert call.script == python_env.package_script(SITE)
    assert f"mv {SITE}/hubswarm_hub.new {SITE}/hubswarm_hub" in call.script

    same = SITE + "\n" + python_env.package_archive()[0]
    host, runner = make_host({PACKAGE_KEY: same})
    assert python_env.ensure_package(host) is False and runner.calls == []


def test_package_without_a_venv(make_host):
    from tasks.core import HubswarmError

    host, runner = make_host({PACKAGE_KEY: None})
    with pytest.raises(HubswarmError, match="no virtualenv at /opt/jupyterhub on 10.0.0.5: run pip-install first"):
        python_env.ensure_package(host)
    host, runner = make_host({PACKAGE_KEY: None}, check=True)  # check mode on a fresh host
    assert python_env.ensure_package(host) is True and runner.calls == []


def test_package_script_and_fact_in_real_bash(tmp_path):
    """The archive unpacks beside the installed package and replaces it whole; the fact
    then reads the same manifest hubswarm computes, so the next run changes nothing."""
    import subprocess

    site, venv = tmp_path / "site-packages", tmp_path / "venv"
    (site / "hubswarm_hub").mkdir(parents=True)
    (site / "hubswarm_hub" / "stale.py").write_text("old\n")
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f"#!/bin/sh\necho {site}\n")  # what sysconfig would say
    (venv / "bin" / "python").chmod(0o755)
    manifest, tar = python_env.package_archive()
    subprocess.run(["bash", "-c", python_env.package_script(str(site))], input=tar, check=True)
    wanted = {p.name: p.read_bytes() for p in python_env.HUB_PACKAGE.glob("*.py")}
    assert {p.name: p.read_bytes() for p in (site / "hubswarm_hub").iterdir()} == wanted
    assert not list(site.glob("hubswarm_hub.*"))  # nothing left beside it
    answer = subprocess.run(["bash", "-c", python_env.package_fact(str(venv)).command], capture_output=True, text=True)
    assert answer.stdout == f"{site}\n" + manifest
