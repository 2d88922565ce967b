"""Profiles as both sides read them: what a profile's name and node label may be, who may use
a profile, and which is a user's default. Standard library only.

hubswarm checks the profiles file with these patterns before any host is touched
(``tasks.settings.profiles``), and ``pip-install`` installs this file into the hub's
virtualenv, where the spawner (:mod:`.spawner`) offers and applies the profiles.
"""

#: A profile's name: the user option ``profile``, and its value in the spawn page's form.
NAME_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
# Each side of a swarm node label: nothing a placement constraint would read as an operator.
_LABEL_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?"
#: A profile's node label: only nodes that have it run the profile's notebooks.
NODE_LABEL_PATTERN = rf"(?P<key>{_LABEL_PART})=(?P<value>{_LABEL_PART})"
SHOWN_MAX = 60


def shown(value):
    """A value from a file or a request, as a message shows it: quoted and escaped (a hostile
    string stays data, on one line), and short."""
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 3] + "..."


def open_to(groups, profiles):
    """The ``profiles`` a member of ``groups`` (names) may use: those for everyone, and those of one of them."""
    return [p for p in profiles if p["groups"] is None or set(groups).intersection(p["groups"])]


def default_of(profiles):
    """The profile marked default among ``profiles``, else the first."""
    return next((p for p in profiles if p["default"]), profiles[0])


def constraint(node_label):
    """The placement constraint of a profile's node label (``key=value``)."""
    key, _, value = node_label.partition("=")
    return f"node.labels.{key}=={value}"
