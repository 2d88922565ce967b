"""The hub's configuration: hubswarm's settings for JupyterHub, applied to ``c`` by
``jupyterhub_config.py`` (``files/``), as The Littlest JupyterHub's configurer does.

The values hubswarm chose for this hub come from ``hubswarm.json`` beside that file
(``hub-config`` writes it: ``tasks.hub.jupyterhub.hub_values``); secrets come from the environment
the hub starts with (its env file), never from that file. One function per concern,
each setting only what it decides; :func:`apply` runs them all.
"""

import os
import sys

from .authenticators import managed_by_userlist
from .database import use_write_ahead_log
from .labels import PLACEMENT
from .spawner import HubswarmSpawner
from .usernames import hub_users

#: The values the hub uses where hubswarm.json has none (a hub whose package is newer than
#: its file still starts): hubswarm's own defaults. Only hubswarm knows the hub's address,
#: public URL, users' servers' names and notebook image, so they have none (a file without
#: the users' servers' names keeps all on the hub's origin).
DEFAULTS = {
    "srv": "/srv/jupyterhub",
    "proxy_api_url": "http://127.0.0.1:8001",
    "authenticator": "google",
    "placement": PLACEMENT,
    "homes_path": "/mnt/nfs/home",
    "named_servers": False,
    "named_server_limit": 2,
    "mem_limit": "2G",
    "mem_guarantee": 2**30,
    "cpu_limit": None,
    "cpu_guarantee": None,
    "pids_limit": 1024,
    "concurrent_spawn_limit": 100,
    "active_server_limit": 0,
    "cull_idle": 3600,
    "cull_max_age": 0,
    "profiles": [],
    "course_id": "",
}

#: hubswarm's OAuth authenticators, and the config section each reads.
OAUTH_SECTIONS = {"google": "GoogleOAuthenticator", "github": "GitHubOAuthenticator"}


def update_urls(c, values):
    """Where the hub listens, and the address it is known by."""
    # The proxy serves users on loopback only; nginx terminates TLS in front of it.
    c.JupyterHub.bind_url = "http://127.0.0.1:8000"
    c.JupyterHub.public_url = values["public_url"]
    # The hub API listens on the private address so notebooks on workers reach it.
    hub_url = f"http://{values['hub_ip']}:8081"
    c.JupyterHub.hub_bind_url = hub_url
    c.JupyterHub.hub_connect_url = hub_url


def update_origins(c, values):
    """Each user's server on a name of its own under the hub's (``https://NAME.hub.example.com``),
    so a page it serves never runs on the hub's origin nor gets the hub's login cookie; or,
    where the operator accepted one origin for all, no user's own server configuration."""
    if values.get("subdomain_host"):
        c.JupyterHub.subdomain_host = values["subdomain_host"]
    else:
        c.Spawner.disable_user_config = True


def update_state(c, values):
    """What the hub keeps in its state folder: its cookie secret and its database."""
    c.JupyterHub.cookie_secret_file = os.path.join(values["srv"], "cookie_secret")
    c.JupyterHub.db_url = "sqlite:///" + os.path.join(values["srv"], "jupyterhub.sqlite")
    # Commits without an fsync each: the hub commits on its one event loop.
    use_write_ahead_log()


def update_restarts(c, values):
    """Restarts lose nobody: the proxy is a service of its own (jupyterhub-proxy; its token
    comes in CONFIGPROXY_AUTH_TOKEN), and the hub leaves users' servers running when it
    stops, so a userlist, config or version change restarts the hub only."""
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = values["proxy_api_url"]
    c.JupyterHub.cleanup_servers = False
    # Routes are checked this often: a restarted proxy gets them all back.
    c.JupyterHub.last_activity_interval = 30


def update_users(c, values):
    """The userlist is the source of truth (read with the same email -> user name rule as
    hubswarm's own check: :mod:`.usernames`)."""
    users = hub_users(os.path.join(values["srv"], "userlist"))
    c.Authenticator.allowed_users = users.allowed
    c.Authenticator.admin_users = users.admins
    # Users taken off the list cannot log in any more, even if the database knows them.
    c.Authenticator.allow_existing_users = False
    # A login by email (OAuth, or typed) becomes the user's name.
    c.Authenticator.username_map = users.logins
    # At a restart, users taken off the list leave the hub's database (their login
    # cookies with them) and their servers stop; their homes stay. The admin page
    # cannot add users: it says they are managed in the userlist.
    c.Authenticator.delete_invalid_users = True
    # The userlist's groups (instructors among them), with just its members: the
    # authenticator takes every user out of the groups their line does not name.
    c.JupyterHub.load_groups = {group: {"users": sorted(members)} for group, members in sorted(users.groups.items())}


def update_authenticator(c, values, environ):
    """How users log in: the chosen authenticator, for the userlist's people only, its
    secrets from the environment."""
    name = values["authenticator"]
    if name == "password":
        # Lab only: one shared password for users, another for admins.
        c.JupyterHub.authenticator_class = managed_by_userlist("shared-password")
        c.SharedPasswordAuthenticator.user_password = environ["HUB_USER_PASSWORD"]
        c.SharedPasswordAuthenticator.admin_password = environ["HUB_ADMIN_PASSWORD"]
        return
    c.JupyterHub.authenticator_class = managed_by_userlist(name)
    oauth = c[OAUTH_SECTIONS[name]]
    oauth.client_id = environ["OAUTH_CLIENT_ID"]
    oauth.client_secret = environ["OAUTH_CLIENT_SECRET"]
    oauth.oauth_callback_url = environ["OAUTH_CALLBACK_URL"]
    if name == "google":
        # The login is the account's email, which the userlist names.
        oauth.username_claim = "email"


def update_notebooks(c, values):
    """Notebooks: swarm services published in host mode, homes on the shared storage."""
    c.JupyterHub.spawner_class = HubswarmSpawner
    c.SwarmSpawner.image = values["image"]
    # Named, so the hub never inspects the image: it may live on the workers only. setpriv
    # (util-linux, in every Debian and Ubuntu image) runs it with no way to gain privileges.
    # What a user makes is writable by its group (umask 002): in the home, the user's own group,
    # theirs alone; in a course or group folder, the folder's, so its members edit each other's files.
    group_writable = ["sh", "-c", 'umask 002 && exec "$@"', "sh"]
    c.SwarmSpawner.cmd = [*group_writable, "setpriv", "--no-new-privs", "jupyterhub-singleuser"]
    c.SwarmSpawner.extra_endpoint_spec = {"ports": {None: (8888, "tcp", "host")}}
    # A notebook's hostname is its node's, so users (and tests) see where they run. It runs as
    # its user with no capability at all, not even in its bounding set (it needs none), on a
    # read-only root: it writes to its home and its /tmp (in memory), never to its node's disk.
    c.SwarmSpawner.extra_container_spec = {"hostname": "{{.Node.Hostname}}", "cap_drop": ["ALL"], "read_only": True}
    c.SwarmSpawner.extra_placement_spec = {"constraints": list(values["placement"])}
    # A worker starting a whole class at once takes minutes to run every container (Zero to
    # JupyterHub allows 300 s as well); a notebook no node has room for is told within seconds.
    c.SwarmSpawner.start_timeout = 300
    # Swarm runs an exited notebook again (its worker rebooted or was lost, File > Shut Down), but
    # gives up on one that fails 3 times in 2 minutes: the hub then shows it stopped, never a loop.
    c.SwarmSpawner.extra_task_spec = {
        "restart_policy": {"Condition": "any", "Delay": 5 * 10**9, "MaxAttempts": 3, "Window": 120 * 10**9}
    }
    # How soon a notebook swarm moved (a worker rebooted or lost, a server exited) is found again.
    c.Spawner.poll_interval = 10
    c.SwarmSpawner.http_timeout = 120
    c.Spawner.default_url = "/lab"
    c.JupyterHub.allow_named_servers = values["named_servers"]
    # One student's servers must not take the class's room.
    c.JupyterHub.named_server_limit_per_user = values["named_server_limit"]
    c.HubswarmSpawner.homes_path = values["homes_path"]
    # The starter notebooks sync-notebooks keeps, copied into a new home.
    c.HubswarmSpawner.notebooks_path = os.path.join(values["srv"], "notebooks")


def update_limits(c, values):
    """What a notebook may use, and how many servers start and run at once."""
    c.SwarmSpawner.mem_limit = values["mem_limit"]
    # Swarm places a notebook only where its guarantees still fit (None: no guarantee).
    c.SwarmSpawner.mem_guarantee = values["mem_guarantee"]
    c.SwarmSpawner.cpu_limit = values["cpu_limit"]
    c.SwarmSpawner.cpu_guarantee = values["cpu_guarantee"]
    c.HubswarmSpawner.pids_limit = values["pids_limit"]
    # How many servers may start at once, and run at once (0: no limit).
    c.JupyterHub.concurrent_spawn_limit = values["concurrent_spawn_limit"]
    c.JupyterHub.active_server_limit = values["active_server_limit"]


def update_profiles(c, values):
    """The profiles a user chooses from as their server starts (none: no choice, the values above)."""
    c.HubswarmSpawner.profiles = values["profiles"]


def update_course(c, values):
    """The course whose assignments nbgrader hands out ("": none, nbgrader off)."""
    c.HubswarmSpawner.course_id = values["course_id"]


def add_service(c, service, scopes):
    """Add a hub service, with a role of its own (its name) holding ``scopes``."""
    role = {"name": service["name"], "scopes": scopes, "services": [service["name"]]}
    c.JupyterHub.services = [*c.JupyterHub.get("services", []), service]
    c.JupyterHub.load_roles = [*c.JupyterHub.get("load_roles", []), role]


def update_culler(c, values):
    """Idle culler: stop servers nobody has used for a while (and, if set, old ones: 0 none)."""
    command = [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--timeout={values['cull_idle']}",
        f"--max-age={values['cull_max_age']}",
    ]
    scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    add_service(c, {"name": "idle-culler", "command": command}, scopes)


def update_metrics(c, environ):
    """Metrics: /hub/metrics for a Prometheus scrape, with a token of its own (when set)."""
    c.JupyterHub.authenticate_prometheus = True
    if environ.get("METRICS_API_TOKEN"):
        add_service(c, {"name": "metrics", "api_token": environ["METRICS_API_TOKEN"]}, ["read:metrics"])


#: The spawner config sections a network setting for notebooks may come in by.
SPAWNER_SECTIONS = ("Spawner", "DockerSpawner", "SwarmSpawner", "HubswarmSpawner")


def unfenced_networks(c):
    """What in ``c`` (the operator's own settings included) would put notebooks on a network of
    their own, where the notebook fence (the nodes' default bridge) does not hold: one line each."""
    found = []
    for section in SPAWNER_SECTIONS:
        settings = c[section] if section in c else {}
        if settings.get("network_name"):
            found.append(f"c.{section}.network_name = {settings['network_name']!r}")
        if (settings.get("extra_task_spec") or {}).get("networks"):
            found.append(f"c.{section}.extra_task_spec['networks']")
        if settings.get("use_internal_ip"):
            found.append(f"c.{section}.use_internal_ip = True")
    return found


def refuse_unfenced(c):
    """Stop the hub (one line in its journal) before it puts a notebook outside the fence."""
    found = unfenced_networks(c)
    if found:
        sys.exit(
            f"hubswarm: {'; '.join(found)} would put notebooks on a network where the notebook fence does "
            "not hold: remove it from jupyterhub_config.d (notebooks use each node's default bridge)"
        )


def apply(c, values, environ=os.environ):
    """Configure the hub in ``c`` (a traitlets Config) from hubswarm's ``values``
    (hubswarm.json, over :data:`DEFAULTS`) and the secrets in ``environ``."""
    values = {**DEFAULTS, **values}
    update_urls(c, values)
    update_origins(c, values)
    update_state(c, values)
    update_restarts(c, values)
    update_users(c, values)
    update_authenticator(c, values, environ)
    update_notebooks(c, values)
    update_limits(c, values)
    update_profiles(c, values)
    update_course(c, values)
    update_culler(c, values)
    update_metrics(c, environ)
