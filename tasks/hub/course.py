"""A course on the hub: its folders on the homes storage, made from the userlist.

The folders' layout, modes and ids, and why they are enforced, are in
:mod:`tasks.hubswarm_hub.course`, which the hub's spawner reads too.
"""

import shlex
from dataclasses import dataclass
from itertools import count

from ..core import facts, step
from ..hubswarm_hub.course import (
    COURSE,
    COURSE_MODE,
    FIRST_GROUP_ID,
    GROUP_MODE,
    SHARED,
    SHARED_MODE,
    is_group_id,
)
from ..hubswarm_hub.usernames import INSTRUCTORS
from ..node import storage
from .users import read_userlist


@dataclass(frozen=True)
class Folder:
    """A folder's mode (its permission bits, setgid included) and numeric owner and group."""

    mode: int
    uid: int
    gid: int

    def __str__(self):
        return f"{self.mode:o} {self.uid}:{self.gid}"


def parse_folders(answer):
    """{path in the homes folder: :class:`Folder`} of :func:`folders_fact`'s lines."""
    found = {}
    for line in answer.out.splitlines():
        words = line.split(" ", 3)
        if len(words) == 4 and all(word.isdigit() for word in words[:3]):
            found[words[3]] = Folder(int(words[0], 8), int(words[1]), int(words[2]))
    return found


def folders_fact(homes):
    """The course folder, the groups' folder and every folder in it, as they are under ``homes``."""
    # (A subshell: the directory changes for this probe only. Symbolic links are no folders.)
    return facts.Fact(
        f"course-folders:{homes}",
        f"(cd {shlex.quote(homes)} && find {COURSE} {SHARED} {SHARED}/* -maxdepth 0 -type d -printf '%m %U %G %p\\n')",
        parse=parse_folders,
    )


def userlist_groups(users):
    """Every group of the userlist, and the instructors' (the course folder's, with or without instructors)."""
    return {INSTRUCTORS, *(group for user in users for group in user.groups)}


def group_ids(groups, found):
    """{group: id} for ``groups``: the group of its folder in ``found`` when that is a group's id
    that no group before it (by name) has; else a new one, above every id of a folder there
    (a group taken off the userlist keeps its folder and its id, should it come back)."""
    ids = {}
    for group in sorted(groups):
        folder = found.get(f"{SHARED}/{group}")
        if folder and is_group_id(folder.gid) and folder.gid not in ids.values():
            ids[group] = folder.gid
    there = [folder.gid for path, folder in found.items() if path.startswith(f"{SHARED}/")]
    new = count(max([FIRST_GROUP_ID - 1, *there]) + 1)
    return {group: ids[group] if group in ids else next(new) for group in sorted(groups)}


def wanted_folders(groups, found):
    """{path in the homes folder: :class:`Folder`} the course needs, the groups' folder first: each
    group's folder with its id, the course folder with the instructors'."""
    ids = group_ids(groups, found)
    return {
        SHARED: Folder(SHARED_MODE, 0, 0),
        **{f"{SHARED}/{group}": Folder(GROUP_MODE, 0, gid) for group, gid in ids.items()},
        COURSE: Folder(COURSE_MODE, 0, ids[INSTRUCTORS]),
    }


def folder_changes(homes, wanted, found):
    """[(what, command)] that make the ``wanted`` folders under ``homes`` as they are ``found``.
    The mode has a leading 0 so that it also clears a setgid bit (GNU install keeps a folder's
    otherwise)."""
    changes = []
    for path, folder in wanted.items():
        now = found.get(path)
        if now == folder:
            continue
        what = f"make {homes}/{path} ({folder})" if now is None else f"set {homes}/{path} to {folder} (was {now})"
        command = f"install -d -m 0{folder.mode:o} -o {folder.uid} -g {folder.gid} {shlex.quote(f'{homes}/{path}')}"
        changes.append((what, command))
    return changes


@step(
    "course-folders",
    needs=read_userlist,
    probes=lambda host: [*storage.marker_probes(host), folders_fact(host.config.homes_path)],
)
def course_folders(host, users):
    """Make the course folders on the homes storage from the userlist: .course (instructors write, everyone reads) and .shared/GROUP for each group (its members only), each group with an id of its own."""
    # Never on a node's own disk under a mount point the storage is missing from.
    storage.mark_homes(host)
    homes = host.config.homes_path
    found = host.fact(folders_fact(homes))
    changes = folder_changes(homes, wanted_folders(userlist_groups(users), found), found)
    host.ensure([what for what, _ in changes], " && ".join(command for _, command in changes))
