"""Profiles: a teacher in the group a profile names picks it on the spawn page, in a browser, and
gets a server with that profile's memory on the node with its label; a student, who may use the
class's profile only, is refused the other one by the hub itself (the REST API, not only the form)
and gets the class's through the REST API."""

import json
import re

import pytest
from playwright.sync_api import expect
from test_browser import ARTIFACTS, SPAWN_SECONDS, decline_news, log_in, page  # noqa: F401 - page: a fixture

from browsing import open_page
from fabrun import fab
from student import Refused, Student

LABEL = "hubswarm-test.big=yes"
PROFILES = [
    {"name": "small", "description": "The class's notebook.", "mem_limit": "1G", "default": True},
    {
        "name": "big",
        "description": "More memory, on the staff's worker.",
        "mem_limit": "3G",
        "mem_guarantee": "1G",
        "node_label": LABEL,
        "groups": ["staff"],
    },
]


def hub_shell(connect, lab, command):
    return connect(lab.hub_ip).sudo(command, hide=True).stdout.strip()


def service(connect, lab, name):
    """(memory limit in bytes, placement constraints, node of its running task) of NAME's notebook."""
    spec = json.loads(hub_shell(connect, lab, f"docker service inspect --format '{{{{json .Spec}}}}' jupyter-{name}"))
    node = hub_shell(
        connect,
        lab,
        f"docker service ps -f desired-state=running --format '{{{{.Node}}}}' jupyter-{name}",
    )
    template = spec["TaskTemplate"]
    return template["Resources"]["Limits"]["MemoryBytes"], template["Placement"]["Constraints"], node


@pytest.fixture
def profiles(lab, deploy_run, lab_users, tmp_path, connect):
    """The hub with PROFILES, the teacher in the group staff, worker1 labelled for big."""
    (tmp_path / "profiles.yaml").write_text(json.dumps(PROFILES))  # (JSON is YAML)
    lines = lab_users.path.read_text().splitlines()
    (tmp_path / "userlist").write_text(
        "".join(f"{line} group:staff\n" if line.startswith(f"{lab_users.admin}@") else f"{line}\n" for line in lines)
    )
    hub_shell(connect, lab, f"docker node update --label-add {LABEL} worker1")
    env = {"HUBSWARM_PROFILES": str(tmp_path / "profiles.yaml"), "HUBSWARM_USERLIST": str(tmp_path / "userlist")}
    try:
        run = fab("setup-hub", "start-hub", env=env)
        assert run.code == 0, run.output
        yield
    finally:
        for name in (lab_users.admin, lab_users.student):
            hub_shell(connect, lab, f"docker service rm jupyter-{name} >/dev/null 2>&1 || true")
        hub_shell(connect, lab, f"docker node update --label-rm {LABEL.split('=')[0]} worker1")
        back = fab("setup-hub", "start-hub")
        assert back.code == 0, back.output


def test_each_gets_the_profiles_they_may_use_and_no_other(
    lab,
    lab_users,
    profiles,
    connect,
    page,  # noqa: F811 - page: the fixture's
):
    teacher = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)
    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    for person in (teacher, student):
        person.stop_server()  # (started by another test)

    with pytest.raises(Refused, match="403"):
        student.hub_api("POST", f"users/{student.name}/server", json={"profile": "big"})
    assert student.server() == {}

    log_in(page, lab.hub_ip, teacher.name, lab_users.admin_password)
    page.wait_for_url(re.compile(r"/hub/spawn"))  # two to choose from: the form, the default checked
    expect(page.locator("#profile-small")).to_be_checked()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "spawn-page.png"))
    page.check("#profile-big")
    page.locator("#spawn_form [type=submit]").click()
    # Then to the server as the spawn page would go, once it runs: a navigation of the browser's
    # own may be given up when the other lab changes this machine's network.
    teacher.wait_for_server(SPAWN_SECONDS)
    open_page(page, f"https://{lab.hub_ip}/user/{teacher.name}/lab")
    page.wait_for_url(re.compile(f"/user/{re.escape(teacher.name)}/lab"))
    decline_news(page)
    memory, constraints, node = service(connect, lab, teacher.name)
    assert (memory, node) == (3 * 2**30, "worker1")
    assert f"node.labels.{LABEL.replace('=', '==')}" in constraints

    student.start_server(profile="small")  # through the REST API
    memory, constraints, _ = service(connect, lab, student.name)
    assert memory == 2**30
    assert not any("hubswarm-test" in constraint for constraint in constraints)
    kernel = student.start_kernel()
    assert student.execute(kernel, "print(6 * 7)") == "42"
