"""The hub's spawner: notebooks as swarm services in host mode, homes, course folders and
nbgrader's exchange on the shared storage, and the profiles a user chooses from."""

import asyncio
import html
import os
import time

from docker.types import Mount
from dockerspawner import SwarmSpawner
from tornado import web
from traitlets import Dict, Integer, List, Unicode, default

from . import course, nbgrader
from .course import HOME_IN_SERVER
from .labels import USER_LABEL
from .profiles import constraint, default_of, open_to, shown
from .usernames import INSTRUCTORS

# Desired states of a task swarm runs or is about to run again.
ALIVE = {"running", "ready"}
# Where DockerSpawner gives a notebook its API token.
TOKEN_VARIABLE = "JUPYTERHUB_API_TOKEN="
# Swarm's word for a task no node can take: "no suitable node (insufficient resources on 2 nodes)".
NO_NODE = "no suitable node"
# How long swarm may find no node before the user is told: a server that just stopped may
# still hold its reservation for a moment.
NO_ROOM_SECONDS = 10
# How often a starting notebook is checked for that: every Docker call of every spawner
# goes through DockerSpawner's one thread, so a class starting at once must not flood it.
NO_ROOM_CHECK_SECONDS = 5
# Swarm may call a task running a moment before it reports the task's published port (longer on
# a worker busy starting a class): a starting notebook waits this long for it.
PORT_SECONDS = 30
PORT_CHECK_SECONDS = 1
# In the homes folder (outside every home: names never start with a dot): where each notebook's
# running task is published, as the hub last saw it (swarm forgets a task's host port when its
# leader changes: a new hub in the place of a lost one reads it there).
PUBLISHED_FOLDER = ".hubswarm-published"
# What a profile sets on the spawner, as the cluster's settings do without profiles.
PROFILE_TRAITS = ("image", "mem_limit", "mem_guarantee", "cpu_limit", "cpu_guarantee")
# One choice of the spawn page's form (JupyterHub's pages are Bootstrap 5).
PROFILE_CHOICE = """<div class="form-check">
  <input class="form-check-input" type="radio" name="profile" id="profile-{name}" value="{name}"{checked}>
  <label class="form-check-label" for="profile-{name}"><strong>{name}</strong> {description}</label>
</div>"""


def read_text(path):
    with open(path) as record:
        return record.read()


def write_atomically(path, text):
    """``text`` into ``path`` (0600, in a 0700 folder), whole or not at all."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    partial = f"{path}.partial"
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    os.replace(partial, path)


def profile_from_form(formdata):
    """The user option ``profile`` from the spawn page's form (or its query: /hub/spawn?profile=big)."""
    return {"profile": formdata["profile"][0]} if formdata.get("profile") else {}


class HubswarmSpawner(SwarmSpawner):
    """A SwarmSpawner that reaches each notebook at its node's address and host-mode
    published port, and runs it as the owner of the user's home on the shared storage, with the
    course folders there that the user may use (:mod:`.course`), and for a course's assignments
    nbgrader's exchange and its user's role's configuration (:mod:`.nbgrader`).

    Host-mode publishing needs no ingress routing mesh: the hub talks straight to
    the worker that runs the notebook, as the original deployment did. When swarm
    starts the notebook again elsewhere (its worker rebooted or was lost, the server
    exited), the next poll routes the user to where it runs now.

    With :attr:`profiles`, the user option ``profile`` (the spawn page's form, or a start
    through the REST API) chooses the notebook's image, resources and node label, as
    Zero to JupyterHub's profile list does; one the user may not use is refused.
    """

    homes_path = Unicode("/mnt/nfs/home", config=True, help="Where users' homes live on every node.")
    notebooks_path = Unicode(config=True, help="The starter notebooks copied into a new home.")
    home_tool = Unicode(
        "/usr/local/sbin/hubswarm-home", config=True, help="Makes a home on first spawn; prints its owner's uid."
    )
    pids_limit = Integer(0, config=True, help="The most processes and threads a notebook may run (0: no limit).")
    tmp_size = Integer(
        512 * 2**20,
        config=True,
        help="The size of a notebook's /tmp, in memory (counted in its memory limit): its root is read-only.",
    )
    course_id = Unicode(
        config=True,
        help="The course whose assignments nbgrader hands out (hubswarm's HUBSWARM_COURSE_ID); empty: none.",
    )
    profiles = List(
        Dict(),
        config=True,
        help="The profiles a user chooses from (hubswarm's HUBSWARM_PROFILES), each with every key: name, "
        "description, image, mem_limit, mem_guarantee, cpu_limit, cpu_guarantee, node_label ('' for any node), "
        "groups (None for everyone), default. Empty: no choice, the spawner's own settings.",
    )

    @default("options_form")
    def _profiles_form_default(self):
        # Asked at every visit of the spawn page, so the form follows the user's groups.
        return type(self).profiles_form

    @default("options_from_form")
    def _profile_from_form_default(self):
        return profile_from_form

    @default("apply_user_options")
    def _apply_profile_default(self):
        # JupyterHub's hook for user options: run before every start, its 403 shown as it is.
        return type(self).apply_profile

    def allowed_profiles(self):
        """The profiles the user may use: those for everyone, and those of a group they are in."""
        return open_to([group.name for group in self.user.groups], self.profiles)

    def profiles_form(self):
        """The spawn page's choice among the user's profiles, their default checked; "" (no
        form) when they have no choice to make."""
        allowed = self.allowed_profiles()
        # A choice stored from an earlier start that the user may no longer make (the profiles or
        # their groups changed) is what a start without the form would use: the form asks again.
        stored = self.user_options.get("profile")
        stale = stored is not None and stored not in [p["name"] for p in allowed]
        if not allowed or (len(allowed) == 1 and not stale):
            return ""
        checked = default_of(allowed)
        return "\n".join(
            PROFILE_CHOICE.format(
                name=html.escape(p["name"]),
                description=html.escape(p["description"]),
                checked=" checked" if p is checked else "",
            )
            for p in allowed
        )

    def apply_profile(self, user_options):
        """Start with the profile the user chose (none without profiles)."""
        profile = self.chosen_profile(user_options)
        if profile:
            self.use_profile(profile)

    def chosen_profile(self, user_options):
        """The profile the user option ``profile`` names, the user's default when it names none;
        None without profiles. A profile the user may not use (or none at all) is refused: 403."""
        if not self.profiles:
            return None
        allowed = self.allowed_profiles()
        if not allowed:
            raise web.HTTPError(403, "no profile on this hub is open to you: ask the hub's admin")
        name = user_options.get("profile")
        if name is None:
            return default_of(allowed)
        for profile in allowed:
            if profile["name"] == name:
                return profile
        self.forget_choice()
        names = ", ".join(p["name"] for p in allowed)
        raise web.HTTPError(403, f"there is no profile {shown(name)} you may use: choose one of {names}")

    def forget_choice(self):
        """JupyterHub keeps the options of the last start for the next one that names none: a
        refused profile must not be the choice of every later start."""
        if self.orm_spawner is not None and "profile" in (self.orm_spawner.user_options or {}):
            self.orm_spawner.user_options = {
                key: value for key, value in self.orm_spawner.user_options.items() if key != "profile"
            }
            if self.db is not None:
                self.db.commit()

    def use_profile(self, profile):
        """Run the notebook with ``profile``'s image and resources, on a node with its label."""
        for trait in PROFILE_TRAITS:
            setattr(self, trait, profile[trait])
        if profile["node_label"]:
            # A spawner starts once: JupyterHub makes a new one for the next start.
            constraints = [*self.extra_placement_spec.get("constraints", []), constraint(profile["node_label"])]
            self.extra_placement_spec = {**self.extra_placement_spec, "constraints": constraints}

    async def prepare_home(self):
        """Make the user's home (stable id, starter notebooks) and run the notebook as its owner.

        Awaited, never run inline: a class's first spawns make their homes at once, and the
        hub's one event loop must keep answering logins meanwhile."""
        name = self.user.name
        tool = await asyncio.create_subprocess_exec(
            self.home_tool,
            "ensure",
            name,
            env={**os.environ, "HUBSWARM_HOMES": self.homes_path, "HUBSWARM_NOTEBOOKS": self.notebooks_path},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await tool.communicate()
        if tool.returncode:
            # The tool's own words: the student reads them (the homes storage missing, say).
            raise RuntimeError(err.decode(errors="replace").strip() or f"{self.home_tool} ensure {name} failed")
        uid = out.decode().strip()
        self.extra_container_spec = {**self.extra_container_spec, "user": f"{uid}:{uid}"}
        self.volumes = {os.path.join(self.homes_path, name): HOME_IN_SERVER}
        self.environment = {**self.environment, "HOME": HOME_IN_SERVER}
        labels = {**self.extra_create_kwargs.get("labels", {}), USER_LABEL: name}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}

    async def prepare_course(self):
        """Mount the course folder (read-only but for instructors) and the groups' folders, and run
        the notebook with the ids of the user's groups, by which the kernel lets it in; with a
        course for nbgrader, mount its exchange and the user's role's configuration too."""
        groups = [group.name for group in self.user.groups]
        # (The folders are on the shared storage: looked at off the hub's event loop.)
        volumes, ids, environment = await asyncio.to_thread(self.course_view, groups)
        self.volumes = {**self.volumes, **volumes}
        self.environment = {**self.environment, **environment}
        self.extra_container_spec = {**self.extra_container_spec, "groups": [str(gid) for gid in ids]}

    def course_view(self, groups):
        """(volumes, group ids, environment) of the server of a user in ``groups``: :mod:`.course`'s
        and :mod:`.nbgrader`'s."""
        volumes, ids = course.server_view(self.homes_path, groups, HOME_IN_SERVER)
        graded, environment = nbgrader.server_view(self.homes_path, self.course_id, INSTRUCTORS in groups)
        return {**volumes, **graded}, ids, environment

    @property
    def mounts(self):
        """The home (and the course folders), and /tmp in memory: with the root read-only, nothing
        a notebook writes outside them reaches its node's disk."""
        return [*super().mounts, Mount(target="/tmp", source=None, type="tmpfs", tmpfs_size=self.tmp_size)]

    async def start(self, *args, **kwargs):
        await self.prepare_home()
        await self.prepare_course()
        token = await self.running_token()
        if token:
            # A notebook that runs on while the hub does not know it: a hub put back from a
            # backup older than the notebook (replace-hub, restore). Take it back, kernels and
            # all, where DockerSpawner would remove it and make a new one; JupyterHub registers
            # its token (from its service, which only the hub's managers read) for the server.
            self.log.warning("%s runs already: taking it back as %s's server", self.service_name, self.user.name)
            self.api_token = token
            await self.start_object()
            published = await self.get_ip_and_port()
        else:
            published = await super().start(*args, **kwargs)
        await self.record_published(*published)
        return published

    async def running_token(self):
        """The API token of the user's notebook service when swarm runs its task and the hub
        knows where it is published (:meth:`published_address`), else None (it is made anew)."""
        service = await self.get_object()
        if service is None or await self.published_address() is None:
            return None
        environment = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {}).get("Env") or []
        return next((line.split("=", 1)[1] for line in environment if line.startswith(TOKEN_VARIABLE)), None)

    async def docker(self, method, *args, **kwargs):
        """Docker's API, with the pids limit in every notebook service made (docker-py's
        Resources has no word for it; swarm has, since API 1.41)."""
        if method == "create_service" and self.pids_limit:
            kwargs["task_template"]["Resources"].setdefault("Limits", {})["Pids"] = self.pids_limit
        return await super().docker(method, *args, **kwargs)

    async def start_object(self):
        """Wait for swarm to run the notebook, as SwarmSpawner does, but tell the user soon
        when no node has room for it, instead of after the whole start timeout."""
        running = asyncio.ensure_future(super().start_object())
        since = None
        while not running.done():
            await asyncio.wait([running], timeout=NO_ROOM_CHECK_SECONDS)
            if running.done():
                break
            task = await self.get_task()
            error = (task or {}).get("Status", {}).get("Err", "")
            if NO_NODE not in error:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= NO_ROOM_SECONDS:
                running.cancel()
                raise RuntimeError(self.no_room(error))
        return running.result()

    def no_room(self, error):
        """What the user reads when swarm finds no node for the notebook."""
        if "insufficient resources" not in error:
            return f"no worker can run your server: {error}. Ask the hub's admin."
        asks = [f"{self.mem_guarantee / 2**30:g} GiB" if self.mem_guarantee else ""]
        asks.append(f"{self.cpu_guarantee:g} CPUs" if self.cpu_guarantee else "")
        wanted = " and ".join(a for a in asks if a) or "a place"
        return (
            f"no room on any worker: a server needs {wanted} guaranteed, and every worker's is taken "
            f"by running servers ({error}). Try again when one stops, or ask the hub's admin for a worker."
        )

    async def poll(self):
        """None while swarm runs the notebook or is starting it again (its task waits
        as "ready" through the restart delay: SwarmSpawner would call that stopped)."""
        if await self.get_object() is None:
            return 0
        tasks = await self.docker("tasks", filters={"service": self.service_name})
        if not any(task.get("DesiredState") in ALIVE for task in tasks):
            states = sorted({task.get("Status", {}).get("State", "?") for task in tasks})
            # JupyterHub stops only servers that still run: this one is gone, so remove its
            # service here (the next start makes a new one).
            await self.remove_object()
            return f"{self.service_name} has no task to run ({', '.join(states) or 'none'})"
        if self.server is not None and not self.pending:  # a start in progress routes itself
            await self.follow()
        return None

    async def follow(self):
        """Route the user to where the notebook runs now, if swarm moved it; whether it moved."""
        published = await self.published_address()
        if published is None:
            return False  # starting again: not published yet
        address, port = published
        if (address, port) == (self.server.ip, self.server.port):
            return False
        self.log.warning(
            "%s moved from %s:%s to %s:%s: routing there",
            self.service_name,
            self.server.ip,
            self.server.port,
            address,
            port,
        )
        self.server.ip, self.server.port = address, port
        self.db.commit()
        await self.proxy.add_user(self.user, self.name)
        await self.record_published(address, port)
        return True

    async def get_url(self):
        """Where a server the hub knew answers now: JupyterHub asks on its start-up, then
        waits for that address to answer. Swarm may have started the notebook again (another
        node or port) while the hub was down; the stored address would never answer, and the
        hub would stop the server after http_timeout."""
        try:
            address, port = await self.get_ip_and_port()
        except RuntimeError:  # not published in time: the stored address is all there is
            return await super().get_url()
        return f"{self.server.proto}://{address}:{port}{self.server.base_url}"

    @property
    def proxy(self):
        return self.user.settings["proxy"]

    async def get_ip_and_port(self):
        """Where the starting notebook is published: its node's address and host port."""
        deadline = time.monotonic() + PORT_SECONDS
        while (published := await self.published_address()) is None:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"no published port yet for {self.service_name} after {PORT_SECONDS} s")
            await asyncio.sleep(PORT_CHECK_SECONDS)
        return published

    async def published_address(self):
        """(node address, host port) of the notebook's running task, or None before swarm
        publishes it. Swarm forgets a running task's host port when its leader changes (the hub
        lost with it, replace-hub): where the hub recorded it then (:meth:`record_published`)."""
        tasks = await self.docker("tasks", filters={"service": self.service_name, "desired-state": "running"})
        for task in tasks:
            for port in task.get("Status", {}).get("PortStatus", {}).get("Ports", []):
                if port.get("TargetPort") == self.port:
                    node = await self.docker("inspect_node", task["NodeID"])
                    return node["Status"]["Addr"], port["PublishedPort"]
        running = {task.get("ID") for task in tasks if task.get("Status", {}).get("State") == "running"}
        return await self.recorded_address(running)

    async def recorded_address(self, running):
        """(address, port) the hub recorded (:meth:`record_published`), when it is that of a task of ``running``."""
        try:
            record = await asyncio.to_thread(read_text, self.published_record)
        except OSError:
            return None
        task, _, where = record.strip().partition(" ")
        address, _, port = where.rpartition(":")
        return (address, int(port)) if task in running and address and port.isdigit() else None

    async def record_published(self, address, port):
        """Record where the notebook's running task is published, on the shared storage, for a
        hub that asks once swarm has forgotten it (a new hub in the place of a lost one)."""
        task = await self.get_task()
        if not task:
            return
        try:
            await asyncio.to_thread(write_atomically, self.published_record, f"{task['ID']} {address}:{port}\n")
        except OSError as exc:  # the notebook runs: only a later hub's view of it is less
            self.log.warning("%s: where it is published not recorded: %s", self.service_name, exc)

    @property
    def published_record(self):
        return os.path.join(self.homes_path, PUBLISHED_FOLDER, self.service_name)
