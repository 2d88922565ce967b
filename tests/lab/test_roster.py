"""Class-roster addresses on a real hub: every kind the user-name rule accepts logs in and
spawns; what it refuses stops before any host is touched."""

import pytest
from test_homes import HOMES, spawn, stop

from fabrun import fab
from tasks.hubswarm_hub import usernames

ROSTER = ["first.last+cs101@lab.example", "o'brien@lab.example", "rené@lab.example"]


@pytest.fixture
def roster_userlist(lab, lab_users, tmp_path):
    """The lab's userlist plus the roster addresses, deployed; the lab's own put back after."""
    path = tmp_path / "userlist"
    path.write_text(lab_users.path.read_text() + "".join(f"{email}\n" for email in ROSTER))
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


def test_refused_addresses_stop_before_any_host(lab, tmp_path):
    path = tmp_path / "userlist"
    path.write_text("teacher@lab.example admin\n..@lab.example\n")
    run = fab("setup-hub", env={"HUBSWARM_USERLIST": str(path)})
    assert run.code == 1
    assert f"{path} line 2: '..@lab.example' gives no usable user name" in run.output
    assert "ssh:" not in run.output  # no recap: no host was reached
