"""The hub's spawner: notebooks as swarm services in host mode, homes on the shared storage."""

import os
import subprocess

from dockerspawner import SwarmSpawner
from traitlets import Unicode

from .authenticators import USER_LABEL

# Desired states of a task swarm runs or is about to run again.
ALIVE = {"running", "ready"}


class HubswarmSpawner(SwarmSpawner):
    """A SwarmSpawner that reaches each notebook at its node's address and host-mode
    published port, and runs it as the owner of the user's home on the shared storage.

    Host-mode publishing needs no ingress routing mesh: the hub talks straight to
    the worker that runs the notebook, as the original deployment did. When swarm
    starts the notebook again elsewhere (its worker rebooted or was lost, the server
    exited), the next poll routes the user to where it runs now.
    """

    homes_path = Unicode("/mnt/nfs/home", config=True, help="Where users' homes live on every node.")
    notebooks_path = Unicode(config=True, help="The starter notebooks copied into a new home.")
    home_tool = Unicode(
        "/usr/local/sbin/hubswarm-home", config=True, help="Makes a home on first spawn; prints its owner's uid."
    )

    def prepare_home(self):
        """Make the user's home (stable id, starter notebooks) and run the notebook as its owner."""
        name = self.user.name
        uid = subprocess.run(
            [self.home_tool, "ensure", name],
            env={**os.environ, "HUBSWARM_HOMES": self.homes_path, "HUBSWARM_NOTEBOOKS": self.notebooks_path},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.extra_container_spec = {**self.extra_container_spec, "user": f"{uid}:{uid}"}
        self.volumes = {os.path.join(self.homes_path, name): "/home/jovyan"}
        self.environment = {**self.environment, "HOME": "/home/jovyan"}
        labels = {**self.extra_create_kwargs.get("labels", {}), USER_LABEL: name}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}

    async def start(self, *args, **kwargs):
        self.prepare_home()
        return await super().start(*args, **kwargs)

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
        if self.server is not None:
            await self.follow()
        return None

    async def follow(self):
        """Route the user to where the notebook runs now, if swarm moved it; whether it moved."""
        try:
            address, port = await self.get_ip_and_port()
        except RuntimeError:
            return False  # starting again: not published yet
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
        return True

    @property
    def proxy(self):
        return self.user.settings["proxy"]

    async def get_ip_and_port(self):
        tasks = await self.docker("tasks", filters={"service": self.service_name, "desired-state": "running"})
        for task in tasks:
            for port in task.get("Status", {}).get("PortStatus", {}).get("Ports", []):
                if port.get("TargetPort") == self.port:
                    node = await self.docker("inspect_node", task["NodeID"])
                    return node["Status"]["Addr"], port["PublishedPort"]
        raise RuntimeError(f"no published port yet for {self.service_name}")
