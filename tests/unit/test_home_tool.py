"""files/hubswarm-home, the real script in real bash: it reads and writes only the folders
its caller names (HUBSWARM_HOMES, HUBSWARM_NOTEBOOKS), and refuses to guess them."""

import os
import shlex
import shutil
import stat
import subprocess
import sys
import types

import pytest
from fakehost import ROOT, hub_config

from tasks import hub, storage

TOOL = ROOT / "files" / "hubswarm-home"
FIRST_UID = 10001

# bin/setup installs them; under CI a missing one fails instead of skipping.
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("bash", "rsync", "flock", "awk")) and os.environ.get("CI") != "true",
    reason="needs bash, rsync, flock, awk",
)


@pytest.fixture
def place(tmp_path):
    """(homes, notebooks, env, run): empty homes, one starter notebook, the tool runner."""
    homes, notebooks = tmp_path / "shared" / "home", tmp_path / "srv" / "notebooks"
    homes.mkdir(parents=True)
    notebooks.mkdir(parents=True)
    (notebooks / "welcome.ipynb").write_text("{}\n")
    path = os.environ["PATH"]
    if os.geteuid() != 0:
        # Not root: homes belong to the current user (install's -o/-g dropped).
        stub = tmp_path / "bin"
        stub.mkdir()
        real = shutil.which("install")
        (stub / "install").write_text(
            "#!/bin/bash\nargs=()\nwhile [ $# -gt 0 ]; do\n"
            '  case $1 in -o|-g) shift 2 ;; *) args+=("$1"); shift ;; esac\ndone\n'
            f'exec {real} "${{args[@]}}"\n'
        )
        (stub / "install").chmod(0o755)
        path = f"{stub}:{path}"
    env = {"PATH": path, "LC_ALL": "C.UTF-8", "HUBSWARM_HOMES": str(homes), "HUBSWARM_NOTEBOOKS": str(notebooks)}

    def run(*args, **overrides):
        wanted = {k: v for k, v in {**env, **overrides}.items() if v is not None}
        return subprocess.run(["bash", str(TOOL), *args], env=wanted, capture_output=True, text=True, timeout=30, check=False)

    return homes, notebooks, env, run


def test_ensure_makes_the_home_in_the_given_folders(place):
    homes, _, _, run = place
    result = run("ensure", "alice")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{FIRST_UID}\n"
    copy = homes / "alice" / "example_notebooks" / "welcome.ipynb"
    assert copy.read_text() == "{}\n"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o444
    assert (homes / ".hubswarm-uids").read_text() == f"alice {FIRST_UID}\n"
    # The same name keeps its id; the next one gets the next id.
    assert run("ensure", "alice").stdout == f"{FIRST_UID}\n"
    assert run("ensure", "bob").stdout == f"{FIRST_UID + 1}\n"


def test_ensure_copies_from_the_notebooks_folder_it_is_given(place, tmp_path):
    """srv moved: the starter notebooks come from the folder the caller names."""
    homes, _, _, run = place
    moved = tmp_path / "elsewhere" / "notebooks"
    moved.mkdir(parents=True)
    (moved / "moved.ipynb").write_text('{"moved": 1}\n')
    assert run("ensure", "carol", HUBSWARM_NOTEBOOKS=str(moved)).returncode == 0
    assert sorted(p.name for p in (homes / "carol" / "example_notebooks").iterdir()) == ["moved.ipynb"]


def test_sync_updates_the_homes_from_the_given_notebooks(place):
    homes, notebooks, _, run = place
    assert run("ensure", "alice").returncode == 0
    assert run("sync", "-n").stdout == ""  # in sync
    (notebooks / "week1").mkdir()
    (notebooks / "week1" / "intro.ipynb").write_text('{"a": 1}\n')
    (homes / "alice" / "mine.ipynb").write_text("my own\n")
    dry = run("sync", "-n")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "alice: 1 notebook(s)\n"
    assert not (homes / "alice" / "example_notebooks" / "week1" / "intro.ipynb").exists()
    done = run("sync")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "alice: 1 notebook(s)\n"
    assert (homes / "alice" / "example_notebooks" / "week1" / "intro.ipynb").read_text() == '{"a": 1}\n'
    assert (homes / "alice" / "mine.ipynb").read_text() == "my own\n"
    assert run("sync", "-n").stdout == ""


@pytest.mark.parametrize("unset", ["HUBSWARM_HOMES", "HUBSWARM_NOTEBOOKS"])
@pytest.mark.parametrize("args", [["ensure", "alice"], ["sync"], ["sync", "-n"]])
def test_the_folders_are_required(place, unset, args):
    homes, _, _, run = place
    for value in (None, ""):
        result = run(*args, **{unset: value})
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == (
            "usage: HUBSWARM_HOMES=DIR HUBSWARM_NOTEBOOKS=DIR hubswarm-home ensure NAME | sync [-n]\n"
        )
    assert list(homes.iterdir()) == []


def test_sync_notebooks_runs_the_tool_on_the_configured_folders(place, tmp_path):
    """storage.sync_tool (what sync-notebooks runs) names the homes path and {srv}/notebooks."""
    homes, _, env, run = place
    srv = tmp_path / "srv"  # the fixture's notebooks are {srv}/notebooks
    assert run("ensure", "alice").returncode == 0
    (srv / "notebooks" / "new.ipynb").write_text("new\n")
    config = hub_config(srv=str(srv), homes_path=str(homes))
    command = storage.sync_tool(config)
    assert command.count(storage.HOME_TOOL) == 1
    command = command.replace(storage.HOME_TOOL, f"bash {shlex.quote(str(TOOL))}")
    bare = {k: v for k, v in env.items() if not k.startswith("HUBSWARM_")}
    result = subprocess.run(["bash", "-c", command], env=bare, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "alice: 1 notebook(s)\n"
    assert (homes / "alice" / "example_notebooks" / "new.ipynb").read_text() == "new\n"


def test_the_hub_config_runs_the_tool_on_the_configured_folders(place, tmp_path, monkeypatch):
    """prepare_home (the hub's pre-spawn hook) names the homes path and {SRV}/notebooks."""
    homes, _, place_env, _ = place
    srv = tmp_path / "srv"
    text = hub.render_hub_config(hub_config(srv=str(srv), homes_path=str(homes)), "10.0.0.5", "h")
    real_run = subprocess.run

    def run_tool(argv, env=None, **kwargs):
        """The tool at its path on the hub is files/hubswarm-home; only the folders the hook passes."""
        assert argv[0] == storage.HOME_TOOL
        given = {k: v for k, v in env.items() if k.startswith("HUBSWARM_")}
        return real_run(["bash", str(TOOL), *argv[1:]], env={"PATH": place_env["PATH"], **given}, **kwargs)

    monkeypatch.setattr(subprocess, "run", run_tool)
    for name in list(os.environ):
        if name.startswith("HUBSWARM_"):
            monkeypatch.delenv(name)
    c = exec_hub_config(text, monkeypatch)
    spawner = types.SimpleNamespace(user=types.SimpleNamespace(name="alice"), extra_container_spec={}, environment={})
    c.Spawner.pre_spawn_hook(spawner)
    assert spawner.extra_container_spec["user"] == f"{FIRST_UID}:{FIRST_UID}"
    assert spawner.volumes == {str(homes / "alice"): "/home/jovyan"}
    assert (homes / "alice" / "example_notebooks" / "welcome.ipynb").read_text() == "{}\n"


def exec_hub_config(text, monkeypatch):
    """Run a rendered jupyterhub_config.py with stand-ins for JupyterHub; its ``c``."""

    class Section(dict):
        def __getattr__(self, name):
            return self.setdefault(name, Section())

        def __setattr__(self, name, value):
            self[name] = value

    module = types.ModuleType("dockerspawner")
    module.SwarmSpawner = type("SwarmSpawner", (), {})
    monkeypatch.setitem(sys.modules, "dockerspawner", module)
    usernames = types.ModuleType("hubswarm_usernames")
    usernames.hub_users = lambda path: (set(), set(), {}, [])
    monkeypatch.setitem(sys.modules, "hubswarm_usernames", usernames)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OAUTH_CALLBACK_URL"):
        monkeypatch.setenv(name, "x")
    c = Section()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"get_config": lambda: c})  # noqa: S102
    return c
