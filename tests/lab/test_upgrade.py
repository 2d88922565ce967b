"""A term's hub: deployed with the previous JupyterHub major's pins, backed up, upgraded to
the current ones mid-term (the database is upgraded; users, admin flags, ids, logins and a
running kernel survive), then lost and rebuilt from the backup taken before the upgrade
(fab backup, fab restore: users, ids and logins come back, the old database upgraded, and
the two who first logged in after the backup get their own homes back, whoever comes first)."""

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

    lab_module.recreate_host("hub")  # the hub host is lost; the shared storage loses the ids too
    connect(lab.hub_ip).sudo(f"rm -f {UIDS}", hide=True)
    for step in (("setup-hub",), ("restore", "--archive", str(archive))):
        run = fab(*step)
        assert run.code == 0, run.output
    again = fab("restore", "--archive", str(archive))
    assert again.code == 0 and again.changed() == [], again.output
    for step in (("join-workers", "--rejoin"), ("start-hub",)):
        run = fab(*step)
        assert run.code == 0, run.output
    assert hub_version(lab) == pins.JUPYTERHUB  # the archive's database, upgraded
    assert student.hub_api("GET", "user").json()["name"] == student.name  # the old login cookie works
    assert {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()} == users
    for person in reversed(late):  # the other order of first login: each gets their own home back
        person.start_server()
        mine = person.execute(person.start_kernel(), "import os; print(os.getuid(), open('mine.txt').read())")
        assert mine == f"{uids[person.name]} {person.name}"
    assert ids(connect, lab) == uids
    first_deploy.left_current()  # the current project deployed the workers, and its restore the hub
