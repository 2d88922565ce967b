"""files/hubswarm-home, the real script in real bash: it reads and writes only the folders
its caller names (HUBSWARM_HOMES, HUBSWARM_NOTEBOOKS), and refuses to guess them."""

import os
import shlex
import shutil
import stat
import subprocess

import pytest

from fakehost import ROOT, hub_config
from tasks import storage

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
        return subprocess.run(
            ["bash", str(TOOL), *args], env=wanted, capture_output=True, text=True, timeout=30, check=False
        )

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


def test_modes_hold_under_the_hubs_umask(place):
    """The hub runs with umask 077: starter notebooks must still be readable (444)."""
    homes, _, _, run = place
    previous = os.umask(0o077)
    try:
        assert run("ensure", "dora").returncode == 0
    finally:
        os.umask(previous)
    copy = homes / "dora" / "example_notebooks" / "welcome.ipynb"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o444


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


def test_the_hub_runs_the_tool_on_the_configured_folders(place, tmp_path, monkeypatch):
    """The hub's spawner (configured by the rendered config) names the homes path and
    {SRV}/notebooks when it makes a home on first spawn."""
    from test_hub_side import spawner_for

    from hubside import load_hub_config

    homes, _, place_env, _ = place
    app, package = load_hub_config(tmp_path, monkeypatch, homes_path=str(homes))
    for name in list(os.environ):
        if name.startswith("HUBSWARM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", place_env["PATH"])
    spawner = spawner_for(app, package)
    assert spawner.home_tool == storage.HOME_TOOL  # where the homes step puts the tool on the hub
    tool = tmp_path / "hubswarm-home"  # (installed executable, as the homes step does)
    shutil.copy(TOOL, tool)
    tool.chmod(0o755)
    spawner.home_tool = str(tool)
    spawner.prepare_home()
    assert spawner.extra_container_spec["user"] == f"{FIRST_UID}:{FIRST_UID}"
    assert spawner.volumes == {str(homes / "alice"): "/home/jovyan"}
    assert spawner.environment["HOME"] == "/home/jovyan"
    assert (homes / "alice" / "example_notebooks" / "welcome.ipynb").read_text() == "{}\n"
