"""The hub's authenticators, for the people on the userlist only.

The userlist is the source of truth, for groups too: a user taken off it is refused at the
hub's next start (deleted from its database, so their login cookie dies too)
and their notebook services stop; their home stays. The admin page cannot add
a user: it says where users are managed.
"""

import asyncio
import inspect
from importlib.metadata import entry_points

from .labels import USER_LABEL

# The label every notebook service carries: whose it is.
MANAGED_HERE = (
    "{name} is not on the userlist: users are managed in hubswarm's userlist (add the line there, "
    "then run `fab userlist start-hub`)"
)


def authenticator_class(name):
    """The class JupyterHub knows as ``name`` ("google", "shared-password"...)."""
    [entry] = entry_points(group="jupyterhub.authenticators", name=name)
    return entry.load()


def remove_notebooks(name, client=None):
    """Remove ``name``'s notebook services (labelled, or named as before the label);
    the names removed."""
    if client is None:
        import docker

        client = docker.from_env()
    found = {s.id: s for s in client.services.list(filters={"label": f"{USER_LABEL}={name}"})}
    legacy = f"jupyter-{name}"
    found.update({s.id: s for s in client.services.list(filters={"name": legacy}) if s.name == legacy})
    for service in found.values():
        service.remove()
    return sorted(s.name for s in found.values())


def managed_by_userlist(name, remove=remove_notebooks):
    """``name``'s authenticator class, taking only the users the userlist allows."""
    base = authenticator_class(name)

    class UserlistAuthenticator(base):
        async def add_user(self, user):
            # JupyterHub calls this for every user of its database at start, and for
            # a user added on the admin page: a failure refuses the user there and,
            # with delete_invalid_users, deletes them at start.
            if user.name not in self.allowed_users:
                removed = await asyncio.to_thread(remove, user.name)
                if removed:
                    self.log.warning("stopped %s of %s, who is off the userlist", ", ".join(removed), user.name)
                raise ValueError(MANAGED_HERE.format(name=user.name))
            result = super().add_user(user)
            if inspect.isawaitable(result):
                await result
            # The userlist names a user's groups: load_groups adds them to those (after
            # this, at the hub's start, which commits), and here they leave any other.
            groups = getattr(self.parent, "load_groups", {})
            wanted = {name for name, group in groups.items() if user.name in group.get("users", ())}
            for group in [g for g in user.groups if g.name not in wanted]:
                user.groups.remove(group)
                self.log.info("%s left group %s: their userlist line does not name it", user.name, group.name)

    UserlistAuthenticator.__name__ = UserlistAuthenticator.__qualname__ = f"Userlist{base.__name__}"
    return UserlistAuthenticator
