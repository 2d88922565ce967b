"""A term's hub: deployed with the previous JupyterHub major's pins, backed up, upgraded to
the current ones mid-term (the database is upgraded; users, admin flags, ids, logins and a
running kernel survive), then its host lost mid-lesson and a new one put in its place with
the backup taken before the upgrade (fab replace-hub --archive: the swarm outlived the hub,
the kernel still answers with its variables; users, ids and logins come back, the old
database upgraded, and the two who first logged in after the backup get their own homes
back, whoever comes first; a server started after the backup ran on through the hub's loss,
and the new hub takes it back, kernel and all, at its user's next start)."""

import re
import shutil
import subprocess

import requests

from fabrun import PROJECT, fab
from student import Student
from tasks import lab as lab_module
from tasks import pins

PREVIOUS_JUPYTERHUB = "5.5.4"
HOMES = "/mnt/nfs/home"
UIDS = f"{HOMES}/.hubswarm-uids"


def project_with_previous_pins(folder):
    """A copy of the project (its tracked files) whose pins name the previous JupyterHub."""
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        if (PROJECT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, folder / name)
    pins_file = folder / "tasks" / "pins.py"
    text = re.sub(r'^JUPYTERHUB = ".*"$', f'JUPYTERHUB = "{PREVIOUS_JUPYTERHUB}"', pins_file.read_text(), flags=re.M)
    pins_file.write_text(text)
    return folder


def hub_version(lab):
    return requests.get(f"https://{lab.hub_ip}/hub/api", timeout=30, verify=False).json()["version"]


def ids(connect, lab):
    """{user: id} of the ids file on the shared storage."""
    return dict(line.split() for line in connect(lab.hub_ip).sudo(f"cat {UIDS}", hide=True).stdout.splitlines())


def test_an_upgrade_keeps_users_ids_logins_and_kernels_then_a_backup_rebuilds_the_hub(
    lab, first_deploy, lab_users, connect, tmp_path
):
    previous = project_with_previous_pins(tmp_path / "previous")
    first_deploy(env=lab.env, project=previous)  # the lab's settings: the copy has no .lab
    assert hub_version(lab) == PREVIOUS_JUPYTERHUB

    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    admin = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)
    # Two who first log in after the backup: no home, no id before it.
    roster = [line.split()[0].split("@")[0] for line in lab_users.path.read_text().splitlines() if line.strip()]
    [classmate] = [name for name in roster if name not in (admin.name, student.name)]
    late = [admin, Student(lab.hub_ip, classmate, lab_users.password)]
    for person in late:
        connect(lab.hub_ip).sudo(f"rm -rf {HOMES}/{person.name}", hide=True)
        connect(lab.hub_ip).sudo(f"sed -i '/^{person.name} /d' {UIDS} 2>/dev/null || true", hide=True)
    student.start_server()
    kernel = student.start_kernel()
    student.execute(kernel, "x = 41")
    users = {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()}
    saved = fab("backup", "--to", str(tmp_path / "backups"))
    assert saved.code == 0, saved.output
    [archive] = (tmp_path / "backups").iterdir()
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    for secret in lab_users.secrets:
        assert secret not in saved.output
    for person in late:
        person.start_server()
        person.execute(person.start_kernel(), f"open('mine.txt', 'w').write('{person.name}')")
        person.stop_server()
    # A server started after the backup, running on through the upgrade and the hub's loss.
    unknown = late[1]
    unknown.start_server()
    unknowns_kernel = unknown.start_kernel()
    unknown.execute(unknowns_kernel, "y = 'kept'")
    uids = ids(connect, lab)
    assert uids[late[0].name] != uids[late[1].name]

    upgrade = fab("deploy")
    assert upgrade.code == 0, upgrade.output
    assert "restart jupyterhub (its inputs changed)" in upgrade.output
    assert hub_version(lab) == pins.JUPYTERHUB
    copies = connect(lab.hub_ip).sudo("ls /srv/jupyterhub", hide=True).stdout.split()
    assert any(name.startswith("jupyterhub.sqlite.") for name in copies), copies  # upgrade-db kept the old one
    assert {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()} == users
    assert ids(connect, lab) == uids
    assert student.execute(kernel, "print(x + 1)") == "42"  # the server started before the upgrade

    live = fab("replace-hub", "--archive", str(archive))  # the hub is the swarm's own: nothing to replace
    assert live.code == 0 and live.changed() == [], live.output

    # The hub's host is lost mid-lesson; the shared storage loses the ids too.
    lab_module.docker("kill", lab_module.CONTAINER_PREFIX + "hub")
    lab_module.recreate_host("hub")  # a new host, at the lost one's address (the swarm may still see the old up)
    connect(lab.hub_ip).sudo(f"rm -f {UIDS}", hide=True)
    check = fab("check", "replace-hub", "--archive", str(archive))
    assert check.code == 0, check.output
    assert {(lab.hub_ip, "swarm-takeover"), (lab.hub_ip, "restore")} <= set(check.changed()), check.output
    swarm_state = "docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo no-docker"
    assert connect(lab.hub_ip).sudo(swarm_state, hide=True).stdout.strip() in ("inactive", "no-docker")
    replaced = fab("replace-hub", "--archive", str(archive))
    assert replaced.code == 0, replaced.output
    student.start_server()  # (once the new hub has checked it: it finds it running)
    assert student.execute(kernel, "print(x + 1)") == "42"  # the kernel kept running, its variables too
    again = fab("replace-hub", "--archive", str(archive))
    assert again.code == 0 and again.changed() == [], again.output
    listed = "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'"
    swarm = [line.split() for line in connect(lab.hub_ip).sudo(listed, hide=True).stdout.splitlines()]
    assert sorted(name for name, *_ in swarm) == ["hub", "worker1", "worker2"], swarm  # the lost hub's entry gone
    assert sorted(status for _, state, status in swarm if state == "Ready") == ["Leader", "Reachable", "Reachable"]
    assert hub_version(lab) == pins.JUPYTERHUB  # the archive's database, upgraded
    assert student.hub_api("GET", "user").json()["name"] == student.name  # the old login cookie works
    unknown.start_server()  # the new hub did not know it: it takes it back, kernels and all
    assert unknown.execute(unknowns_kernel, "print(y)") == "kept"
    assert {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()} == users
    for person in reversed(late):  # the other order of first login: each gets their own home back
        person.start_server()
        mine = person.execute(person.start_kernel(), "import os; print(os.getuid(), open('mine.txt').read())")
        assert mine == f"{uids[person.name]} {person.name}"
    assert ids(connect, lab) == uids
    first_deploy.left_current()  # the current project deployed the workers, and its restore the hub
