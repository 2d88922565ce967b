"""Shared homes on real lab hosts: made on first spawn, starter notebooks, sync-notebooks."""

import shutil
import time

import requests
import urllib3

from fabrun import PROJECT, fab
from student import Student

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
HOMES = "/mnt/nfs/home"


def spawn(hub_ip, name, password, login=None):
    """Log in (as ``login``, else ``name``) and start the user's server like a browser
    would; wait for JupyterLab."""
    session = requests.Session()
    session.get(f"https://{hub_ip}/hub/login", verify=False, timeout=10)
    session.post(
        f"https://{hub_ip}/hub/login",
        data={"username": login or name, "password": password, "_xsrf": session.cookies.get("_xsrf", "")},
        verify=False,
        timeout=60,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        reply = session.get(f"https://{hub_ip}/user/{name}/lab", verify=False, timeout=30)
        if reply.status_code == 200 and "JupyterLab" in reply.text:
            return session
        time.sleep(2)
    raise AssertionError(f"{name}'s server did not start")


def stop(session, hub_ip, name):
    session.delete(
        f"https://{hub_ip}/hub/api/users/{name}/server",
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")},
        verify=False,
        timeout=60,
    )


def node_of(connect, hub_ip, name):
    """The hostname of the node that runs the user's notebook."""
    out = (
        connect(hub_ip)
        .run(f"docker service ps --filter desired-state=running --format '{{{{.Node}}}}' jupyter-{name}", hide=True)
        .stdout
    )
    return out.split()[0]


def test_mount_efs_recognises_the_lab_share(deploy_run):
    run = fab("mount-efs")
    assert run.code == 0, run.output
    assert {task for _, task, status in run.rows() if status == "ok"} == {"mount-efs"}
    assert len(run.rows()) == 3


def test_home_made_on_first_spawn_owned_by_the_user_everywhere(lab, deploy_run, lab_users, connect):
    name = "student2"
    connect(lab.hub_ip).sudo(f"rm -rf {HOMES}/{name}")  # a first spawn, even on a reused lab
    session = spawn(lab.hub_ip, name, lab_users.password)
    try:
        worker_ip = lab.hosts[node_of(connect, lab.hub_ip, name)]
        assert worker_ip in lab.worker_ips
        uid = (
            connect(lab.hub_ip)
            .sudo(f"awk '$1 == \"{name}\" {{print $2}}' {HOMES}/.hubswarm-uids", hide=True)
            .stdout.strip()
        )
        assert int(uid) >= 10001
        for ip in (worker_ip, lab.hub_ip):
            owner = connect(ip).sudo(f"stat -c '%u:%g %a' {HOMES}/{name}", hide=True).stdout.split()
            assert owner == [f"{uid}:{uid}", "750"]
            starter = (
                connect(ip)
                .sudo(f"sh -c 'stat -c \"%u %a %n\" {HOMES}/{name}/example_notebooks/*.ipynb'", hide=True)
                .stdout.splitlines()
            )
            assert starter and all(line.split()[:2] == [uid, "444"] for line in starter)
        # the notebook itself runs as that user, with the home mounted
        container = connect(worker_ip).run(f"docker ps -q --filter name=jupyter-{name}", hide=True).stdout.strip()
        user = connect(worker_ip).run(f"docker exec {container} id -u", hide=True).stdout.strip()
        assert user == uid
    finally:
        stop(session, lab.hub_ip, name)


def test_sync_notebooks_adds_new_ones_without_touching_user_files(lab, deploy_run, lab_users, connect, tmp_path):
    name = "student2"
    home = f"{HOMES}/{name}"
    hub = connect(lab.hub_ip)
    if not hub.sudo(f"test -d {home}/example_notebooks", warn=True, hide=True).ok:
        stop(spawn(lab.hub_ip, name, lab_users.password), lab.hub_ip, name)
    hub.sudo(
        f"sh -c 'echo mine > {home}/example_notebooks/mine.txt; chown --reference={home} {home}/example_notebooks/mine.txt'"
    )
    before = hub.sudo(f"stat -c '%Y %s' {home}/example_notebooks/mine.txt", hide=True).stdout

    notebooks = tmp_path / "notebooks"
    shutil.copytree(PROJECT / "notebooks", notebooks)
    (notebooks / "week2.ipynb").write_text((notebooks / "welcome.ipynb").read_text().replace("Welcome", "Week 2"))
    run = fab("sync-notebooks", env={"HUBSWARM_NOTEBOOKS": str(notebooks)})
    assert run.code == 0, run.output
    assert run.changed() == [(lab.hub_ip, "sync-notebooks")]
    assert "Week 2" in hub.sudo(f"cat {home}/example_notebooks/week2.ipynb", hide=True).stdout
    assert hub.sudo(f"stat -c %a {home}/example_notebooks/week2.ipynb", hide=True).stdout.strip() == "444"
    assert hub.sudo(f"stat -c '%Y %s' {home}/example_notebooks/mine.txt", hide=True).stdout == before

    again = fab("sync-notebooks", env={"HUBSWARM_NOTEBOOKS": str(notebooks)})
    assert again.changed() == []
    restore = fab("sync-notebooks")  # the project's notebooks again on the hub
    assert restore.code == 0, restore.output


def hub_answers(hub_ip):
    try:
        return requests.get(f"https://{hub_ip}/hub/login", verify=False, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_the_hub_starts_only_on_the_homes_storage_and_by_itself_once_it_is_back(lab, deploy_run, lab_users, connect):
    """The hub started without the homes storage (an empty folder where it mounts, as after a
    boot without it): it does not start and makes nothing on the hub's own disk; once the
    storage is back, it starts by itself, with no deploy, and so does a student's server."""
    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    student.stop_server()
    hub = connect(lab.hub_ip)
    hub.sudo(f"mount -t tmpfs -o size=1m,mode=755 not-the-homes {HOMES}", hide=True)
    try:
        hub.sudo("systemctl restart jupyterhub", hide=True, warn=True)
        deadline = time.monotonic() + 60
        said = f"the homes storage is not mounted on hub ({HOMES} has no .hubswarm-homes): mount it (fab mount-efs)"
        while said not in hub.sudo("journalctl -u jupyterhub -n 50 -o cat --no-pager", hide=True).stdout:
            assert time.monotonic() < deadline, "the hub's journal does not say why it waits"
            time.sleep(0.5)
        assert not hub_answers(lab.hub_ip)
        assert hub.sudo(f"ls -A {HOMES}", hide=True).stdout == ""  # nothing made on the node's own disk
    finally:
        hub.sudo(f"umount {HOMES}", hide=True)
    deadline = time.monotonic() + 60
    while not hub_answers(lab.hub_ip):
        assert time.monotonic() < deadline, "the hub did not start once the homes storage was back"
        time.sleep(0.5)
    student.start_server()
    assert student.execute(student.start_kernel(), "print(6 * 7)") == "42"


def test_a_worker_without_the_homes_storage_takes_no_new_notebook(lab, deploy_run, lab_users, connect):
    """The homes storage missing on worker1 (an empty folder where it mounts): the hub marks it,
    a student's new server starts on worker2 and nothing is made on worker1's own disk; once the
    storage is back, the mark goes, with no deploy."""
    worker, hub = connect(lab.worker_ips[0]), connect(lab.hub_ip)

    def marked():
        label = '{{index .Spec.Labels "hubswarm.no-homes"}}'
        return hub.sudo(f"docker node inspect -f '{label}' worker1", hide=True).stdout.strip() == "true"

    def wait_until(condition, what):
        deadline = time.monotonic() + 90
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(1)

    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    student.stop_server()
    worker.sudo(f"mount -t tmpfs -o size=1m,mode=755 not-the-homes {HOMES}", hide=True)
    try:
        wait_until(marked, "the hub did not mark worker1, whose homes storage is missing")
        student.start_server()
        assert node_of(connect, lab.hub_ip, student.name) == "worker2"
        assert worker.sudo(f"ls -A {HOMES}", hide=True).stdout == ""  # nothing made on worker1's own disk
        student.stop_server()
    finally:
        worker.sudo(f"umount {HOMES}", hide=True)
    wait_until(lambda: not marked(), "worker1 stayed marked once its homes storage was back")
