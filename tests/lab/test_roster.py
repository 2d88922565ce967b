"""Class-roster addresses on a real hub: every kind the user-name rule accepts logs in and
spawns, and the groups the lines name are the hub's; what it refuses stops before any host
is touched."""

import pytest
from test_homes import HOMES, spawn, stop

from fabrun import fab
from student import Student
from tasks.hubswarm_hub import usernames

ROSTER = {
    "first.last+cs101@lab.example": "group:cs101",
    "o'brien@lab.example": "group:cs101 group:lab-2",
    "rené@lab.example": "instructor",
}


def roster_text(lab_users, roster):
    return lab_users.path.read_text() + "".join(f"{email} {words}\n" for email, words in roster.items())


def hub_groups(lab, lab_users):
    """The hub's groups that have members (one no line names any more stays, empty)."""
    admin = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)
    return {group["name"]: sorted(group["users"]) for group in admin.hub_api("GET", "groups").json() if group["users"]}


@pytest.fixture
def roster_userlist(lab, lab_users, tmp_path):
    """The lab's userlist plus the roster addresses, deployed; the lab's own put back after."""
    path = tmp_path / "userlist"
    path.write_text(roster_text(lab_users, ROSTER))
    run = fab("userlist", "start-hub", env={"HUBSWARM_USERLIST": str(path)})
    assert run.code == 0, run.output
    yield path
    back = fab("userlist", "start-hub")
    assert back.code == 0, back.output


def test_every_accepted_kind_of_address_logs_in_and_spawns(lab, deploy_run, lab_users, roster_userlist, connect):
    for email in ROSTER:
        name = usernames.username(usernames.check_email(email))
        session = spawn(lab.hub_ip, name, lab_users.password, login=email)
        try:
            owner = connect(lab.hub_ip).sudo(f"stat -c %u {HOMES}/{name}", hide=True).stdout.strip()
            assert int(owner) >= 10001, (email, name)
        finally:
            stop(session, lab.hub_ip, name)
    assert hub_groups(lab, lab_users) == {
        "cs101": ["first.last-cs101", "o-brien"],
        "instructors": ["rene"],
        "lab-2": ["o-brien"],
    }
    # o'brien's line now names cs101 only: at the hub's start, o-brien leaves lab-2.
    roster_userlist.write_text(roster_text(lab_users, {**ROSTER, "o'brien@lab.example": "group:cs101"}))
    run = fab("userlist", "start-hub", env={"HUBSWARM_USERLIST": str(roster_userlist)})
    assert run.code == 0, run.output
    assert hub_groups(lab, lab_users) == {"cs101": ["first.last-cs101", "o-brien"], "instructors": ["rene"]}


def test_refused_addresses_stop_before_any_host(lab, tmp_path):
    path = tmp_path / "userlist"
    path.write_text("teacher@lab.example admin\n..@lab.example\n")
    run = fab("setup-hub", env={"HUBSWARM_USERLIST": str(path)})
    assert run.code == 1
    assert f"{path} line 2: '..@lab.example' gives no usable user name" in run.output
    assert "ssh:" not in run.output  # no recap: no host was reached
