"""files/hubswarm-home, the real script in real bash: it reads and writes only the folders
its caller names (HUBSWARM_HOMES, HUBSWARM_NOTEBOOKS), and refuses to guess them."""

import asyncio
import os
import shlex
import shutil
import stat
import subprocess

import pytest

from fakehost import ROOT, hub_config
from tasks.node import storage

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
    (homes / storage.HOMES_MARKER).write_text(storage.MARKER_TEXT)
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
            ["bash", str(TOOL), *args], env=wanted, capture_output=True, text=True, timeout=120, check=False
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


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="homes owned by other ids: needs root (CI runs as root)")


BOTH_LOST = {"carol": 2, "dave": 3}  # two users whose ids a restored file lacks
BEFORE_THEM = {"alice": 0, "bob": 1}


@needs_root
@pytest.mark.parametrize(
    "owners, ids_file, ensured, ids_after",
    [
        pytest.param(
            {"carol": 6},
            {"alice": 0, "carol": 2},
            [("carol", 6), ("carol", 6)],
            {"alice": 0, "carol": 6},
            id="a home keeps its owner whatever the ids file says, and the file is put right",
        ),
        pytest.param(
            BOTH_LOST,
            BEFORE_THEM,
            [("carol", 2), ("dave", 3), ("erin", 4)],
            {**BEFORE_THEM, **BOTH_LOST, "erin": 4},
            id="users the ids file lost get their homes back, a new one an id no home owns",
        ),
        pytest.param(
            BOTH_LOST,
            BEFORE_THEM,
            [("dave", 3), ("carol", 2), ("erin", 4)],
            {**BEFORE_THEM, **BOTH_LOST, "erin": 4},
            id="the same in the other order of first login",
        ),
        pytest.param(
            {"carol": 2},
            {"frank": 2},
            [("frank", 3), ("carol", 2)],
            {"carol": 2, "frank": 3},
            id="an id that owns another home is never given again",
        ),
        pytest.param(
            {".hubswarm-backups": 65534 - FIRST_UID},
            {},
            [("alice", 0)],
            {"alice": 0},
            id="hubswarm's own folders are no homes",
        ),
    ],
)
def test_a_users_id_is_the_owner_of_their_home(place, owners, ids_file, ensured, ids_after):
    """Ids above the first one: the owners of the homes there are, what the ids file says
    (restored, or lost with the hub), the ids ``ensure`` gives in turn, the file after."""
    homes, _, _, run = place
    for name, uid in owners.items():
        (homes / name).mkdir()
        os.chown(homes / name, FIRST_UID + uid, FIRST_UID + uid)
    (homes / ".hubswarm-uids").write_text("".join(f"{n} {FIRST_UID + u}\n" for n, u in ids_file.items()))
    for name, uid in ensured:
        assert run("ensure", name).stdout == f"{FIRST_UID + uid}\n"
        assert (homes / name).stat().st_uid == FIRST_UID + uid
    recorded = dict(line.split() for line in (homes / ".hubswarm-uids").read_text().splitlines())
    assert recorded == {name: str(FIRST_UID + uid) for name, uid in ids_after.items()}


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


def stamp_now(homes):
    """What sync-notebooks' probe of the stamp reads (its command in real bash)."""
    command = storage.synced_fact(hub_config(homes_path=str(homes))).command
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False).stdout


@pytest.fixture
def failing_rsync(place, tmp_path):
    """PATH for the tool where rsync fails (exit 23, as for an I/O error) copying into bob's home."""
    stub = tmp_path / "failing"
    stub.mkdir()
    (stub / "rsync").write_text(
        '#!/bin/bash\nfor a; do case $a in */bob/*) echo "rsync: I/O error" >&2; exit 23 ;; esac; done\n'
        f'exec {shutil.which("rsync")} "$@"\n'
    )
    (stub / "rsync").chmod(0o755)
    return f"{stub}:{place[2]['PATH']}"


def test_sync_updates_the_homes_from_the_given_notebooks(place):
    homes, notebooks, _, run = place
    assert run("ensure", "alice").returncode == 0
    assert run("sync").stdout == ""  # in sync already: nothing copied
    (notebooks / "week1").mkdir()
    (notebooks / "week1" / "intro.ipynb").write_text('{"a": 1}\n')
    (homes / "alice" / "mine.ipynb").write_text("my own\n")
    done = run("sync")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "alice: 1 notebook(s)\n"
    copy = homes / "alice" / "example_notebooks" / "week1" / "intro.ipynb"
    assert copy.read_text() == '{"a": 1}\n'
    assert stat.S_IMODE(copy.stat().st_mode) == 0o444
    assert (homes / "alice" / "mine.ipynb").read_text() == "my own\n"
    assert run("sync").stdout == ""


def test_sync_stamps_the_notebooks_every_home_has(place):
    """The stamp is the manifest of the notebooks synced, exactly as sync-notebooks
    computes it from the local folder. Only sync writes it: a home made after the
    notebooks changed has them, but the others wait for the sync."""
    homes, notebooks, _, run = place
    assert run("ensure", "alice").returncode == 0
    assert stamp_now(homes) == ""  # no sync yet: an existing deployment's first run syncs
    assert run("sync").returncode == 0
    assert stamp_now(homes) == storage.notebooks_archive(notebooks)[0]
    (notebooks / "week1").mkdir()
    (notebooks / "week1" / "intro.ipynb").write_text('{"a": 1}\n')
    assert run("ensure", "bob").returncode == 0
    assert (homes / "bob" / "example_notebooks" / "week1" / "intro.ipynb").exists()
    assert stamp_now(homes) != storage.notebooks_archive(notebooks)[0]
    assert run("sync").stdout == "alice: 1 notebook(s)\n"
    assert stamp_now(homes) == storage.notebooks_archive(notebooks)[0]
    assert sorted(p.name for p in homes.iterdir()) == [
        ".hubswarm-homes",
        ".hubswarm-notebooks-synced",
        ".hubswarm-uids",
        ".hubswarm-uids.lock",
        "alice",
        "bob",
    ]


def test_sync_of_no_notebooks_stamps_an_empty_manifest(place):
    homes, notebooks, _, run = place
    (notebooks / "welcome.ipynb").unlink()
    assert run("sync").returncode == 0
    assert (homes / storage.SYNCED_STAMP).read_text() == storage.notebooks_archive(notebooks)[0] == ""


def test_a_failed_sync_keeps_the_old_stamp(place, failing_rsync):
    """A home that could not be synced leaves the stamp as it was (and no temporary
    file): the next run syncs every home again, and stamps once all have them."""
    homes, notebooks, _, run = place
    for name in ("alice", "bob", "carol"):
        assert run("ensure", name).returncode == 0
    assert run("sync").returncode == 0
    before = stamp_now(homes)
    (notebooks / "new.ipynb").write_text("new\n")
    failed = run("sync", PATH=failing_rsync)
    assert failed.returncode != 0
    assert "I/O error" in failed.stderr
    assert stamp_now(homes) == before
    assert not list(homes.glob(f"{storage.SYNCED_STAMP}.*"))
    assert (homes / "alice" / "example_notebooks" / "new.ipynb").exists()  # synced before bob failed
    assert not (homes / "carol" / "example_notebooks" / "new.ipynb").exists()  # never reached
    again = run("sync")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "bob: 1 notebook(s)\ncarol: 1 notebook(s)\n"
    assert stamp_now(homes) == storage.notebooks_archive(notebooks)[0]


def test_a_home_is_made_even_if_its_notebooks_cannot_be_copied(place, failing_rsync):
    """A spawn does not fail for its starter notebooks (as before the stamp)."""
    homes, _, _, run = place
    made = run("ensure", "bob", PATH=failing_rsync)
    assert made.returncode == 0
    assert made.stdout == f"{FIRST_UID}\n"
    assert made.stderr.endswith("bob: starter notebooks not copied\n")
    assert (homes / "bob").is_dir()


@pytest.mark.parametrize("command", [["ensure", "alice"], ["sync"]])
@pytest.mark.parametrize("mounted", [False, True], ids=["no folder", "a local folder"])
def test_homes_are_made_only_on_the_marked_storage(place, tmp_path, command, mounted):
    """The storage not mounted (no folder, or the mount point's own empty folder): a one-line
    error that says so, and nothing made or stamped on the node's own disk."""
    *_, run = place
    missing = tmp_path / "not-mounted"
    if mounted:
        missing.mkdir()
    result = run(*command, HUBSWARM_HOMES=str(missing))
    assert result.returncode == 1
    host = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert result.stderr == (
        f"the homes storage is not mounted on {host} ({missing} has no .hubswarm-homes): mount it (fab mount-efs)\n"
    )
    assert list(missing.iterdir()) == [] if mounted else not missing.exists()


@pytest.mark.parametrize("unset", ["HUBSWARM_HOMES", "HUBSWARM_NOTEBOOKS"])
@pytest.mark.parametrize("args", [["ensure", "alice"], ["sync"]])
def test_the_folders_are_required(place, unset, args):
    homes, _, _, run = place
    for value in (None, ""):
        result = run(*args, **{unset: value})
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == "usage: HUBSWARM_HOMES=DIR HUBSWARM_NOTEBOOKS=DIR hubswarm-home ensure NAME | sync\n"
    assert [p.name for p in homes.iterdir()] == [storage.HOMES_MARKER]


def test_sync_notebooks_runs_the_tool_on_the_configured_folders(place, tmp_path):
    """storage.home_tool (what sync-notebooks runs) names the homes path and {srv}/notebooks."""
    homes, _, env, run = place
    srv = tmp_path / "srv"  # the fixture's notebooks are {srv}/notebooks
    assert run("ensure", "alice").returncode == 0
    (srv / "notebooks" / "new.ipynb").write_text("new\n")
    config = hub_config(srv=str(srv), homes_path=str(homes))
    command = storage.home_tool(config, "sync")
    assert command.count(storage.HOME_TOOL) == 1
    command = command.replace(storage.HOME_TOOL, f"bash {shlex.quote(str(TOOL))}")
    bare = {k: v for k, v in env.items() if not k.startswith("HUBSWARM_")}
    result = subprocess.run(["bash", "-c", command], env=bare, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "alice: 1 notebook(s)\n"
    assert (homes / "alice" / "example_notebooks" / "new.ipynb").read_text() == "new\n"


def test_the_hub_runs_the_tool_on_the_configured_folders(place, tmp_path, monkeypatch):
    """The hub's spawner (configured by the rendered config) names the homes path and
    {SRV}/notebooks when it makes a home on first spawn."""
    from test_hub_side import run_async, spawner_for

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
    run_async(spawner.prepare_home())
    assert spawner.extra_container_spec["user"] == f"{FIRST_UID}:{FIRST_UID}"
    assert spawner.volumes == {str(homes / "alice"): "/home/jovyan"}
    assert spawner.environment["HOME"] == "/home/jovyan"
    assert (homes / "alice" / "example_notebooks" / "welcome.ipynb").read_text() == "{}\n"


def test_a_home_is_made_while_the_hub_goes_on(place, tmp_path, monkeypatch):
    """The hub's event loop keeps running while a home is made: here the tool waits for
    a file only the loop writes (a blocking call would wait the tool's 10 s out and fail)."""
    from test_hub_side import run_async, spawner_for

    from hubside import load_hub_config

    homes, _, _, _ = place
    app, package = load_hub_config(tmp_path, monkeypatch, homes_path=str(homes))
    spawner = spawner_for(app, package)
    signal = tmp_path / "the-loop-ran"
    tool = tmp_path / "slow-home-tool"
    tool.write_text(
        f"#!/bin/bash\nfor _ in $(seq 200); do [ -e {signal} ] && {{ echo 4242; exit; }}; sleep 0.05; done\nexit 1\n"
    )
    tool.chmod(0o755)
    spawner.home_tool = str(tool)

    async def both():
        making = asyncio.ensure_future(spawner.prepare_home())
        await asyncio.sleep(0)  # the tool has started; the loop is free
        signal.touch()
        await making

    run_async(both())
    assert spawner.extra_container_spec["user"] == "4242:4242"


def test_a_failed_home_fails_the_spawn_with_the_tools_words(place, tmp_path, monkeypatch):
    from test_hub_side import run_async, spawner_for

    from hubside import load_hub_config

    homes, _, _, _ = place
    app, package = load_hub_config(tmp_path, monkeypatch, homes_path=str(homes))
    spawner = spawner_for(app, package)
    tool = tmp_path / "failing-home-tool"
    tool.write_text("#!/bin/bash\necho 'hubswarm-home: no room on the shared storage' >&2\nexit 1\n")
    tool.chmod(0o755)
    spawner.home_tool = str(tool)
    with pytest.raises(RuntimeError, match="no room on the shared storage"):
        run_async(spawner.prepare_home())
