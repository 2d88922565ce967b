"""The course folders as both sides read them: where they are on the homes storage, and each
group's id. Standard library only.

hubswarm makes them from the userlist before every start of the hub (``tasks.hub.course``), and
``pip-install`` installs this file into the hub's virtualenv, where the spawner (:mod:`.spawner`)
mounts them into users' servers and runs each server with the ids of its user's groups.

Who may do what is the kernel's to enforce, on NFS as on a local disk: ids and modes, no ACL.
Every group (``instructors`` too) has a folder of its own on the homes storage,
``.shared/GROUP``, root's, mode 2770, its group a group id of its own: a server started with
that id among its groups reads and writes there, any other cannot even list it, and what is
made there takes the folder's group (the setgid bit). The folder's group is the group's id,
recorded by nothing else: it is made again, and kept, with the folders themselves. ``.course``,
mode 2775, has the instructors' id: instructors write, everyone reads.
"""

import os
import re

from .usernames import GROUP_PATTERN, INSTRUCTORS

#: In the homes folder: the course folder, and the folder of the groups' folders (dot folders:
#: never a user's home).
COURSE = ".course"
SHARED = ".shared"
#: Where a user's home is in their server, and where they are there, under the home.
HOME_IN_SERVER = "/home/jovyan"
COURSE_IN_SERVER = "course"
SHARED_IN_SERVER = "shared"
#: A group's id is above a million; a user's is below (from 10001, one per user: files/hubswarm-home).
#: A user's server runs with their own id as its group: it must never be a group's.
FIRST_GROUP_ID = 1_000_001
#: The modes hubswarm gives the folders (see the top).
SHARED_MODE, GROUP_MODE, COURSE_MODE = 0o755, 0o2770, 0o2775

_GROUP = re.compile(GROUP_PATTERN)


def is_group_id(gid):
    return gid >= FIRST_GROUP_ID


def group_ids(homes, groups):
    """{group: id} of those of ``groups`` (names) that have a folder of their own under ``homes``,
    with a group's id (one made otherwise is no group's)."""
    found = {}
    for group in groups:
        if not _GROUP.match(group):
            continue  # (a name made on the hub's admin page: never a path)
        try:
            gid = os.stat(os.path.join(homes, SHARED, group)).st_gid
        except OSError:
            continue
        if is_group_id(gid):
            found[group] = gid
    return found


def server_view(homes, groups, home):
    """(volumes, group ids) of a server whose user is in ``groups`` and has their home at ``home``:
    the course folder at ``home``/course (written only by instructors), the groups' folders at
    ``home``/shared when the user is in one, and the ids of the user's groups. A folder that is not
    there is not mounted: the server still starts."""
    ids = group_ids(homes, groups)
    volumes = {}
    course = os.path.join(homes, COURSE)
    if os.path.isdir(course):
        mode = "rw" if INSTRUCTORS in ids else "ro"
        volumes[course] = {"bind": os.path.join(home, COURSE_IN_SERVER), "mode": mode}
    if ids:
        volumes[os.path.join(homes, SHARED)] = {"bind": os.path.join(home, SHARED_IN_SERVER), "mode": "rw"}
    return volumes, sorted(ids.values())
