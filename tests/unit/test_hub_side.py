"""The hub-side package (tasks/hubswarm_hub) at work, configured the way the hub configures it
(real JupyterHub, real DockerSpawner, a real traitlets Config: test_hub_config), and its
installation into the hub's venv."""

import asyncio
import concurrent.futures
import importlib
import sys
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Server

from fakehost import make_venv
from hubside import load_hub_config
from tasks import pins
from tasks.hub import python_env

GiB = 1024**3


def run_async(coroutine):
    """Run a coroutine to its end on a loop of its own (another test may have left one running here)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def spawner_for(app, package, name="alice", proxy=None, groups=(), user_options=None):
    """A spawner of user ``name``, a member of ``groups``, with the ``user_options`` stored from their last start."""
    spawner_module = importlib.import_module(f"{package.__name__}.spawner")
    user = SimpleNamespace(
        name=name,
        escaped_name=name,
        url=f"/user/{name}/",
        settings={"proxy": proxy},
        groups=[SimpleNamespace(name=group) for group in groups],
    )
    return spawner_module.HubswarmSpawner(
        config=app.config, user=user, user_options=user_options or {}, _deprecated_db_session=None
    )


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


def test_no_published_port_in_time_is_an_error(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    monkeypatch.setattr(sys.modules[spawner.__module__], "PORT_SECONDS", 0)

    async def docker(method, *args, **kwargs):
        return []

    spawner.docker, spawner.homes_path = docker, str(tmp_path / "homes")
    with pytest.raises(RuntimeError, match="no published port yet for jupyter-alice after 0 s"):
        run_async(spawner.get_ip_and_port())


def test_a_starting_notebook_waits_for_swarm_to_publish_its_port(tmp_path, monkeypatch):
    """Swarm calls the task running before its PortStatus is filled in (a busy worker)."""
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    monkeypatch.setattr(sys.modules[spawner.__module__], "PORT_CHECK_SECONDS", 0)
    unpublished = [{"NodeID": "n1", "Status": {"PortStatus": {}}}]
    published = [{"NodeID": "n1", "Status": {"PortStatus": {"Ports": [{"TargetPort": 8888, "PublishedPort": 32801}]}}}]
    answers = iter([unpublished, unpublished, published])

    async def docker(method, *args, **kwargs):
        return {"Status": {"Addr": "10.0.0.11"}} if method == "inspect_node" else next(answers)

    spawner.docker, spawner.homes_path = docker, str(tmp_path / "homes")
    assert run_async(spawner.get_ip_and_port()) == ("10.0.0.11", 32801)


def userlist_authenticator(tmp_path, monkeypatch):
    """(an authenticator as the hub makes it, the names whose notebooks it removed)."""
    app, package = load_hub_config(tmp_path, monkeypatch, userlist="teacher@x.io admin\nstudent@x.io\n")
    module = importlib.import_module(f"{package.__name__}.authenticators")
    removed = []
    chosen = module.managed_by_userlist("shared-password", remove=lambda name: removed.append(name) or [name])
    return chosen(config=app.config), removed


def test_a_user_on_the_list_is_added(tmp_path, monkeypatch):
    authenticator, removed = userlist_authenticator(tmp_path, monkeypatch)
    run_async(authenticator.add_user(SimpleNamespace(name="student", groups=[])))
    assert removed == []


def test_a_user_leaves_the_groups_their_userlist_line_does_not_name(tmp_path, monkeypatch):
    """At the hub's start (load_groups then adds them to those it names)."""
    roster = "teacher@x.io admin instructor\nstudent@x.io group:cs101\n"
    app, package = load_hub_config(tmp_path, monkeypatch, userlist=roster)
    module = importlib.import_module(f"{package.__name__}.authenticators")
    authenticator = module.managed_by_userlist("shared-password", remove=lambda name: [])(parent=app)
    cs101, instructors, other = (SimpleNamespace(name=n) for n in ("cs101", "instructors", "made-on-the-admin-page"))
    student = SimpleNamespace(name="student", groups=[cs101, instructors, other])
    run_async(authenticator.add_user(student))
    assert student.groups == [cs101]


def test_a_user_off_the_list_is_refused_and_their_notebooks_removed(tmp_path, monkeypatch):
    authenticator, removed = userlist_authenticator(tmp_path, monkeypatch)
    with pytest.raises(ValueError) as refused:
        run_async(authenticator.add_user(SimpleNamespace(name="mallory")))
    assert str(refused.value) == (
        "mallory is not on the userlist: users are managed in hubswarm's userlist (add the line there, "
        "then run `fab userlist start-hub`)"
    )
    assert removed == ["mallory"]
    assert "mallory" not in authenticator.allowed_users


def test_remove_notebooks_takes_the_labelled_and_the_legacy_service(tmp_path, monkeypatch):
    _, package = load_hub_config(tmp_path, monkeypatch)
    module = importlib.import_module(f"{package.__name__}.authenticators")
    gone = []

    def service(id_, name):
        return SimpleNamespace(id=id_, name=name, remove=lambda: gone.append(name))

    services = {
        ("label", "hubswarm.user=bob"): [service("s1", "jupyter-bob"), service("s2", "jupyter-bob-lab")],
        ("name", "jupyter-bob"): [service("s1", "jupyter-bob"), service("s3", "jupyter-bobby")],  # a prefix match
    }
    client = SimpleNamespace(services=SimpleNamespace(list=lambda filters: services[next(iter(filters.items()))]))
    assert module.remove_notebooks("bob", client) == ["jupyter-bob", "jupyter-bob-lab"]
    assert sorted(gone) == ["jupyter-bob", "jupyter-bob-lab"]


class FakeProxy:
    def __init__(self):
        self.added = []

    async def add_user(self, user, server_name=""):
        self.added.append((user.name, server_name))


def polled_spawner(tmp_path, monkeypatch, tasks, running_at=("10.0.0.11", 32801), service=True):
    """A spawner last routed to 10.0.0.11:32801, whose service has ``tasks`` and runs at ``running_at``."""
    app, package = load_hub_config(tmp_path, monkeypatch)
    proxy = FakeProxy()
    spawner = spawner_for(app, package, proxy=proxy)
    spawner.server = Server(ip="10.0.0.11", port=32801)
    spawner.db = SimpleNamespace(commit=lambda: None)

    async def get_object():
        return {"ID": "s1"} if service else None

    async def docker(method, *args, **kwargs):
        assert (method, kwargs) == ("tasks", {"filters": {"service": spawner.service_name}})
        return [{"DesiredState": desired, "Status": {"State": state}} for desired, state in tasks]

    async def published_address():
        return running_at

    spawner.removed, spawner.recorded = [], []

    async def remove_object():
        spawner.removed.append(spawner.service_name)

    async def record_published(*published):
        spawner.recorded.append(published)

    spawner.record_published = record_published

    spawner.get_object, spawner.docker, spawner.published_address = get_object, docker, published_address
    spawner.remove_object = remove_object
    return spawner, proxy


def test_a_notebook_swarm_moved_is_routed_where_it_runs_now(tmp_path, monkeypatch):
    spawner, proxy = polled_spawner(tmp_path, monkeypatch, [("running", "running")], ("10.0.0.12", 33012))
    assert run_async(spawner.poll()) is None
    assert (spawner.server.ip, spawner.server.port) == ("10.0.0.12", 33012)
    assert proxy.added == [("alice", "")]
    assert spawner.recorded == [("10.0.0.12", 33012)]


def test_a_notebook_still_starting_is_not_routed_by_a_poll(tmp_path, monkeypatch):
    spawner, proxy = polled_spawner(tmp_path, monkeypatch, [("running", "running")], ("10.0.0.12", 33012))
    spawner._spawn_pending = True
    assert run_async(spawner.poll()) is None
    assert proxy.added == [] and (spawner.server.ip, spawner.server.port) == ("10.0.0.11", 32801)


def test_a_notebook_where_it_was_is_left_alone(tmp_path, monkeypatch):
    spawner, proxy = polled_spawner(tmp_path, monkeypatch, [("running", "running")])
    assert run_async(spawner.poll()) is None
    assert proxy.added == []


def test_a_notebook_swarm_starts_again_is_not_stopped(tmp_path, monkeypatch):
    """Killed (or its worker rebooted): the old task failed, the new one waits out the restart delay."""
    tasks = [("shutdown", "failed"), ("ready", "ready")]
    spawner, proxy = polled_spawner(tmp_path, monkeypatch, tasks, running_at=None)
    assert run_async(spawner.poll()) is None
    assert proxy.added == [] and spawner.removed == []


@pytest.mark.parametrize(
    "tasks, service, status",
    [
        ([("shutdown", "complete")], True, "jupyter-alice has no task to run (complete)"),
        (
            [("shutdown", "failed"), ("shutdown", "rejected")],
            True,
            "jupyter-alice has no task to run (failed, rejected)",
        ),
        ([], False, 0),
    ],
)
def test_a_notebook_swarm_will_not_run_is_stopped(tmp_path, monkeypatch, tasks, service, status):
    spawner, _ = polled_spawner(tmp_path, monkeypatch, tasks, service=service)
    assert run_async(spawner.poll()) == status
    assert spawner.removed == (["jupyter-alice"] if service else [])  # the next start makes it afresh


def adopting_spawner(tmp_path, monkeypatch, published, env=("JUPYTERHUB_API_TOKEN=t0ken", "OTHER=x")):
    """A spawner whose user's notebook service, made by an earlier hub, runs with ``env`` and is
    ``published`` there (None: swarm does not say where)."""
    spawner, _ = polled_spawner(tmp_path, monkeypatch, [("running", "running")], running_at=published)

    async def get_object():
        return {"ID": "s1", "Spec": {"TaskTemplate": {"ContainerSpec": {"Env": list(env)}}}}

    async def nothing():
        return None

    async def made_anew(*args, **kwargs):
        return ("10.0.0.11", 32999)

    spawner.get_object, spawner.prepare_home, spawner.prepare_course = get_object, nothing, nothing
    spawner.start_object, spawner.get_ip_and_port = nothing, spawner.published_address
    monkeypatch.setattr(type(spawner).__mro__[1], "start", made_anew)
    return spawner


def test_a_notebook_running_that_the_hub_does_not_know_is_taken_back_with_its_token(tmp_path, monkeypatch):
    """A hub restored from a backup older than the notebook: its user's start gets it back, kernels and all."""
    spawner = adopting_spawner(tmp_path, monkeypatch, ("10.0.0.12", 33012))
    assert run_async(spawner.start()) == ("10.0.0.12", 33012)
    assert spawner.api_token == "t0ken" and spawner.removed == []
    assert spawner.recorded == [("10.0.0.12", 33012)]


@pytest.mark.parametrize(
    "published, env",
    [
        (None, ("JUPYTERHUB_API_TOKEN=t0ken",)),
        (("10.0.0.12", 33012), ("OTHER=x",)),
    ],
    ids=["not running, or its port lost with the swarm's leader", "no token"],
)
def test_a_notebook_service_that_cannot_be_taken_back_is_made_anew(tmp_path, monkeypatch, published, env):
    spawner = adopting_spawner(tmp_path, monkeypatch, published, env)
    assert run_async(spawner.start()) == ("10.0.0.11", 32999)
    assert spawner.recorded == [("10.0.0.11", 32999)]


def recording_spawner(tmp_path, monkeypatch, tasks):
    """A spawner whose homes are in ``tmp_path``/homes, and whose service has ``tasks``
    ([(id, state, published port or None)])."""
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    spawner.homes_path = str(tmp_path / "homes")

    def status(state, port):
        ports = [{"TargetPort": 8888, "PublishedPort": port}] if port else []
        return {"State": state, "PortStatus": {"Ports": ports} if ports else {}}

    async def docker(method, *args, **kwargs):
        if method == "tasks":
            return [{"ID": i, "NodeID": "n1", "Status": status(state, port)} for i, state, port in tasks]
        return {"Status": {"Addr": "10.0.0.11"}}  # inspect_node

    async def get_task():
        return {"ID": tasks[-1][0]} if tasks else None

    spawner.docker, spawner.get_task = docker, get_task
    return spawner


def test_where_a_notebook_is_published_is_recorded_on_the_shared_storage(tmp_path, monkeypatch):
    spawner = recording_spawner(tmp_path, monkeypatch, [("t1", "running", 32801)])
    run_async(spawner.record_published("10.0.0.11", 32801))
    record = tmp_path / "homes" / ".hubswarm-published" / "jupyter-alice"
    assert record.read_text() == "t1 10.0.0.11:32801\n"
    assert oct(record.stat().st_mode & 0o777) == "0o600" and oct(record.parent.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize(
    "tasks, record, published",
    [
        ([("t1", "running", 32801)], "t1 10.0.0.12:40000", ("10.0.0.11", 32801)),
        ([("t1", "running", None)], "t1 10.0.0.12:40000", ("10.0.0.12", 40000)),
        ([("t2", "running", None)], "t1 10.0.0.12:40000", None),
        ([("t1", "starting", None)], "t1 10.0.0.12:40000", None),
        ([("t1", "running", None)], None, None),
        ([("t1", "running", None)], "t1 nonsense", None),
    ],
    ids=[
        "swarm says where: that",
        "swarm forgot (its leader changed): the record",
        "the record is an older task's",
        "not running",
        "no record",
        "a record that is no address",
    ],
)
def test_where_a_notebook_is_published(tmp_path, monkeypatch, tasks, record, published):
    spawner = recording_spawner(tmp_path, monkeypatch, tasks)
    if record is not None:
        (tmp_path / "homes" / ".hubswarm-published").mkdir(parents=True)
        (tmp_path / "homes" / ".hubswarm-published" / "jupyter-alice").write_text(record + "\n")
    assert run_async(spawner.published_address()) == published


# --- pip-install installs the package into the venv -----------------------------------

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

    venv, site = make_venv(tmp_path)
    (site / "hubswarm_hub").mkdir()
    (site / "hubswarm_hub" / "stale.py").write_text("old\n")
    manifest, tar = python_env.package_archive()
    subprocess.run(["bash", "-c", python_env.package_script(str(site))], input=tar, check=True)
    wanted = {p.name: p.read_bytes() for p in python_env.HUB_PACKAGE.glob("*.py")}
    assert {p.name: p.read_bytes() for p in (site / "hubswarm_hub").iterdir()} == wanted
    assert not list(site.glob("hubswarm_hub.*"))  # nothing left beside it
    answer = subprocess.run(["bash", "-c", python_env.package_fact(str(venv)).command], capture_output=True, text=True)
    assert answer.stdout == f"{site}\n" + manifest


# --- fair shares: the pids limit, and a clear answer when there is no room ----------------------


def test_every_notebook_service_gets_the_pids_limit(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    sent = []
    monkeypatch.setattr(
        package.spawner.SwarmSpawner, "docker", lambda self, method, *a, **kw: asyncio.sleep(0, sent.append(kw))
    )
    template = {"Resources": {"Limits": {"MemoryBytes": 2 << 30}}}
    run_async(spawner.docker("create_service", task_template=template, name="jupyter-alice"))
    assert sent[0]["task_template"]["Resources"]["Limits"] == {"MemoryBytes": 2 << 30, "Pids": 1024}


@pytest.mark.parametrize(
    "error, message",
    [
        (
            "no suitable node (insufficient resources on 2 nodes)",
            "no room on any worker: a server needs 1 GiB guaranteed, and every worker's is taken by running "
            "servers (no suitable node (insufficient resources on 2 nodes)). Try again when one stops, or ask "
            "the hub's admin for a worker.",
        ),
        (
            "no suitable node (scheduling constraints not satisfied on 2 nodes)",
            "no worker can run your server: no suitable node (scheduling constraints not satisfied on 2 nodes). "
            "Ask the hub's admin.",
        ),
    ],
)
def test_a_notebook_no_node_takes_fails_soon_and_says_why(tmp_path, monkeypatch, error, message):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    monkeypatch.setattr(package.spawner, "NO_ROOM_SECONDS", 0)
    monkeypatch.setattr(package.spawner, "NO_ROOM_CHECK_SECONDS", 0)

    async def get_task():
        return {"Status": {"State": "pending", "Err": error}}

    spawner.get_task = get_task
    with pytest.raises(RuntimeError) as raised:
        run_async(spawner.start_object())
    assert str(raised.value) == message


def test_a_notebook_that_runs_starts_as_before(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    answers = iter([{"Status": {"State": "pending", "Err": ""}}, {"Status": {"State": "running"}}])
    last = {"Status": {"State": "running"}}

    async def get_task():
        return next(answers, last)

    spawner.get_task = get_task
    assert run_async(spawner.start_object()) is None


def test_the_hub_database_commits_without_an_fsync_each(tmp_path, monkeypatch):
    """The config makes the hub's database (opened as JupyterHub opens it) a WAL database,
    synced at checkpoints only: commits on the hub's event loop stay cheap."""
    from jupyterhub import orm
    from sqlalchemy import text

    app, _ = load_hub_config(tmp_path, monkeypatch)
    session = orm.new_session_factory(app.config.JupyterHub.db_url)()
    try:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    finally:
        session.close()


@pytest.mark.parametrize(
    "running_at, url",
    [
        (("10.0.0.12", 33012), "http://10.0.0.12:33012/user/alice/"),  # swarm moved it while the hub was down
        (("10.0.0.11", 32801), "http://10.0.0.11:32801/user/alice/"),
        (None, "http://10.0.0.11:32801/user/alice/"),  # never published in time: the stored address
    ],
)
def test_a_restarted_hub_checks_the_notebook_where_it_runs_now(tmp_path, monkeypatch, running_at, url):
    spawner, _ = polled_spawner(tmp_path, monkeypatch, [("running", "running")], running_at)
    spawner.server.base_url = "/user/alice/"
    monkeypatch.setattr(sys.modules[spawner.__module__], "PORT_SECONDS", 0)
    assert run_async(spawner.get_url()) == url


# --- profiles: the spawn page's choice, and the profile a start uses ---------------------------

PROFILES = """\
- name: small
  description: The course's notebook.
- name: big
  description: More <b>memory</b> & CPUs.
  mem_limit: 8G
  cpu_limit: 2
  cpu_guarantee: 1
  default: true
- name: gpu
  image: registry.example.com/course/gpu:1
  node_label: gpu=true
  groups: [staff]
"""
STAFF_ONLY = """\
- name: gpu
  groups: [staff]
"""


def profiled_hub(tmp_path, monkeypatch, profiles=PROFILES, **settings):
    """(app, package) of a hub whose profiles file holds ``profiles``."""
    path = tmp_path / "profiles.yaml"
    path.write_text(profiles)
    return load_hub_config(tmp_path, monkeypatch, profiles=str(path), **settings)


def choice(name, description, checked=False):
    return (
        f'<div class="form-check">\n'
        f'  <input class="form-check-input" type="radio" name="profile" id="profile-{name}" value="{name}"'
        f"{' checked' if checked else ''}>\n"
        f'  <label class="form-check-label" for="profile-{name}"><strong>{name}</strong> {description}</label>\n'
        f"</div>"
    )


SMALL = choice("small", "The course&#x27;s notebook.")
BIG = choice("big", "More &lt;b&gt;memory&lt;/b&gt; &amp; CPUs.", checked=True)


@pytest.mark.parametrize(
    "profiles, groups, stored, form",
    [
        pytest.param(PROFILES, [], {}, f"{SMALL}\n{BIG}", id="those-for-everyone-the-default-checked"),
        pytest.param(
            PROFILES, ["staff"], {}, f"{SMALL}\n{BIG}\n" + choice("gpu", ""), id="a-groups-profile-for-its-members"
        ),
        pytest.param(STAFF_ONLY, ["staff"], {}, "", id="one-profile-no-form"),
        pytest.param(STAFF_ONLY, [], {}, "", id="no-profile-no-form"),
        pytest.param(
            STAFF_ONLY + "- name: small\n",
            [],
            {"profile": "gpu"},
            choice("small", "", checked=True),
            id="a-stale-choice",
        ),
        pytest.param(STAFF_ONLY + "- name: small\n", [], {"profile": "small"}, "", id="a-choice-still-open"),
    ],
)
def test_the_spawn_page_offers_the_profiles_a_user_may_use(tmp_path, monkeypatch, profiles, groups, stored, form):
    app, package = profiled_hub(tmp_path, monkeypatch, profiles)
    spawner = spawner_for(app, package, groups=groups, user_options=stored)
    assert run_async(spawner.get_options_form()) == form


def test_without_profiles_there_is_no_form_and_the_choice_is_the_profile(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package)
    assert run_async(spawner.get_options_form()) == ""
    assert spawner.run_options_from_form({"profile": ["big"], "image": ["evil"]}) == {"profile": "big"}
    assert spawner.run_options_from_form({}) == {}


def started(spawner, package, monkeypatch, made=None):
    """What the spawner starts (the traits SwarmSpawner reads), applying the user options first
    as JupyterHub does, and the users whose home it made (into ``made``)."""
    made = [] if made is None else made

    async def prepare_home():
        made.append(spawner.user.name)

    async def no_notebook_running():
        return None

    async def recorded(*published):
        return None

    async def start(self):
        placement = self.extra_placement_spec["constraints"]
        return {trait: getattr(self, trait) for trait in package.spawner.PROFILE_TRAITS} | {"placement": placement}

    async def spawn():
        await spawner._run_apply_user_options(spawner.user_options)
        return await spawner.start()

    spawner.prepare_home, spawner.running_token = prepare_home, no_notebook_running
    spawner.record_published = recorded
    monkeypatch.setattr(package.spawner.SwarmSpawner, "start", start)
    return run_async(spawn()), made


PLACEMENT = ["node.labels.hubswarm.notebooks == true", "node.labels.hubswarm.no-homes != true"]
IMAGE = f"hubswarm/singleuser:{pins.JUPYTERHUB}"
SMALL_STARTED = {
    "image": IMAGE,
    "mem_limit": 2 * GiB,
    "mem_guarantee": GiB,
    "cpu_limit": None,
    "cpu_guarantee": None,
    "placement": PLACEMENT,
}


@pytest.mark.parametrize(
    "groups, options, wanted",
    [
        pytest.param(
            [],
            {},
            {**SMALL_STARTED, "mem_limit": 8 * GiB, "mem_guarantee": 4 * GiB, "cpu_limit": 2.0, "cpu_guarantee": 1.0},
            id="none-named-the-default",
        ),
        pytest.param([], {"profile": "small"}, SMALL_STARTED, id="one-for-everyone"),
        pytest.param(
            ["staff"],
            {"profile": "gpu"},
            {
                **SMALL_STARTED,
                "image": "registry.example.com/course/gpu:1",
                "placement": [*PLACEMENT, "node.labels.gpu==true"],
            },
            id="a-groups-profile-on-a-node-with-its-label",
        ),
    ],
)
def test_a_start_uses_the_chosen_profile(tmp_path, monkeypatch, groups, options, wanted):
    app, package = profiled_hub(tmp_path, monkeypatch)
    spawner = spawner_for(app, package, groups=groups, user_options=options)
    assert started(spawner, package, monkeypatch) == (wanted, ["alice"])


@pytest.mark.parametrize(
    "profiles, options, message",
    [
        (PROFILES, {"profile": "gpu"}, "there is no profile 'gpu' you may use: choose one of small, big"),
        (PROFILES, {"profile": "huge"}, "there is no profile 'huge' you may use: choose one of small, big"),
        (PROFILES, {"profile": ["big"]}, "there is no profile ['big'] you may use: choose one of small, big"),
        (PROFILES, {"profile": "x" * 100}, f"there is no profile '{'x' * 56}... you may use"),
        (STAFF_ONLY, {}, "no profile on this hub is open to you: ask the hub's admin"),
    ],
)
def test_a_profile_the_user_may_not_use_is_refused_before_anything_is_made(
    tmp_path, monkeypatch, profiles, options, message
):
    from tornado import web

    app, package = profiled_hub(tmp_path, monkeypatch, profiles)
    spawner = spawner_for(app, package, user_options=options)
    # What JupyterHub stored of this start, for the next one that names no profile.
    spawner.orm_spawner, commits = SimpleNamespace(user_options={**options, "other": 1}, server=None, name=""), []
    spawner.db = SimpleNamespace(commit=lambda: commits.append(True))
    made = []
    with pytest.raises(web.HTTPError) as refused:
        started(spawner, package, monkeypatch, made)
    assert refused.value.status_code == 403 and message in refused.value.log_message
    assert made == []  # no home
    assert spawner.orm_spawner.user_options == {"other": 1}  # the next start is not refused again
    assert commits == ([True] if "profile" in options else [])


def test_without_profiles_a_start_is_as_the_settings_say(tmp_path, monkeypatch):
    app, package = load_hub_config(tmp_path, monkeypatch)
    spawner = spawner_for(app, package, user_options={"profile": "big"})  # stored before profiles were gone
    assert started(spawner, package, monkeypatch) == (SMALL_STARTED, ["alice"])
