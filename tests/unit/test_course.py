"""A course on the hub: its folders made in real bash as the course-folders step makes them (its
table of cases is cases/course.yaml), the folders a user's server gets and the groups it runs
with (the hub-side package, in a real spawner), and the course links (as nbgitpuller and
JupyterHub's spawn page read them)."""

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from test_hub_side import run_async, spawner_for

from fakehost import hub_config, run_fab
from hubside import load_hub_config
from tasks.core import facts as F
from tasks.hub import course, users
from tasks.hubswarm_hub.course import COURSE, SHARED

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="folders of other ids: needs root (CI runs as root)")

ROSTER = "teacher@x.io admin instructor\nann@x.io group:cs101\nbob@x.io group:cs101 group:lab-2\n"
INSTRUCTORS, CS101, LAB2 = 1000002, 1000001, 1000003


def probed(fact):
    """``fact``'s value, probed in real bash as a host's batch probes it."""
    out = subprocess.run(["bash", "-c", F.batch_script([fact])], capture_output=True, text=True, check=True).stdout
    return fact.parse(F.parse_batch(out, [fact])[fact.key])


@needs_root
def test_the_folders_made_are_those_wanted_and_a_second_run_changes_nothing(tmp_path):
    homes = str(tmp_path)
    (tmp_path / SHARED).mkdir()
    (tmp_path / SHARED).chmod(0o2700)  # drifted: a mode to put right, the setgid bit to clear
    groups = course.userlist_groups(users.parse_userlist(ROSTER))
    fact = course.folders_fact(homes)
    found = probed(fact)
    changes = course.folder_changes(homes, course.wanted_folders(groups, found), found)
    subprocess.run(["bash", "-c", " && ".join(command for _, command in changes)], check=True, umask=0o077)
    made = probed(fact)
    assert made == {
        COURSE: course.Folder(0o2775, 0, INSTRUCTORS),
        SHARED: course.Folder(0o755, 0, 0),
        f"{SHARED}/cs101": course.Folder(0o2770, 0, CS101),
        f"{SHARED}/instructors": course.Folder(0o2770, 0, INSTRUCTORS),
        f"{SHARED}/lab-2": course.Folder(0o2770, 0, LAB2),
    }
    assert course.folder_changes(homes, course.wanted_folders(groups, made), made) == []


@pytest.fixture
def storage(tmp_path):
    """A homes storage with the course folders of ROSTER, and a folder of a group made otherwise."""
    homes = tmp_path / "home"
    for path, gid in {
        COURSE: INSTRUCTORS,
        f"{SHARED}/cs101": CS101,
        f"{SHARED}/instructors": INSTRUCTORS,
        f"{SHARED}/lab-2": LAB2,
        f"{SHARED}/by-hand": 10001,  # a user's id: no group's
    }.items():
        (homes / path).mkdir(parents=True)
        os.chown(homes / path, 0, gid)
    return homes


COURSE_RO = {"bind": "/home/jovyan/course", "mode": "ro"}
SHARED_RW = {"bind": "/home/jovyan/shared", "mode": "rw"}


@needs_root
@pytest.mark.parametrize(
    "groups, volumes, ids",
    [
        pytest.param([], {COURSE: COURSE_RO}, [], id="in-no-group-the-course-to-read"),
        pytest.param(["cs101", "lab-2"], {COURSE: COURSE_RO, SHARED: SHARED_RW}, [CS101, LAB2], id="a-student"),
        pytest.param(
            ["instructors"], {COURSE: {**COURSE_RO, "mode": "rw"}, SHARED: SHARED_RW}, [INSTRUCTORS], id="an-instructor"
        ),
        pytest.param(
            ["by-hand", "../.shared/cs101", "last-term"], {COURSE: COURSE_RO}, [], id="no-group-id-no-path-no-folder"
        ),
    ],
)
def test_a_server_gets_the_course_and_the_ids_of_its_users_groups(storage, groups, volumes, ids):
    from tasks.hubswarm_hub.course import server_view

    got_volumes, got_ids = server_view(str(storage), groups, "/home/jovyan")
    assert got_volumes == {str(storage / path): bind for path, bind in volumes.items()}
    assert got_ids == ids


@needs_root
def test_a_storage_without_the_course_folders_still_starts_servers(tmp_path):
    from tasks.hubswarm_hub.course import server_view

    assert server_view(str(tmp_path), ["instructors", "cs101"], "/home/jovyan") == ({}, [])


@needs_root
def test_the_spawner_mounts_them_and_runs_the_notebook_with_the_groups_ids(tmp_path, monkeypatch, storage):
    app, package = load_hub_config(tmp_path, monkeypatch, homes_path=str(storage))
    spawner = spawner_for(app, package, groups=["cs101", "instructors"])
    spawner.volumes = {str(storage / "alice"): "/home/jovyan"}  # (prepare_home's)
    run_async(spawner.prepare_course())
    assert [(m["Source"], m["Target"], m["ReadOnly"]) for m in spawner.mounts if m["Type"] == "bind"] == [
        (str(storage / "alice"), "/home/jovyan", False),
        (str(storage / COURSE), "/home/jovyan/course", False),
        (str(storage / SHARED), "/home/jovyan/shared", False),
    ]
    assert spawner.extra_container_spec["groups"] == [str(CS101), str(INSTRUCTORS)]
    assert spawner.extra_container_spec["read_only"] is True  # the rest kept


# --- course links ---------------------------------------------------------------------------

HUB = "hub.example.com"
REPO = "https://github.com/org/intro-to-data.git"


def query(link):
    """(the link's path, its query as its server reads it)."""
    split = urlsplit(link)
    return split.path, {key: value for key, [value] in parse_qs(split.query, strict_parsing=True).items()}


@pytest.mark.parametrize(
    "options, pulled",
    [
        pytest.param(
            {},
            {"repo": REPO, "targetpath": "intro-to-data", "urlpath": "lab/tree/intro-to-data"},
            id="the-repositorys-folder-its-own-branch",
        ),
        pytest.param(
            {"branch": "fall-2026", "path": "week 1/intro.ipynb"},
            {
                "repo": REPO,
                "branch": "fall-2026",
                "targetpath": "intro-to-data",
                "urlpath": "lab/tree/intro-to-data/week%201/intro.ipynb",
            },
            id="a-branch-and-a-file-in-it",
        ),
    ],
)
def test_a_link_pulls_the_repository_into_its_folder_and_opens_the_path(options, pulled):
    link = course.course_link(HUB, REPO, **options)
    assert link.startswith(f"https://{HUB}/hub/user-redirect/git-pull?repo=https://github.com/org/")
    assert query(link) == ("/hub/user-redirect/git-pull", pulled)


def test_a_link_with_a_profile_starts_a_server_with_it_then_pulls(tmp_path, monkeypatch):
    from jupyterhub.handlers.pages import SpawnHandler

    path, asked = query(course.course_link(HUB, REPO, path="intro.ipynb", profile="big"))
    assert path == "/hub/spawn"
    assert asked.pop("next") == course.course_link(HUB, REPO, path="intro.ipynb").removeprefix(f"https://{HUB}")
    assert asked == {"opt-profile": "big"}
    # As the spawn page reads its query (next apart), the user options the spawner gets.
    options = SpawnHandler._get_user_options(SimpleNamespace(log=None), {"opt-profile": ["big"]})
    app, package = load_hub_config(tmp_path, monkeypatch)
    assert spawner_for(app, package).options_from_query(options) == {"profile": "big"}


PROFILES = Path(__file__).resolve().parents[2] / "profiles.example.yaml"


@pytest.mark.parametrize(
    "options, problems",
    [
        ({"repo": REPO, "branch": "main", "path": "a/b.ipynb", "profile": "big"}, []),
        ({"repo": "git://10.0.0.5/course-material.git"}, []),
        ({}, ["--repo is missing: give the git repository's URL (e.g. --repo https://github.com/ORG/REPO)"]),
        (
            {"repo": "git@github.com:org/r.git"},
            [
                "--repo 'git@github.com:org/r.git' is no https:// (http://, git://) URL of a repository: "
                "give the one users' servers clone it from"
            ],
        ),
        (
            {"repo": "https://x.org/r?ref=1"},
            [
                "--repo 'https://x.org/r?ref=1' is no https:// (http://, git://) URL of a repository: give the one users' servers clone it from"
            ],
        ),
        (
            {"repo": "https://me:token@x.org/r.git"},
            [
                "--repo 'https://me:token@x.org/r.git' holds credentials, which everyone with the link reads: "
                "make the repository public"
            ],
        ),
        (
            {"repo": "https://x.org/"},
            [
                "--repo 'https://x.org/' names no repository (letters, digits, '.', '_' and '-'): "
                "give its URL, e.g. https://github.com/ORG/REPO"
            ],
        ),
        (
            {"repo": "https://x.org/org/course.git"},
            [
                "--repo 'https://x.org/org/course.git' would go to ~/course, the course's folder of that name: "
                "give the repository another name"
            ],
        ),
        (
            {"repo": REPO, "branch": "-x", "path": "../notes", "profile": "huge"},
            [
                "--branch '-x' is no branch name: give it as git shows it (e.g. main)",
                "--path '../notes' is no path in the repository: give it from the repository's top "
                "(e.g. week1/intro.ipynb)",
                f"--profile 'huge' is no profile of {PROFILES}: give one of default, big, gpu",
            ],
        ),
        ({"repo": REPO, "branch": "a..b"}, ["--branch 'a..b' is no branch name: give it as git shows it (e.g. main)"]),
    ],
)
def test_a_links_options_are_checked_one_line_a_problem(options, problems):
    assert course.link_problems(hub_config(profiles=str(PROFILES)), **options) == problems


def test_a_profile_on_a_hub_without_profiles():
    assert course.link_problems(hub_config(), REPO, profile="big") == [
        "--profile 'big': this hub has no profiles (HUBSWARM_PROFILES is not set): leave --profile out"
    ]


def test_fab_course_link_prints_the_link_on_the_hubs_name_with_no_host_touched():
    ran = run_fab("course-link", "--repo", REPO, "--path", "intro.ipynb")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == course.course_link(HUB, REPO, path="intro.ipynb") + "\n"


def test_fab_course_link_stops_on_bad_options_before_anything():
    ran = run_fab("course-link", "--repo", "git@github.com:org/r.git", "--path", "/x/../y")
    assert ran.returncode == 1 and ran.stdout == ""
    assert ran.stderr.splitlines() == [
        course.repo_problem("git@github.com:org/r.git"),
        course.path_problem("/x/../y"),
    ]
