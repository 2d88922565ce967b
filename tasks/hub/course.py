"""A course on the hub: its folders on the homes storage, made from the userlist, with nbgrader's
for its assignments (``HUBSWARM_COURSE_ID``), and the links that bring a course's material from
git into users' servers (nbgitpuller, in the notebook image).

The folders' layout, modes and ids, and why they are enforced, are in
:mod:`tasks.hubswarm_hub.course` and :mod:`tasks.hubswarm_hub.nbgrader`, which the hub's spawner
reads too.
"""

import re
import shlex
from dataclasses import dataclass
from itertools import count
from urllib.parse import quote, unquote, urlencode, urlsplit

from ..core import facts, step
from ..hubswarm_hub import nbgrader
from ..hubswarm_hub.course import (
    COURSE,
    COURSE_IN_SERVER,
    COURSE_MODE,
    FIRST_GROUP_ID,
    GROUP_MODE,
    SHARED,
    SHARED_IN_SERVER,
    SHARED_MODE,
    is_group_id,
)
from ..hubswarm_hub.profiles import shown
from ..hubswarm_hub.usernames import INSTRUCTORS
from ..node import storage
from ..settings import profiles
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


def folders_fact(homes, course_id=""):
    """The course folder, the groups' folder and every folder in it, and with ``course_id``
    nbgrader's folders for it, as they are under ``homes``."""
    paths = [COURSE, SHARED, f"{SHARED}/*", *(shlex.quote(path) for path in nbgrader.folders(course_id))]
    # (A subshell: the directory changes for this probe only. Symbolic links are no folders.)
    return facts.Fact(
        f"course-folders:{homes}" + (f":{course_id}" if course_id else ""),
        f"(cd {shlex.quote(homes)} && find {' '.join(paths)} -maxdepth 0 -type d -printf '%m %U %G %p\\n')",
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


def wanted_folders(groups, found, course_id=""):
    """{path in the homes folder: :class:`Folder`} the course needs, the groups' folder first: each
    group's folder with its id, the course folder with the instructors', and with ``course_id``
    nbgrader's folders for it, root's or a group's."""
    ids = group_ids(groups, found)
    graded = nbgrader.folders(course_id)
    return {
        SHARED: Folder(SHARED_MODE, 0, 0),
        **{f"{SHARED}/{group}": Folder(GROUP_MODE, 0, gid) for group, gid in ids.items()},
        COURSE: Folder(COURSE_MODE, 0, ids[INSTRUCTORS]),
        **{path: Folder(mode, 0, 0 if group is None else ids[group]) for path, (mode, group) in graded.items()},
    }


def folder_changes(homes, wanted, found):
    """[(what, command)] that make the ``wanted`` folders under ``homes`` as they are ``found``.
    Modes are written in five digits: GNU install keeps a folder's setgid bit unless the mode's
    digits say otherwise (00755 clears it, 0755 does not)."""
    changes = []
    for path, folder in wanted.items():
        now = found.get(path)
        if now == folder:
            continue
        what = f"make {homes}/{path} ({folder})" if now is None else f"set {homes}/{path} to {folder} (was {now})"
        command = f"install -d -m {folder.mode:05o} -o {folder.uid} -g {folder.gid} {shlex.quote(f'{homes}/{path}')}"
        changes.append((what, command))
    return changes


def config_paths(config):
    """{path on the hub: text} of nbgrader's configuration for the course (none without one)."""
    return {f"{config.homes_path}/{path}": text for path, text in nbgrader.config_files(config.course_id).items()}


def course_probes(host):
    """What the step reads: the storage's mark, the folders, and each configuration file's state."""
    config = host.config
    return [
        *storage.marker_probes(host),
        folders_fact(config.homes_path, config.course_id),
        *(facts.file_state(path) for path in config_paths(config)),
    ]


@step("course-folders", needs=read_userlist, probes=course_probes)
def course_folders(host, users):
    """Make the course folders on the homes storage from the userlist: .course (instructors write, everyone reads) and .shared/GROUP for each group (its members only), each group with an id of its own; with HUBSWARM_COURSE_ID, nbgrader's exchange, course directory and configuration too."""
    # Never on a node's own disk under a mount point the storage is missing from.
    storage.mark_homes(host)
    config = host.config
    homes = config.homes_path
    found = host.fact(folders_fact(homes, config.course_id))
    changes = folder_changes(homes, wanted_folders(userlist_groups(users), found, config.course_id), found)
    host.ensure([what for what, _ in changes], " && ".join(command for _, command in changes))
    for path, text in config_paths(config).items():
        host.ensure_file(path, text)


# --- course links ------------------------------------------------------------------------

#: What a user's server clones a repository from: URLs of these, with no credentials.
REPO_SCHEMES = ("https", "http", "git")
#: The folder a repository goes to in a user's home (its name, without .git).
REPO_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")


def repo_folder(repo):
    """The folder ``repo`` (a URL) is cloned to in a user's home: its last name, without .git."""
    return unquote(urlsplit(repo).path.rstrip("/").rpartition("/")[2]).removesuffix(".git")


def url_of(repo):
    """``repo`` split as a URL; None when it is none (a space, a control character, a bad address)."""
    if not repo.isprintable() or " " in repo:
        return None
    try:
        return urlsplit(repo)
    except ValueError:
        return None


def repo_problem(repo):
    if repo is None:
        return "--repo is missing: give the git repository's URL (e.g. --repo https://github.com/ORG/REPO)"
    url = url_of(repo)
    if url is None or url.scheme not in REPO_SCHEMES or not url.hostname or url.query or url.fragment:
        return f"--repo {shown(repo)} is no https:// (http://, git://) URL of a repository: give the one users' servers clone it from"
    if url.username or url.password:
        return f"--repo {shown(repo)} holds credentials, which everyone with the link reads: make the repository public"
    folder = repo_folder(repo)
    if not REPO_FOLDER.fullmatch(folder) or folder.endswith("."):
        return f"--repo {shown(repo)} names no repository (letters, digits, '.', '_' and '-'): give its URL, e.g. https://github.com/ORG/REPO"
    if folder in (COURSE_IN_SERVER, SHARED_IN_SERVER):
        return f"--repo {shown(repo)} would go to ~/{folder}, the course's folder of that name: give the repository another name"
    return ""


def is_branch(name):
    """Whether ``name`` is a branch (or tag) name git takes, of letters, digits, '.', '_', '/' and '-'."""
    return (
        bool(BRANCH.fullmatch(name))
        and ".." not in name
        and "//" not in name
        and not name.endswith(("/", ".", ".lock"))
    )


def branch_problem(branch):
    if branch is None or is_branch(branch):
        return ""
    return f"--branch {shown(branch)} is no branch name: give it as git shows it (e.g. main)"


def path_problem(path):
    parts = (path or "").strip("/").split("/")
    if path is None or (path.isprintable() and not {"", ".", ".."} & set(parts)):
        return ""
    return (
        f"--path {shown(path)} is no path in the repository: give it from the repository's top (e.g. week1/intro.ipynb)"
    )


def profile_problem(profile, config):
    if profile is None:
        return ""
    names = [p["name"] for p in profiles.resolved(config)]
    if not names:
        return (
            f"--profile {shown(profile)}: this hub has no profiles (HUBSWARM_PROFILES is not set): leave --profile out"
        )
    if profile not in names:
        return f"--profile {shown(profile)} is no profile of {config.profiles}: give one of {', '.join(names)}"
    return ""


def link_problems(config, repo=None, branch=None, path=None, profile=None):
    """One line per problem with a course link's options (the problem and the fix); none when they are good."""
    found = [repo_problem(repo), branch_problem(branch), path_problem(path), profile_problem(profile, config)]
    return [problem for problem in found if problem]


def course_link(hub_name, repo, branch=None, path=None, profile=None):
    """The link that brings ``repo`` (its ``branch``, else its default) into the user's server with
    nbgitpuller and opens ``path`` in it (else its folder) in JupyterLab; with ``profile``, a server
    that is not running starts with that profile first (the user option ``profile``)."""
    folder = repo_folder(repo)
    opened = "/".join([folder, *([path.strip("/")] if path else [])])
    pull = {
        "repo": repo,
        **({"branch": branch} if branch else {}),
        # (nbgitpuller's own choice keeps a trailing .git)
        "targetpath": folder,
        "urlpath": f"lab/tree/{quote(opened)}",
    }
    pulled = "/hub/user-redirect/git-pull?" + urlencode(pull, quote_via=quote, safe="/:")
    if profile:
        # The spawn page starts a server with the user options its query names (opt-NAME), then goes to next.
        return f"https://{hub_name}/hub/spawn?" + urlencode({"opt-profile": profile, "next": pulled}, quote_via=quote)
    return f"https://{hub_name}{pulled}"
