"""A term with the hub up: routine changes lose nobody, moved notebooks are found again.

Each test starts a student's kernel before the change and runs code in it after.
"""

import time

import pytest
import requests

from fabrun import fab
from student import Refused, Student
from tasks import lab as lab_module

HOMES = "/mnt/nfs/home"
# The user reaches their server again this soon after swarm runs it again.
FOUND_AGAIN_SECONDS = 30


def hub_shell(connect, lab, command):
    return connect(lab.hub_ip).sudo(command, hide=True).stdout.strip()


def notebook_services(connect, lab, name):
    """IDs of ``name``'s notebook services (swarm services labelled with the user)."""
    return hub_shell(connect, lab, f"docker service ls -q --filter label=hubswarm.user={name}").split()


@pytest.fixture
def student(lab, deploy_run, lab_users):
    learner = Student(lab.hub_ip, lab_users.student, lab_users.password)
    learner.start_server()
    return learner


@pytest.fixture
def userlist_run(lab_users, tmp_path):
    """``run(text)``: `fab setup-hub start-hub` with the userlist ``text``; the lab's own
    list is deployed again afterwards."""
    path = tmp_path / "userlist"

    def run(text, *tasks):
        path.write_text(text)
        return fab(*(tasks or ("setup-hub", "start-hub")), env={"HUBSWARM_USERLIST": str(path)})

    yield run
    restore = fab("setup-hub", "start-hub")
    assert restore.code == 0, restore.output


def test_adding_a_student_mid_lesson_keeps_running_kernels(lab, lab_users, student, userlist_run, connect):
    kernel = student.start_kernel()
    student.execute(kernel, "x = 41")
    services = notebook_services(connect, lab, student.name)
    roster = lab_users.path.read_text() + "newcomer@lab.example\n"

    predicted = userlist_run(roster, "check", "setup-hub", "start-hub")
    assert predicted.code == 0, predicted.output
    assert "would restart jupyterhub (its inputs changed)" in predicted.output

    run = userlist_run(roster)
    assert run.code == 0, run.output
    assert "restart jupyterhub (its inputs changed)" in run.output
    assert "jupyterhub-proxy" not in run.output  # the proxy, and every route, stayed up
    assert student.execute(kernel, "print(x + 1)") == "42"
    assert notebook_services(connect, lab, student.name) == services
    Student(lab.hub_ip, "newcomer", lab_users.password)  # logs in


def test_a_student_taken_off_the_list_is_refused_and_their_server_stops(lab, lab_users, student, userlist_run, connect):
    assert notebook_services(connect, lab, student.name)
    kept = [line for line in lab_users.path.read_text().splitlines() if not line.startswith(student.name + "@")]
    run = userlist_run("\n".join(kept) + "\n")
    assert run.code == 0, run.output
    with pytest.raises(Refused):
        student.server()  # their token died with them
    with pytest.raises(Refused):
        Student(lab.hub_ip, student.name, lab_users.password)
    assert notebook_services(connect, lab, student.name) == []
    assert hub_shell(connect, lab, f"test -d {HOMES}/{student.name} && echo kept") == "kept"


def test_the_admin_page_says_where_users_are_managed(lab, deploy_run, lab_users):
    admin = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)
    with pytest.raises(Refused, match="users are managed in hubswarm's userlist"):
        admin.hub_api("POST", "users", json={"usernames": ["walk-in"]})
    with pytest.raises(Refused):
        Student(lab.hub_ip, "walk-in", lab_users.password)


def running_task(connect, lab, name):
    """(node, task id) of ``name``'s running notebook task, or None."""
    found = hub_shell(
        connect,
        lab,
        f"docker service ps -q --filter desired-state=running --format '{{{{.Node}}}} {{{{.ID}}}} {{{{.CurrentState}}}}' "
        f"jupyter-{name}",
    ).split("\n")
    running = [line.split()[:2] for line in found if " Running " in f" {line} "]
    return tuple(running[0]) if running else None


def run_again(connect, lab, student, before, seconds=180):
    """Wait until swarm runs a new task for the student's notebook: its (node, task id)."""
    deadline = time.monotonic() + seconds
    while (now := running_task(connect, lab, student.name)) in (None, before):
        assert time.monotonic() < deadline, f"swarm did not run {student.name}'s notebook again"
        time.sleep(1)
    return now


def found_again(connect, lab, student, before, seconds=180):
    """Wait until swarm runs a new task for the student's notebook, then time how long
    until the student reaches it; (that time, the new task's node)."""
    now = run_again(connect, lab, student, before, seconds)
    return student.wait_for_server(FOUND_AGAIN_SECONDS), now[0]


def test_a_server_that_exits_while_the_hub_is_down_is_found_again(lab, student, connect):
    """Swarm runs it again on another port; the hub, started again, checks it there (not at the
    address it stored, where it would wait http_timeout and then stop the server)."""
    before = running_task(connect, lab, student.name)
    node_ip = lab.hosts[before[0]]
    hub_shell(connect, lab, "systemctl stop jupyterhub")
    try:
        connect(node_ip).sudo(
            f"docker kill $(docker ps -q --filter label=com.docker.swarm.task.id={before[1]})", hide=True
        )
        run_again(connect, lab, student, before)
    finally:
        hub_shell(connect, lab, "systemctl start jupyterhub")
    # The hub checks the server once the notebook reached it again (after its own back-off).
    student.wait_for_the_hubs_check()
    assert student.server().get("ready"), student.server()
    seconds = student.wait_for_server(FOUND_AGAIN_SECONDS)
    print(f"the server answered {seconds:.1f} s after the hub checked it")
    kernel = student.start_kernel()
    assert student.execute(kernel, "print(6 * 7)") == "42"


def test_a_server_that_keeps_failing_is_shown_stopped(lab, student, connect):
    """Swarm gives up after 3 failures in 2 minutes; the hub then shows the server stopped
    (no 503 loop) and the student can start it again once the cause is gone."""
    before = running_task(connect, lab, student.name)
    home = f"{HOMES}/{student.name}"
    mode = hub_shell(connect, lab, f"stat -c %a {home}")
    hub_shell(connect, lab, f"chmod 000 {home}")  # a home the server cannot use: it exits at once
    try:
        connect(lab.hosts[before[0]]).sudo(
            f"docker kill $(docker ps -q --filter label=com.docker.swarm.task.id={before[1]})", hide=True
        )
        deadline = time.monotonic() + 180
        while student.server():
            assert time.monotonic() < deadline, f"the hub still shows the failing server: {student.server()}"
            time.sleep(1)
        assert notebook_services(connect, lab, student.name) == []
    finally:
        hub_shell(connect, lab, f"chmod {mode} {home}")
    student.start_server()
    kernel = student.start_kernel()
    assert student.execute(kernel, "print(6 * 7)") == "42"


def test_a_notebook_on_a_rebooted_worker_is_found_again(lab, student, connect):
    before = running_task(connect, lab, student.name)
    lab_module.reboot_host(before[0])
    seconds, _ = found_again(connect, lab, student, before)
    print(f"found again {seconds:.1f} s after swarm ran the rebooted worker's notebook again")
    kernel = student.start_kernel()
    assert student.execute(kernel, "print(6 * 7)") == "42"


def node_states(connect, lab):
    return dict(
        line.split()
        for line in hub_shell(connect, lab, "docker node ls --format '{{.Hostname}} {{.Status}}'").splitlines()
    )


def test_a_notebook_on_a_lost_worker_moves_to_another(lab, student, connect):
    node, _ = before = running_task(connect, lab, student.name)
    lab_module.docker("container", "stop", "--time", "0", f"{lab_module.CONTAINER_PREFIX}{node}")  # lost
    try:
        seconds, now_on = found_again(connect, lab, student, before, seconds=300)
        print(f"found again {seconds:.1f} s after swarm ran the lost worker's notebook elsewhere")
        assert now_on != node
        kernel = student.start_kernel()
        assert student.execute(kernel, "print(6 * 7)") == "42"
    finally:
        lab_module.ensure_lab(workers=len(lab.worker_ips))  # the worker comes back
        deadline = time.monotonic() + 180
        while node_states(connect, lab).get(node) != "Ready":
            assert time.monotonic() < deadline, f"{node} did not rejoin the swarm"
            time.sleep(1)


def test_term_settings_and_the_operators_own_config_reach_the_hub(lab, deploy_run, student, tmp_path, connect):
    kernel = student.start_kernel()
    student.execute(kernel, "x = 41")
    config_d = tmp_path / "jupyterhub_config.d"
    config_d.mkdir()
    (config_d / "banner.py").write_text('c.JupyterHub.template_vars = {"announcement": "The lab closes at six"}\n')
    try:
        settings = {"HUBSWARM_CONFIG_D": str(config_d), "HUBSWARM_CULL_IDLE": "600"}
        settings.update(HUBSWARM_NAMED_SERVERS="1", HUBSWARM_NAMED_SERVER_LIMIT="1")
        run = fab("setup-hub", "start-hub", env=settings)
        assert run.code == 0, run.output
        assert "restart jupyterhub (its inputs changed)" in run.output
        login_page = requests.get(f"https://{lab.hub_ip}/hub/login", timeout=30, verify=False).text
        assert "The lab closes at six" in login_page
        assert "--timeout=600" in hub_shell(connect, lab, "ps -eo args | grep [j]upyterhub_idle_culler")
        assert student.execute(kernel, "print(x + 1)") == "42"
        # One named server, no second: a student's servers cannot take the class's room.
        student.wait_for_the_hubs_check()
        student.hub_api("POST", f"users/{student.name}/servers/extra")
        try:
            with pytest.raises(Refused, match="400"):
                student.hub_api("POST", f"users/{student.name}/servers/another")
        finally:
            deadline = time.monotonic() + 120  # (a server still starting cannot be removed)
            while not student.hub_api("GET", f"users/{student.name}").json()["servers"]["extra"]["ready"]:
                assert time.monotonic() < deadline, "the named server did not start"
                time.sleep(0.5)
            student.hub_api("DELETE", f"users/{student.name}/servers/extra", json={"remove": True})
    finally:
        restore = fab("setup-hub", "start-hub")  # the default folder is absent: the settings go
        assert restore.code == 0, restore.output
    assert "The lab closes at six" not in requests.get(f"https://{lab.hub_ip}/hub/login", timeout=30, verify=False).text


def test_metrics_are_read_with_their_own_token_only(lab, deploy_run, student):
    url, token = f"https://{lab.hub_ip}/hub/metrics", lab.env["HUBSWARM_METRICS_TOKEN"]
    student.wait_for_the_hubs_check()  # (a hub just restarted counts a server once it has checked it)
    assert requests.get(url, timeout=30, verify=False).status_code == 403
    scraped = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30, verify=False)
    assert scraped.status_code == 200
    [running] = [line for line in scraped.text.splitlines() if line.startswith("jupyterhub_running_servers")]
    assert float(running.split()[-1]) >= 1  # the student's
    other = requests.get(
        f"https://{lab.hub_ip}/hub/api/users", headers={"Authorization": f"Bearer {token}"}, timeout=30, verify=False
    )
    assert other.status_code == 403  # its token reads metrics, nothing else
