"""An upgrade mid-term: a cluster deployed with the previous JupyterHub major's pins, then
with the current ones. The database is upgraded, and users, admin flags, ids, logins and a
running kernel survive."""

import re
import shutil
import subprocess

import requests

from fabrun import PROJECT, fab
from student import Student
from tasks import lab as lab_module
from tasks import pins

PREVIOUS_JUPYTERHUB = "5.5.4"
UIDS = "/mnt/nfs/home/.hubswarm-uids"


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


def test_an_upgrade_keeps_users_ids_logins_and_kernels(lab, deploy_run, lab_users, connect, tmp_path):
    previous = project_with_previous_pins(tmp_path / "previous")
    lab_module.recreate_host("hub")
    for step in (("setup-hub",), ("join-workers", "--rejoin"), ("start-hub",)):
        run = fab(*step, env=lab.env, project=previous)  # the lab's settings: the copy has no .lab
        assert run.code == 0, run.output
    assert hub_version(lab) == PREVIOUS_JUPYTERHUB

    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    student.start_server()
    kernel = student.start_kernel()
    student.execute(kernel, "x = 41")
    admin = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)
    users = {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()}
    uids = connect(lab.hub_ip).sudo(f"cat {UIDS}", hide=True).stdout

    upgrade = fab("deploy")
    assert upgrade.code == 0, upgrade.output
    assert "restart jupyterhub (its inputs changed)" in upgrade.output
    assert hub_version(lab) == pins.JUPYTERHUB
    copies = connect(lab.hub_ip).sudo("ls /srv/jupyterhub", hide=True).stdout.split()
    assert any(name.startswith("jupyterhub.sqlite.") for name in copies), copies  # upgrade-db kept the old one
    assert {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()} == users
    assert connect(lab.hub_ip).sudo(f"cat {UIDS}", hide=True).stdout == uids
    assert student.execute(kernel, "print(x + 1)") == "42"  # the server started before the upgrade
