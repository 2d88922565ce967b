"""Assignments with nbgrader for a course: its folders made in real bash as the course-folders step
makes them (its table of cases is in cases/course.yaml), each role's configuration as traitlets
and JupyterLab read it, the image's own (nbgrader off), and what a user's server mounts and is
told (the hub-side package, in a real spawner)."""

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_course import ROSTER, needs_root, probed
from test_hub_side import run_async, spawner_for
from traitlets.config.loader import PyFileConfigLoader

from hubside import load_hub_config
from tasks.core import facts as F
from tasks.core.run import prefetch
from tasks.hub import course, users
from tasks.hubswarm_hub import nbgrader
from tasks.hubswarm_hub.course import SHARED
from tasks.node.storage import marker_path

ROOT = Path(__file__).resolve().parents[2]
COURSE_ID = "demo101"
INSTRUCTORS = 1000002  # ROSTER's instructors' id, on a storage that has none
CONFIG_FOLDERS = [
    ".nbgrader/config",
    ".nbgrader/config/instructor",
    ".nbgrader/config/instructor/jupyter_server_config.d",
    ".nbgrader/config/instructor/labconfig",
    ".nbgrader/config/student",
    ".nbgrader/config/student/jupyter_server_config.d",
    ".nbgrader/config/student/labconfig",
]


@needs_root
def test_the_folders_made_for_a_course_are_those_wanted_and_a_second_run_changes_nothing(tmp_path):
    homes = str(tmp_path)
    groups = course.userlist_groups(users.parse_userlist(ROSTER))
    fact = course.folders_fact(homes, COURSE_ID)
    found = probed(fact)
    changes = course.folder_changes(homes, course.wanted_folders(groups, found, COURSE_ID), found)
    subprocess.run(["bash", "-c", " && ".join(command for _, command in changes)], check=True, umask=0o077)
    made = probed(fact)
    assert {
        path: folder for path, folder in made.items() if path.startswith((".nbgrader", f"{SHARED}/instructors/"))
    } == {
        ".nbgrader": course.Folder(0o755, 0, 0),
        ".nbgrader/exchange": course.Folder(0o1777, 0, 0),
        f".nbgrader/exchange/{COURSE_ID}": course.Folder(0o2775, 0, INSTRUCTORS),
        **{folder: course.Folder(0o755, 0, 0) for folder in CONFIG_FOLDERS},
        f"{SHARED}/instructors/{COURSE_ID}": course.Folder(0o2770, 0, INSTRUCTORS),
    }
    assert made[f"{SHARED}/instructors"] == course.Folder(0o2770, 0, INSTRUCTORS)
    assert course.folder_changes(homes, course.wanted_folders(groups, made, COURSE_ID), made) == []


def marked(config):
    """The canned answer of a marked homes storage."""
    return {F.file_state(marker_path(config)).key: "0000 644 root root"}


def converged(config):
    """The canned answers of a homes storage with the course's folders and files as wanted."""
    homes = config.homes_path
    groups = course.userlist_groups(users.parse_userlist(ROSTER))
    folders = course.wanted_folders(groups, {}, config.course_id)
    files = course.config_paths(config)
    return {
        **marked(config),
        course.folders_fact(homes, config.course_id).key: "".join(
            f"{folder.mode:o} {folder.uid} {folder.gid} {path}\n" for path, folder in folders.items()
        ),
        **{
            F.file_state(path).key: f"{hashlib.sha256(text.encode()).hexdigest()} 644 root root"
            for path, text in files.items()
        },
    }


def test_a_course_as_wanted_is_one_probe_and_no_change(make_host):
    host, runner = make_host(course_id=COURSE_ID)
    runner.answers.update(converged(host.config))
    prefetch(host, [course.course_folders])
    course.course_folders(host, users.parse_userlist(ROSTER))
    [batch] = runner.probes
    assert set(runner.answers) <= set(batch)
    assert (runner.commands, host.record.changes) == ([], [])


def test_without_a_course_there_is_nothing_of_nbgrader_to_make_or_write(make_host):
    host, runner = make_host()
    runner.answers.update(marked(host.config))
    course.course_folders(host, users.parse_userlist(ROSTER))
    assert course.config_paths(host.config) == {}
    assert not any(".nbgrader" in command for command in runner.commands)


# --- each role's configuration ---------------------------------------------------------------

ASSIGNMENTS, VALIDATE, COURSES, FORMGRADER = (
    f"nbgrader.server_extensions.{name}"
    for name in ("assignment_list", "validate_assignment", "course_list", "formgrader")
)
PLUGINS = {f"@jupyter/nbgrader:{name}" for name in ("menu", "assignment-list", "validate-assignment")}
INSTRUCTOR_PLUGINS = {f"@jupyter/nbgrader:{name}" for name in ("course-list", "create-assignment", "formgrader")}


def written(folder, files):
    """``folder`` with ``files`` ({path in it: text}) written."""
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    return folder


def extensions_on(folder):
    """(server extensions on, JupyterLab plugins on) as a Jupyter config folder says, and
    whether it names every one of nbgrader's (on or off)."""
    server = json.loads((folder / nbgrader.SERVER_CONFIG).read_text())["ServerApp"]["jpserver_extensions"]
    disabled = json.loads((folder / nbgrader.PAGE_CONFIG).read_text())["disabledExtensions"]
    every = set(server) == set(nbgrader.SERVER_EXTENSIONS) and set(disabled) == set(nbgrader.LAB_PLUGINS)
    return {name for name, on in server.items() if on}, {name for name, off in disabled.items() if not off}, every


@pytest.mark.parametrize(
    "role, server, plugins",
    [
        pytest.param(None, set(), set(), id="no-role-the-images-all-off"),
        pytest.param("student", {ASSIGNMENTS, VALIDATE}, PLUGINS, id="a-student-fetches-submits-validates"),
        pytest.param(
            "instructor",
            {ASSIGNMENTS, VALIDATE, COURSES, FORMGRADER},
            PLUGINS | INSTRUCTOR_PLUGINS,
            id="an-instructor-has-them-all",
        ),
    ],
)
def test_a_roles_configuration_turns_on_what_it_uses_and_names_every_extension(tmp_path, role, server, plugins):
    assert extensions_on(written(tmp_path, nbgrader.extension_files(role))) == (server, plugins, True)


def test_the_notebook_image_has_nbgrader_off_as_the_hub_side_says():
    recipe = ROOT / "files/singleuser"
    image = {path: (recipe / "jupyter" / path).read_text() for path in nbgrader.extension_files()}
    assert image == nbgrader.extension_files()
    assert "COPY jupyter/ /opt/notebook/etc/jupyter/" in (recipe / "Dockerfile").read_text()


def nbgrader_settings(tmp_path, role):
    """``role``'s nbgrader_config.py as nbgrader loads it (traitlets), from the files the step writes."""
    folder = written(tmp_path, nbgrader.config_files(COURSE_ID))
    return PyFileConfigLoader(nbgrader.NBGRADER_CONFIG, path=str(folder / nbgrader.CONFIGS / role)).load_config()


@pytest.mark.parametrize(
    "role, settings",
    [
        pytest.param(
            "student",
            {"CourseDirectory": {"course_id": COURSE_ID}, "Exchange": {"root": "/srv/nbgrader/exchange"}},
            id="a-student-the-course-and-the-exchange",
        ),
        pytest.param(
            "instructor",
            {
                "CourseDirectory": {
                    "course_id": COURSE_ID,
                    "root": f"/home/jovyan/shared/instructors/{COURSE_ID}",
                    "groupshared": True,
                },
                "Exchange": {"root": "/srv/nbgrader/exchange"},
                "ExchangeCollect": {"check_owner": False},
            },
            id="an-instructor-the-course-directory-shared-with-the-others",
        ),
    ],
)
def test_a_roles_folder_holds_its_nbgrader_settings_and_extensions(tmp_path, role, settings):
    assert nbgrader_settings(tmp_path, role) == settings
    folder, extensions = tmp_path / nbgrader.CONFIGS / role, nbgrader.extension_files(role)
    assert {path: (folder / path).read_text() for path in extensions} == extensions


# --- what a user's server gets ---------------------------------------------------------------


@pytest.fixture
def storage(tmp_path):
    """A homes storage with nbgrader's exchange and each role's configuration folder."""
    homes = tmp_path / "home"
    for path in (nbgrader.EXCHANGE, *(f"{nbgrader.CONFIGS}/{role}" for role in nbgrader.ROLES)):
        (homes / path).mkdir(parents=True)
    return homes


def binds(spawner):
    return [(m["Source"], m["Target"], m["ReadOnly"]) for m in spawner.mounts if m["Type"] == "bind"]


@pytest.mark.parametrize(
    "course_id, groups, role",
    [
        pytest.param(COURSE_ID, ["instructors"], "instructor", id="an-instructor-their-configuration"),
        pytest.param(COURSE_ID, ["cs101"], "student", id="a-student-theirs"),
        pytest.param("", ["instructors"], None, id="no-course-nothing"),
    ],
)
def test_a_server_gets_the_exchange_and_its_roles_configuration(
    tmp_path, monkeypatch, storage, course_id, groups, role
):
    app, package = load_hub_config(tmp_path, monkeypatch, homes_path=str(storage), course_id=course_id)
    spawner = spawner_for(app, package, groups=groups)
    assert spawner.course_id == course_id  # (the hub's values, through its configuration)
    spawner.volumes = {str(storage / "alice"): "/home/jovyan"}  # (prepare_home's)
    spawner.environment = {"HOME": "/home/jovyan"}
    run_async(spawner.prepare_course())
    home = (str(storage / "alice"), "/home/jovyan", False)
    if role is None:
        assert (binds(spawner), spawner.environment) == ([home], {"HOME": "/home/jovyan"})
        return
    assert binds(spawner) == [
        home,
        (str(storage / nbgrader.EXCHANGE), "/srv/nbgrader/exchange", False),
        (str(storage / nbgrader.CONFIGS / role), "/etc/hubswarm-jupyter", True),
    ]
    assert spawner.environment == {"HOME": "/home/jovyan", "JUPYTER_CONFIG_PATH": "/etc/hubswarm-jupyter"}


def test_a_course_whose_folders_are_not_there_still_starts_servers_with_nbgrader_off(tmp_path):
    assert nbgrader.server_view(str(tmp_path), COURSE_ID, instructor=True) == ({}, {})


# --- the notebook image's user name ----------------------------------------------------------

USER_TOOL = ROOT / "files/singleuser/hubswarm-user"
NSS_WRAPPER = any(Path(folder, "libnss_wrapper.so").exists() for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64"))
SHOW = 'echo "${LD_PRELOAD:-none}"; [ -z "$NSS_WRAPPER_PASSWD" ] || tail -n 1 "$NSS_WRAPPER_PASSWD"; id -un || true'


@pytest.fixture
def server_tmp():
    """A /tmp of a server's own, which any id writes (pytest's folders are root's alone)."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o1777)
        yield Path(folder)


def as_user(uid, tmp, command):
    """What ``command`` prints, run through the image's entrypoint as ``uid``, with ``tmp`` for /tmp."""
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp), "JUPYTERHUB_USER": "ann", "HOME": "/home/jovyan"}
    done = subprocess.run([*drop, str(USER_TOOL), "sh", "-c", command], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@needs_root
def test_a_server_whose_id_has_no_name_gets_its_hub_users(server_tmp):
    preload, line, *name = as_user(54321, server_tmp, SHOW)
    assert (preload, line) == ("libnss_wrapper.so", "ann:x:54321:54321::/home/jovyan:/bin/bash")
    if NSS_WRAPPER:  # (in the image; here only where libnss-wrapper is installed)
        assert name == ["ann"]


@needs_root
def test_a_server_whose_id_has_a_name_starts_as_it_is(server_tmp):
    assert as_user(0, server_tmp, SHOW) == ["none", "root"]
    assert list(server_tmp.iterdir()) == []
