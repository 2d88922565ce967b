"""The hub's configuration (tasks/hubswarm_hub/config.py), loaded as the hub loads it: the
fixed jupyterhub_config.py applies it to the values hub-config writes, in a real JupyterHub
with real traitlets; the tests read the resulting traits, one table per concern."""

import subprocess
import sys

import pytest
from test_hub_side import profiled_hub, spawner_for

from fakehost import hub_config
from hubside import SECRETS, load_hub_config
from tasks.hub import jupyterhub as hub
from tasks.hubswarm_hub import config as hub_side_config

GiB = 1024**3


def test_the_values_hubswarm_writes_by_default_are_the_hubs_defaults():
    """A hub whose package is newer than its hubswarm.json starts as hubswarm's defaults would."""
    config = hub_config()
    values = hub.hub_values(config, "10.0.0.5", "hub.example.com")
    only_hubswarm_knows = {
        "hub_ip": "10.0.0.5",
        "public_url": "https://hub.example.com/",
        "subdomain_host": "https://hub.example.com",
        "image": config.image,
    }
    assert values == {**hub_side_config.DEFAULTS, **only_hubswarm_knows}


def test_where_the_hub_listens_and_keeps_its_state(tmp_path, monkeypatch):
    app, _ = load_hub_config(tmp_path, monkeypatch)
    srv = tmp_path / "srv"
    assert app.bind_url == "http://127.0.0.1:8000"
    assert app.public_url == "https://hub.example.com/"
    assert app.hub_bind_url == app.hub_connect_url == "http://10.0.0.5:8081"
    assert app.cookie_secret_file == str(srv / "cookie_secret")
    assert app.db_url == f"sqlite:///{srv / 'jupyterhub.sqlite'}"


def test_restarts_keep_the_proxy_and_the_servers(tmp_path, monkeypatch):
    app, _ = load_hub_config(tmp_path, monkeypatch)
    config = app.config
    assert config.ConfigurableHTTPProxy.should_start is False
    assert config.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert app.cleanup_servers is False
    assert app.last_activity_interval == 30  # routes checked this often
    assert config.Authenticator.delete_invalid_users is True


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


def test_the_userlists_groups_are_the_hubs_with_their_members_only(tmp_path, monkeypatch):
    roster = (
        "teacher@x.io admin instructor\nta@x.io instructor group:cs101\n"
        "ann@x.io group:cs101 group:lab-2\nbob@x.io group:lab-2\ncarl@x.io\n"
    )
    app, _ = load_hub_config(tmp_path, monkeypatch, userlist=roster)
    assert app.load_groups == {
        "cs101": {"users": ["ann", "ta"]},
        "instructors": {"users": ["ta", "teacher"]},
        "lab-2": {"users": ["ann", "bob"]},
    }
    (tmp_path / "none").mkdir()
    app, _ = load_hub_config(tmp_path / "none", monkeypatch, userlist="teacher@x.io admin\n")
    assert app.load_groups == {}


OAUTH_SECRETS = {
    "client_id": SECRETS["OAUTH_CLIENT_ID"],
    "client_secret": SECRETS["OAUTH_CLIENT_SECRET"],
    "oauth_callback_url": SECRETS["OAUTH_CALLBACK_URL"],
}


@pytest.mark.parametrize(
    "name, base, section",
    [
        (
            "password",
            "SharedPasswordAuthenticator",
            {"user_password": SECRETS["HUB_USER_PASSWORD"], "admin_password": SECRETS["HUB_ADMIN_PASSWORD"]},
        ),
        ("google", "GoogleOAuthenticator", {**OAUTH_SECRETS, "username_claim": "email"}),
        ("github", "GitHubOAuthenticator", OAUTH_SECRETS),
    ],
)
def test_the_authenticator_is_the_chosen_one_with_its_secrets_from_the_environment(
    tmp_path, monkeypatch, name, base, section
):
    app, _ = load_hub_config(tmp_path, monkeypatch, authenticator=name)
    config = app.config
    chosen = config.JupyterHub.authenticator_class
    assert chosen.__name__ == f"Userlist{base}" and [c.__name__ for c in chosen.__mro__][1] == base
    assert dict(config[base]) == section
    assert {key for key in config if key.endswith("Authenticator")} == {"Authenticator", base}  # no other's
    authenticator = chosen(config=config)
    assert {trait: getattr(authenticator, trait) for trait in section} == section
    assert authenticator.allowed_users == {"teacher"}  # its own config section still applies


def test_notebooks_run_on_swarm_with_homes_on_the_shared_storage(tmp_path, monkeypatch):
    image = 'img/"quoted":1'
    app, package = load_hub_config(tmp_path, monkeypatch, image=image, homes_path="/shared/home")
    spawner_class = app.config.JupyterHub.spawner_class
    assert spawner_class.__module__ == f"{package.__name__}.spawner" and spawner_class.__name__ == "HubswarmSpawner"
    spawner = spawner_for(app, package)
    assert spawner.image == image
    assert spawner.cmd[-3:] == ["setpriv", "--no-new-privs", "jupyterhub-singleuser"]
    # ... run by a shell that makes what the user makes writable by its group, as DockerSpawner
    # runs the command: its arguments after it (here in place of the server, a shell that says).
    ran = subprocess.run([*spawner.cmd[:-3], "sh", "-c", 'umask; echo "$@"', "sh", "--ip=0.0.0.0"], capture_output=True)
    assert ran.stdout.decode().split() == ["0002", "--ip=0.0.0.0"]
    assert spawner.extra_endpoint_spec == {"ports": {None: (8888, "tcp", "host")}}
    # swarm's template, as is; no capability at all; the root read-only, /tmp in memory
    assert spawner.extra_container_spec == {"hostname": "{{.Node.Hostname}}", "cap_drop": ["ALL"], "read_only": True}
    spawner.volumes = {"/mnt/nfs/home/alice": "/home/jovyan"}
    assert [dict(m) for m in spawner.mounts] == [
        {"Target": "/home/jovyan", "Source": "/mnt/nfs/home/alice", "Type": "bind", "ReadOnly": False},
        {"Target": "/tmp", "Source": None, "Type": "tmpfs", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 2**29}},
    ]
    assert spawner.extra_placement_spec == {
        "constraints": ["node.labels.hubswarm.notebooks == true", "node.labels.hubswarm.no-homes != true"]
    }
    assert spawner.start_timeout == 300
    assert spawner.extra_task_spec == {
        "restart_policy": {"Condition": "any", "Delay": 5 * 10**9, "MaxAttempts": 3, "Window": 120 * 10**9}
    }
    assert (spawner.poll_interval, spawner.http_timeout, spawner.default_url) == (10, 120, "/lab")
    assert spawner.homes_path == "/shared/home"
    assert spawner.notebooks_path == str(tmp_path / "srv" / "notebooks")


@pytest.mark.parametrize(
    "settings, traits",
    [
        (
            {},
            {"mem_limit": 2 * GiB, "mem_guarantee": GiB, "cpu_limit": None, "cpu_guarantee": None, "pids_limit": 1024},
        ),
        ({"mem_limit": "4G"}, {"mem_limit": 4 * GiB, "mem_guarantee": 2 * GiB}),  # half the limit
        ({"mem_guarantee": "512M"}, {"mem_guarantee": 512 * 1024**2}),
        ({"mem_guarantee": "0"}, {"mem_guarantee": None}),  # none
        ({"cpu_limit": "1.5", "cpu_guarantee": "0.5"}, {"cpu_limit": 1.5, "cpu_guarantee": 0.5}),
        ({"cpu_limit": "2", "cpu_guarantee": "0"}, {"cpu_limit": 2.0, "cpu_guarantee": None}),
        ({"pids_limit": "256"}, {"pids_limit": 256}),
        ({"pids_limit": "0"}, {"pids_limit": 0}),  # no limit
    ],
)
def test_what_a_notebook_may_use(tmp_path, monkeypatch, settings, traits):
    app, package = load_hub_config(tmp_path, monkeypatch, **settings)
    spawner = spawner_for(app, package)
    assert {trait: getattr(spawner, trait) for trait in traits} == traits


def test_the_profiles_reach_the_spawner_with_every_key_as_the_hub_takes_it(tmp_path, monkeypatch):
    app, package = profiled_hub(tmp_path, monkeypatch, mem_guarantee="512M")
    image = hub_config().image
    assert spawner_for(app, package).profiles == [
        {
            "name": "small",
            "description": "The course's notebook.",
            "image": image,
            "mem_limit": "2G",
            "mem_guarantee": "512M",
            "cpu_limit": None,
            "cpu_guarantee": None,
            "node_label": "",
            "groups": None,
            "default": False,
        },
        {
            "name": "big",
            "description": "More <b>memory</b> & CPUs.",
            "image": image,
            "mem_limit": "8G",
            "mem_guarantee": "512M",
            "cpu_limit": 2.0,
            "cpu_guarantee": 1.0,
            "node_label": "",
            "groups": None,
            "default": True,
        },
        {
            "name": "gpu",
            "description": "",
            "image": "registry.example.com/course/gpu:1",
            "mem_limit": "2G",
            "mem_guarantee": "512M",
            "cpu_limit": None,
            "cpu_guarantee": None,
            "node_label": "gpu=true",
            "groups": ["staff"],
            "default": False,
        },
    ]


def test_a_profiles_memory_guarantee_is_half_its_own_limit_when_none_is_set(tmp_path, monkeypatch):
    app, package = profiled_hub(tmp_path, monkeypatch)
    assert [p["mem_guarantee"] for p in spawner_for(app, package).profiles] == [GiB, 4 * GiB, GiB]


@pytest.mark.parametrize(
    "settings, traits",
    [
        (
            {},
            {
                "concurrent_spawn_limit": 100,
                "active_server_limit": 0,
                "allow_named_servers": False,
                "named_server_limit_per_user": 2,
            },
        ),
        (
            {"concurrent_spawn_limit": "20", "active_server_limit": "150", "named_servers": True},
            {"concurrent_spawn_limit": 20, "active_server_limit": 150, "allow_named_servers": True},
        ),
        ({"named_servers": True, "named_server_limit": "5"}, {"named_server_limit_per_user": 5}),
        ({"named_servers": True, "named_server_limit": "0"}, {"named_server_limit_per_user": 0}),  # no limit
        ({"concurrent_spawn_limit": "0"}, {"concurrent_spawn_limit": 0}),  # no limit
    ],
)
def test_how_many_servers_start_and_run(tmp_path, monkeypatch, settings, traits):
    app, _ = load_hub_config(tmp_path, monkeypatch, **settings)
    assert {trait: getattr(app, trait) for trait in traits} == traits


CULLER_ROLE = {
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}


@pytest.mark.parametrize(
    "settings, flags",
    [
        ({}, ["--timeout=3600", "--max-age=0"]),  # idle servers only
        ({"cull_idle": "600", "cull_max_age": "28800"}, ["--timeout=600", "--max-age=28800"]),
    ],
)
def test_the_culler_stops_idle_and_old_servers(tmp_path, monkeypatch, settings, flags):
    app, _ = load_hub_config(tmp_path, monkeypatch, **settings)
    [culler] = app.services
    assert culler == {"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", *flags]}
    assert app.load_roles == [CULLER_ROLE]


@pytest.mark.parametrize(
    "token, services, roles",
    [
        ("", [], []),  # no token: no service
        (
            "m" * 64,
            [{"name": "metrics", "api_token": "m" * 64}],
            [{"name": "metrics", "scopes": ["read:metrics"], "services": ["metrics"]}],
        ),
    ],
)
def test_metrics_get_a_service_with_the_metrics_scope_only(tmp_path, monkeypatch, token, services, roles):
    monkeypatch.setenv("METRICS_API_TOKEN", token)
    app, _ = load_hub_config(tmp_path, monkeypatch)
    assert app.authenticate_prometheus is True
    assert app.services[1:] == services and app.load_roles[1:] == roles  # after the culler's


def test_the_operators_own_settings_load_last(tmp_path, monkeypatch):
    extra = tmp_path / "srv" / "jupyterhub_config.d"
    extra.mkdir(parents=True)
    (extra / "10-banner.py").write_text('c.JupyterHub.template_vars = {"announcement": "Lab closes at 6"}\n')
    (extra / "20-limit.py").write_text("c.JupyterHub.active_server_limit = 7\n")
    app, _ = load_hub_config(tmp_path, monkeypatch, active_server_limit="150")
    assert app.template_vars == {"announcement": "Lab closes at 6"}
    assert app.active_server_limit == 7  # after hubswarm's value


def test_each_users_server_has_a_name_of_its_own_unless_one_origin_is_accepted(tmp_path, monkeypatch):
    (tmp_path / "subdomains").mkdir()
    (tmp_path / "one-origin").mkdir()
    app, _ = load_hub_config(tmp_path / "subdomains", monkeypatch)
    assert app.subdomain_host == "https://hub.example.com"
    assert "disable_user_config" not in app.config.Spawner
    app, _ = load_hub_config(tmp_path / "one-origin", monkeypatch, single_origin=True)
    assert app.subdomain_host == ""
    assert app.config.Spawner.disable_user_config is True  # a server's own config could serve pages


@pytest.mark.parametrize(
    "line, named",
    [
        ('c.SwarmSpawner.network_name = "class-net"', "c.SwarmSpawner.network_name = 'class-net'"),
        ('c.DockerSpawner.network_name = "class-net"', "c.DockerSpawner.network_name = 'class-net'"),
        ('c.SwarmSpawner.extra_task_spec = {"networks": ["class-net"]}', "c.SwarmSpawner.extra_task_spec['networks']"),
        ("c.Spawner.use_internal_ip = True", "c.Spawner.use_internal_ip = True"),
    ],
)
def test_the_operators_settings_cannot_put_notebooks_outside_the_fence(tmp_path, monkeypatch, line, named):
    extra = tmp_path / "srv" / "jupyterhub_config.d"
    extra.mkdir(parents=True)
    (extra / "10-network.py").write_text(line + "\n")
    with pytest.raises(SystemExit) as stopped:
        load_hub_config(tmp_path, monkeypatch)
    assert str(stopped.value) == (
        f"hubswarm: {named} would put notebooks on a network where the notebook fence does not hold: "
        "remove it from jupyterhub_config.d (notebooks use each node's default bridge)"
    )


def test_hubswarms_own_settings_keep_notebooks_inside_the_fence(tmp_path, monkeypatch):
    app, _ = load_hub_config(tmp_path, monkeypatch)
    assert hub_side_config.unfenced_networks(app.config) == []
