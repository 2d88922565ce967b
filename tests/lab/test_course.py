"""A course on a real hub, tried from inside users' servers: the course folder, which instructors
write and students only read, and a group's folder, which its members write and read and nobody
else may even list, both on the shared storage and enforced by the kernel there (ids and modes,
no ACL)."""

import shlex

import pytest
from test_homes import HOMES

from fabrun import fab
from student import Student
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
        return self.student.execute(self.kernel, f"print(attempt({action!r}, {path!r}, {text!r}), end='')")

    def groups(self):
        """The group ids (:data:`FIRST_GROUP_ID` and above) the server runs with."""
        ids = self.student.execute(self.kernel, "print(*os.getgroups())").split()
        return sorted(gid for gid in map(int, ids) if gid >= FIRST_GROUP_ID)


@pytest.fixture
def course_class(lab, deploy_run, lab_users, tmp_path, connect):
    """(teacher, member, outsider): the hub's userlist makes the teacher an instructor and, with one
    student, a member of TEAM; the other student is in OTHER_TEAM only. Their servers start after
    the hub took the userlist; the lab's own userlist is put back after."""
    lines = [line for line in lab_users.path.read_text().splitlines() if line.strip()]
    names = [line.split("@")[0] for line in lines]
    outsider = next(name for name in names if name not in (lab_users.admin, lab_users.student))
    words = {
        lab_users.admin: f"instructor group:{TEAM}",
        lab_users.student: f"group:{TEAM}",
        outsider: f"group:{OTHER_TEAM}",
    }
    path = tmp_path / "userlist"
    path.write_text("".join(f"{line} {words.get(line.split('@')[0], '')}".rstrip() + "\n" for line in lines))
    people = [
        Student(lab.hub_ip, lab_users.admin, lab_users.admin_password),
        Student(lab.hub_ip, lab_users.student, lab_users.password),
        Student(lab.hub_ip, outsider, lab_users.password),
    ]
    for person in people:
        person.stop_server()  # (started by another test, with other groups)
    # (What an earlier run wrote: on a lab kept as it was.)
    hub_shell(connect, lab, f"rm -rf {HOMES}/.course/* {HOMES}/.shared/{TEAM}/* {HOMES}/.shared/{OTHER_TEAM}/*")
    run = fab("userlist", "start-hub", env={"HUBSWARM_USERLIST": str(path)})
    assert run.code == 0, run.output
    try:
        yield path, [Member(person) for person in people]
    finally:
        for person in people:
            person.stop_server()
        back = fab("userlist", "start-hub")
        assert back.code == 0, back.output


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

    assert teacher.attempt("write", "~/course/week1.md", "Read chapter 1.") == "written"
    for student in (member, outsider):
        assert student.attempt("read", "~/course/week1.md") == "Read chapter 1."
        assert student.attempt("write", "~/course/week1.md", "mine") == "EROFS"
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
