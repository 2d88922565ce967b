"""fab backup and fab restore: a hub host lost and rebuilt gets its users, their ids and
their logins back."""

from fabrun import fab
from student import Student
from tasks import lab as lab_module

UIDS = "/mnt/nfs/home/.hubswarm-uids"


def test_a_rebuilt_hub_gets_its_users_ids_and_logins_back(lab, deploy_run, lab_users, connect, tmp_path):
    student = Student(lab.hub_ip, lab_users.student, lab_users.password)  # a login from before
    student.start_server()  # its home and id exist
    admin = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)
    users = {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()}
    uids = connect(lab.hub_ip).sudo(f"cat {UIDS}", hide=True).stdout

    saved = fab("backup", "--to", str(tmp_path / "backups"))
    assert saved.code == 0, saved.output
    [archive] = (tmp_path / "backups").iterdir()
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    for secret in lab_users.secrets:
        assert secret not in saved.output

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

    assert student.hub_api("GET", "user").json()["name"] == student.name  # the old login cookie works
    assert {u["name"]: u["admin"] for u in admin.hub_api("GET", "users").json()} == users
    assert connect(lab.hub_ip).sudo(f"cat {UIDS}", hide=True).stdout == uids
