"""A course on a real hub, tried from inside users' servers: the course folder, which instructors
write and students only read, and a group's folder, which its members write and read and nobody
else may even list, both on the shared storage and enforced by the kernel there (ids and modes,
no ACL); and a course link: a git repository served by a lab host (reached by notebooks because
HUBSWARM_NOTEBOOK_EGRESS names that host), brought into a student's server by the link in a
browser, then the teacher's changes brought again with the student's own edits kept."""

import ast
import re
import shlex
import shutil
import subprocess
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect
from test_browser import decline_news, log_in, page  # noqa: F401 - page: a fixture
from test_homes import HOMES

from fabrun import fab
from student import Student
from tasks import lab as lab_module
from tasks.hubswarm_hub.course import FIRST_GROUP_ID

TEAM, OTHER_TEAM = "team", "other-team"
# In a kernel: what a user's code meets doing each thing (the error's name when it is refused).
ATTEMPT = """
import errno, os
def attempt(action, path, text=""):
    path = os.path.expanduser(path)
    try:
        if action == "write":
            with open(path, "a") as f:
                f.write(text)
            return "written"
        if action == "read":
            with open(path) as f:
                return f.read()
        if action == "mount":
            return "read-only" if os.statvfs(path).f_flag & os.ST_RDONLY else "writable"
        return " ".join(sorted(os.listdir(path)))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
"""


def hub_shell(connect, lab, command):
    return connect(lab.hub_ip).sudo(f"bash -c {shlex.quote(command)}", hide=True).stdout.strip()


class Member:
    """A user with a server and a kernel that can :meth:`attempt` things."""

    def __init__(self, student):
        self.student, self.name = student, student.name
        student.start_server()
        self.kernel = student.start_kernel()
        student.execute(self.kernel, ATTEMPT)

    def attempt(self, action, path, text=""):
        answer = self.student.execute(self.kernel, f"print(repr(attempt({action!r}, {path!r}, {text!r})))")
        return ast.literal_eval(answer)  # (the answer as it is: execute strips what was printed)

    def groups(self):
        """The group ids (:data:`FIRST_GROUP_ID` and above) the server runs with."""
        ids = self.student.execute(self.kernel, "print(*os.getgroups())").split()
        return sorted(gid for gid in map(int, ids) if gid >= FIRST_GROUP_ID)


@contextmanager
def class_of_three(lab, lab_users, folder, words, leftovers, steps=("userlist", "start-hub"), env=None):
    """(userlist, [teacher, student, other] as :class:`Member`): the hub runs ``steps`` with a
    userlist (in ``folder``) whose lines of the lab's admin, student and other student end with
    ``words`` (three), and ``env``; ``leftovers`` (paths an earlier run on a lab kept as it was
    left) are removed first. Their servers start after the hub took it all; the lab's own
    settings again after."""
    lines = [line for line in lab_users.path.read_text().splitlines() if line.strip()]
    names = [line.split("@")[0] for line in lines]
    other = next(name for name in names if name not in (lab_users.admin, lab_users.student))
    added = dict(zip((lab_users.admin, lab_users.student, other), words, strict=True))
    path = folder / "userlist"
    path.write_text("".join(f"{line} {added.get(line.split('@')[0], '')}".rstrip() + "\n" for line in lines))
    people = [
        Student(lab.hub_ip, lab_users.admin, lab_users.admin_password),
        Student(lab.hub_ip, lab_users.student, lab_users.password),
        Student(lab.hub_ip, other, lab_users.password),
    ]
    for person in people:
        person.stop_server()  # (started by another test, with other settings)
    lab_module.docker("exec", f"{lab_module.CONTAINER_PREFIX}hub", "bash", "-c", f"rm -rf {' '.join(leftovers)}")
    run = fab(*steps, env={**(env or {}), "HUBSWARM_USERLIST": str(path)})
    assert run.code == 0, run.output
    try:
        yield path, [Member(person) for person in people]
    finally:
        for person in people:
            person.stop_server()
        back = fab(*steps)
        assert back.code == 0, back.output


@pytest.fixture(scope="module")
def course_class(lab, deploy_run, lab_users, tmp_path_factory):
    """(userlist, (teacher, member, outsider)): the teacher is an instructor and, with one student,
    a member of TEAM; the other student is in OTHER_TEAM only."""
    words = (f"instructor group:{TEAM}", f"group:{TEAM}", f"group:{OTHER_TEAM}")
    leftovers = [f"{HOMES}/.course/*", f"{HOMES}/.shared/{TEAM}/*", f"{HOMES}/.shared/{OTHER_TEAM}/*"]
    with class_of_three(lab, lab_users, tmp_path_factory.mktemp("course"), words, leftovers) as made:
        yield made


def folder(connect, lab, path):
    """(mode, owner, group) of a path on the shared storage."""
    mode, uid, gid = hub_shell(connect, lab, f"stat -c '%a %u %g' {HOMES}/{path}").split()
    return mode, int(uid), int(gid)


def test_instructors_write_the_course_folder_and_students_only_read_it(lab, course_class, connect):
    userlist, (teacher, member, outsider) = course_class
    mode, owner, instructors = folder(connect, lab, ".course")
    assert (mode, owner) == ("2775", 0) and instructors >= FIRST_GROUP_ID
    assert folder(connect, lab, ".shared/instructors") == ("2770", 0, instructors)
    assert instructors in teacher.groups() and instructors not in member.groups() + outsider.groups()

    assert teacher.attempt("mount", "~/course") == "writable"
    assert teacher.attempt("write", "~/course/week1.md", "Read chapter 1.") == "written"
    for student in (member, outsider):
        # Refused twice over, the files being the instructors' group's and mounted read-only: the
        # kernel names the first refusal it meets (a file's modes; for a new file, the mount).
        assert student.attempt("mount", "~/course") == "read-only"
        assert student.attempt("read", "~/course/week1.md") == "Read chapter 1."
        assert student.attempt("write", "~/course/week1.md", "mine") == "EACCES"
        assert student.attempt("write", "~/course/mine.md", "mine") == "EROFS"
    assert hub_shell(connect, lab, f"cat {HOMES}/.course/week1.md") == "Read chapter 1."

    # Made again at every start of the hub: a second start, and check mode, find nothing to do.
    for args in (("userlist", "start-hub"), ("check", "userlist", "start-hub")):
        again = fab(*args, env={"HUBSWARM_USERLIST": str(userlist)})
        assert again.code == 0, again.output
        assert (lab.hub_ip, "course-folders", "ok") in again.rows(), again.output


def test_a_groups_folder_is_its_members_to_write_and_nobody_elses_to_read(lab, course_class, connect):
    _, (teacher, member, outsider) = course_class
    mode, owner, team = folder(connect, lab, f".shared/{TEAM}")
    assert (mode, owner) == ("2770", 0) and team >= FIRST_GROUP_ID
    _, _, other_team = folder(connect, lab, f".shared/{OTHER_TEAM}")
    assert team != other_team
    assert team in teacher.groups() and team in member.groups() and outsider.groups() == [other_team]

    assert member.attempt("write", f"~/shared/{TEAM}/plan.md", "Plan: collect the data.\n") == "written"
    assert teacher.attempt("read", f"~/shared/{TEAM}/plan.md") == "Plan: collect the data.\n"
    # Another member edits it: what a member makes is the group's to write (umask 002, the folder's group).
    assert teacher.attempt("write", f"~/shared/{TEAM}/plan.md", "Then plot it.\n") == "written"
    assert member.attempt("read", f"~/shared/{TEAM}/plan.md") == "Plan: collect the data.\nThen plot it.\n"
    assert folder(connect, lab, f".shared/{TEAM}/plan.md")[0::2] == ("664", team)

    assert outsider.attempt("list", f"~/shared/{TEAM}") == "EACCES"
    assert outsider.attempt("read", f"~/shared/{TEAM}/plan.md") == "EACCES"
    assert outsider.attempt("write", f"~/shared/{TEAM}/mine.md", "mine") == "EACCES"
    assert outsider.attempt("write", "~/shared/mine.md", "mine") == "EACCES"  # the groups' folder itself
    assert outsider.attempt("write", f"~/shared/{OTHER_TEAM}/notes.md", "ours") == "written"


# --- a course link ---------------------------------------------------------------------------

REPO = "course-material"
GIT_FOLDER = "/srv/course-git"
GIT_UNIT = "hubswarm-test-git"


def git(*args, cwd=None):
    subprocess.run(
        ["git", "-c", "user.name=Teacher", "-c", "user.email=teacher@lab.example", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def course_repository(lab, deploy_run, connect, tmp_path):
    """publish(files, message): the teacher's commit of ``files`` ({path: text}) to a repository the
    hub lab host serves with git's own daemon (git://HUB/REPO.git), which notebooks may reach (the
    egress list names the hub only); the lab's own egress, and a hub without git, again after."""
    hub = connect(lab.hub_ip)
    apt = "DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600"
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", str(work))

    def publish(files, message):
        for name, text in files.items():
            (work / name).write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        bare = tmp_path / f"{REPO}.git"
        shutil.rmtree(bare, ignore_errors=True)
        git("clone", "-q", "--bare", str(work), str(bare))
        subprocess.run(["tar", "-czf", str(tmp_path / "repo.tgz"), "-C", str(tmp_path), bare.name], check=True)
        hub.put(str(tmp_path / "repo.tgz"), "/tmp/course-repo.tgz")
        hub_shell(
            connect,
            lab,
            f"rm -rf {GIT_FOLDER}/{REPO}.git && tar -xzf /tmp/course-repo.tgz --no-same-owner -C {GIT_FOLDER} "
            "&& rm /tmp/course-repo.tgz",
        )

    try:
        hub_shell(connect, lab, f"{apt} update >/dev/null && {apt} install -y --no-install-recommends git >/dev/null")
        hub_shell(
            connect,
            lab,
            f"systemctl stop {GIT_UNIT} 2>/dev/null; install -d {GIT_FOLDER} && "
            f"systemd-run --unit={GIT_UNIT} --collect git daemon --reuseaddr --export-all "
            f"--base-path={GIT_FOLDER} --listen={lab.hub_ip} --port=9418 {GIT_FOLDER}",
        )
        fenced = fab("notebook-fence", env={"HUBSWARM_NOTEBOOK_EGRESS": f"{lab.hub_ip}/32"})
        assert fenced.code == 0, fenced.output
        yield publish
    finally:
        hub_shell(
            connect, lab, f"systemctl stop {GIT_UNIT} 2>/dev/null; rm -rf {GIT_FOLDER}; {apt} purge -y git >/dev/null"
        )
        back = fab("notebook-fence")
        assert back.code == 0, back.output


def open_link(page, link, name, opened):  # noqa: F811 - page: the fixture's
    """Open the course link as the student's browser does: nbgitpuller's page pulls, then JupyterLab opens ``opened``."""
    page.goto(link)
    page.wait_for_url(re.compile(f"/user/{re.escape(name)}/lab/tree/{re.escape(opened)}"), timeout=180_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)


def test_a_course_link_brings_the_material_then_the_teachers_changes_keeping_the_students_edits(
    lab,
    lab_users,
    course_repository,
    connect,
    page,  # noqa: F811 - page: the fixture
):
    publish = course_repository
    publish({"lesson.md": "# Week 1\n", "exercise.py": "answer = None\n"}, "Week 1")
    made = fab("course-link", "--repo", f"git://{lab.hub_ip}/{REPO}.git", "--branch", "main", "--path", "lesson.md")
    assert made.code == 0, made.output
    link = made.output.strip().splitlines()[-1]
    assert link.startswith(f"https://{lab.hub_ip}/hub/user-redirect/git-pull?repo=git://{lab.hub_ip}/{REPO}.git&")

    hub_shell(connect, lab, f"rm -rf {HOMES}/{lab_users.student}/{REPO}")  # (an earlier run's)
    student = Member(Student(lab.hub_ip, lab_users.student, lab_users.password))
    log_in(page, lab.hub_ip, student.name, lab_users.password)
    page.wait_for_url(re.compile(f"/user/{re.escape(student.name)}/lab"), timeout=180_000)
    decline_news(page)
    open_link(page, link, student.name, f"{REPO}/lesson.md")
    assert student.attempt("read", f"~/{REPO}/lesson.md") == "# Week 1\n"
    assert student.attempt("write", f"~/{REPO}/exercise.py", "answer = 42\n") == "written"

    publish({"lesson.md": "# Week 1\n\nRead chapter 2.\n", "week2.md": "# Week 2\n"}, "Week 2")
    open_link(page, link, student.name, f"{REPO}/lesson.md")
    assert student.attempt("read", f"~/{REPO}/lesson.md") == "# Week 1\n\nRead chapter 2.\n"
    assert student.attempt("read", f"~/{REPO}/week2.md") == "# Week 2\n"
    assert student.attempt("read", f"~/{REPO}/exercise.py") == "answer = None\nanswer = 42\n"
