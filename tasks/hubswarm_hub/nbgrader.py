"""Assignments with nbgrader for a course (``HUBSWARM_COURSE_ID``), as both sides read them: the
folders on the homes storage, the Jupyter configuration of each role's servers, and what a server
mounts. Standard library only.

hubswarm makes the folders and writes the configuration before every start of the hub (the
course-folders step, ``tasks.hub.course``), and ``pip-install`` installs this file into the hub's
virtualenv, where the spawner (:mod:`.spawner`) mounts them into users' servers.

The layout is nbgrader's for a shared hub, with the course's own folder out of students' reach,
the kernel enforcing it with ids and modes (as :mod:`.course` says):

- The exchange, ``.nbgrader/exchange``, root's, mode 1777, at /srv/nbgrader/exchange in every
  server: nbgrader wants it writable by everyone, and the sticky bit keeps anyone from removing
  another's entry. Its course folder, ``.nbgrader/exchange/COURSE``, hubswarm makes, mode 2775
  with the instructors' id: only instructors release there (no student can take the course's
  name first), and what they make takes the instructors' group, so that any instructor collects
  what any student submitted (nbgrader's ``groupshared``). A student writes into its ``inbound``
  but cannot list it: nbgrader makes it so.
- The course directory (nbgrader's source, release, submitted, autograded, feedback and
  gradebook.db), ``.shared/instructors/COURSE``: in the instructors' folder, which no student
  opens, and in an instructor's server under the home, where formgrader wants it.
- Each role's Jupyter configuration, ``.nbgrader/config/ROLE``, read-only at
  /etc/hubswarm-jupyter, which ``JUPYTER_CONFIG_PATH`` names: the course, the exchange, and which
  of nbgrader's extensions are on.

The notebook image is one for everyone, its nbgrader off (``files/singleuser/jupyter``, what
:func:`extension_files` makes with no role): without a course a server mounts nothing of this.
A role's configuration names every extension, on or off, so that it holds in an image whose
nbgrader is on too. Off is what a user sees, not what they may do (a server is its user's to
configure): what keeps students out is the kernel.
"""

import json
import os

from .course import HOME_IN_SERVER, SHARED, SHARED_IN_SERVER
from .usernames import INSTRUCTORS

STUDENT, INSTRUCTOR = "student", "instructor"
ROLES = (STUDENT, INSTRUCTOR)

#: In the homes folder (a dot folder: never a user's home).
NBGRADER = ".nbgrader"
EXCHANGE = f"{NBGRADER}/exchange"
CONFIGS = f"{NBGRADER}/config"
#: Where they are in a user's server.
EXCHANGE_IN_SERVER = "/srv/nbgrader/exchange"
CONFIG_IN_SERVER = "/etc/hubswarm-jupyter"

#: nbgrader's server extensions and JupyterLab plugins (nbgrader 0.9), and the roles that use each.
SERVER_EXTENSIONS = {
    "nbgrader.server_extensions.assignment_list": ROLES,
    "nbgrader.server_extensions.validate_assignment": ROLES,
    "nbgrader.server_extensions.course_list": (INSTRUCTOR,),
    "nbgrader.server_extensions.formgrader": (INSTRUCTOR,),
}
LAB_PLUGINS = {
    "@jupyter/nbgrader:menu": ROLES,
    "@jupyter/nbgrader:assignment-list": ROLES,
    "@jupyter/nbgrader:validate-assignment": ROLES,
    "@jupyter/nbgrader:course-list": (INSTRUCTOR,),
    "@jupyter/nbgrader:create-assignment": (INSTRUCTOR,),
    "@jupyter/nbgrader:formgrader": (INSTRUCTOR,),
}
#: In a Jupyter config folder. The server extensions' file has nbgrader's own name, so that the
#: image's replaces the one nbgrader installs.
SERVER_CONFIG = "jupyter_server_config.d/nbgrader.json"
PAGE_CONFIG = "labconfig/page_config.json"
NBGRADER_CONFIG = "nbgrader_config.py"


def json_text(value):
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def extension_files(role=None):
    """{path in a Jupyter config folder: text} that turn on the nbgrader extensions ``role`` uses
    and turn off the others (all of them, with no role)."""
    server = {name: role in roles for name, roles in SERVER_EXTENSIONS.items()}
    disabled = {name: role not in roles for name, roles in LAB_PLUGINS.items()}
    return {
        SERVER_CONFIG: json_text({"ServerApp": {"jpserver_extensions": server}}),
        PAGE_CONFIG: json_text({"disabledExtensions": disabled}),
    }


def course_root(course_id):
    """The course directory, in an instructor's server."""
    return f"{HOME_IN_SERVER}/{SHARED_IN_SERVER}/{INSTRUCTORS}/{course_id}"


def nbgrader_config(course_id, role):
    """The text of ``role``'s nbgrader_config.py."""
    lines = [
        f"# nbgrader's settings for the course's {role}s, written by hubswarm (course-folders): edits here are overwritten.",
        "c = get_config()  # noqa: F821",
        f"c.CourseDirectory.course_id = {course_id!r}",
        f"c.Exchange.root = {EXCHANGE_IN_SERVER!r}",
    ]
    if role == INSTRUCTOR:
        lines += [
            f"c.CourseDirectory.root = {course_root(course_id)!r}",
            "# Instructors share the course directory and the exchange's course folder, by the instructors' group",
            "# that hubswarm's folders give what is made in them.",
            "c.CourseDirectory.groupshared = True",
            "# A server knows no name for another user's id: every submission would be 'owned by unknown id'.",
            "c.ExchangeCollect.check_owner = False",
        ]
    return "\n".join(lines) + "\n"


def config_files(course_id):
    """{path in the homes folder: text} of every role's Jupyter config folder (none without a course)."""
    if not course_id:
        return {}
    return {
        f"{CONFIGS}/{role}/{path}": text
        for role in ROLES
        for path, text in {NBGRADER_CONFIG: nbgrader_config(course_id, role), **extension_files(role)}.items()
    }


def folders(course_id):
    """{path in the homes folder: (mode, group)} of the course's nbgrader folders, each after its
    parent (none without a course); group None: root's, else the group's name (see the top)."""
    if not course_id:
        return {}
    config_folders = {os.path.dirname(path) for path in config_files(course_id)}
    return {
        NBGRADER: (0o755, None),
        EXCHANGE: (0o1777, None),
        f"{EXCHANGE}/{course_id}": (0o2775, INSTRUCTORS),
        CONFIGS: (0o755, None),
        **{folder: (0o755, None) for folder in sorted(config_folders)},
        f"{SHARED}/{INSTRUCTORS}/{course_id}": (0o2770, INSTRUCTORS),
    }


def server_view(homes, course_id, instructor):
    """(volumes, environment) of a server for the course ``course_id`` ("": none, nothing) whose
    user is an ``instructor`` or a student: the exchange, and the role's configuration
    read-only, which JUPYTER_CONFIG_PATH names. Nothing when they are not there: the server
    still starts, nbgrader off."""
    if not course_id:
        return {}, {}
    exchange = os.path.join(homes, EXCHANGE)
    config = os.path.join(homes, CONFIGS, INSTRUCTOR if instructor else STUDENT)
    if not (os.path.isdir(exchange) and os.path.isdir(config)):
        return {}, {}
    volumes = {
        exchange: {"bind": EXCHANGE_IN_SERVER, "mode": "rw"},
        config: {"bind": CONFIG_IN_SERVER, "mode": "ro"},
    }
    return volumes, {"JUPYTER_CONFIG_PATH": CONFIG_IN_SERVER}
