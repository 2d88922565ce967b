"""setup-hub and start-hub on real lab hosts: the hub answers, reruns change nothing."""

import ssl
import urllib.request

import requests
import urllib3

from fabrun import fab
from student import log_in

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def login_status(hub_ip):
    """HTTP status of https://HUB/hub/login through nginx (self-signed: not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"https://{hub_ip}/hub/login", context=context, timeout=10) as reply:
        return reply.status


def can_log_in(hub_ip, name, password):
    """True when the hub accepts ``name`` and ``password`` on its login form."""
    return log_in(requests.Session(), hub_ip, name, password)


def test_hub_answers_through_nginx_and_runs_under_systemd(lab, hub_run, connect):
    assert hub_run.code == 0, hub_run.output
    assert login_status(lab.hub_ip) == 200
    hub = connect(lab.hub_ip)
    assert hub.run("systemctl is-active jupyterhub", hide=True).stdout.strip() == "active"
    assert hub.run("systemctl is-enabled jupyterhub", hide=True).stdout.strip() == "enabled"
    modes = hub.sudo(
        "stat -c '%a %U %n' /srv/jupyterhub /srv/jupyterhub/env /srv/jupyterhub/userlist /srv/jupyterhub/ssl/hub.key",
        hide=True,
    ).stdout.split("\n")
    assert [m.split()[0] for m in modes if m] == ["700", "600", "600", "600"]
    # http redirects to https
    reply = requests.get(f"http://{lab.hub_ip}/hub/login", allow_redirects=False, timeout=10)
    assert reply.status_code == 301 and reply.headers["Location"].startswith("https://")


def test_second_run_changes_nothing(lab, hub_run):
    again = fab("setup-hub", "start-hub")
    assert again.code == 0, again.output
    assert again.changed() == []
    assert {task for _, task, _ in again.rows()} >= {"install-packages", "nginx", "start-hub"}


def test_users_log_in_with_the_lab_password(lab, hub_run, lab_users):
    assert can_log_in(lab.hub_ip, lab_users.student, lab_users.password)
    assert not can_log_in(lab.hub_ip, lab_users.student, "wrong-password")
    assert not can_log_in(lab.hub_ip, "stranger", lab_users.password)


def test_editing_one_userlist_line_changes_only_userlist_and_restart(lab, hub_run, lab_users, tmp_path):
    edited = tmp_path / "userlist"
    original = lab_users.path.read_text()
    kept = [line for line in original.splitlines() if not line.startswith(lab_users.student + "@")]
    edited.write_text("\n".join(kept) + "\n")

    run = fab("setup-hub", "start-hub", env={"HUBSWARM_USERLIST": str(edited)})
    assert run.code == 0, run.output
    assert sorted(task for _, task in run.changed()) == ["start-hub", "userlist"]
    assert not can_log_in(lab.hub_ip, lab_users.student, lab_users.password)

    restore = fab("setup-hub", "start-hub")
    assert sorted(task for _, task in restore.changed()) == ["start-hub", "userlist"]
    assert can_log_in(lab.hub_ip, lab_users.student, lab_users.password)


def test_no_secret_in_any_output(hub_run, lab_users):
    again = fab("setup-hub", "start-hub")
    for output in (hub_run.output, again.output):
        for value in lab_users.secrets:
            assert value not in output


def test_check_mode_on_a_fresh_host_changes_nothing(lab, fresh_host, connect):
    host = connect(fresh_host)
    snapshot = "dpkg-query -W | md5sum; ls -a /srv /etc/nginx /opt 2>&1 | md5sum"
    before = host.sudo(snapshot, hide=True).stdout

    run = fab("-H", fresh_host, "check", "setup-hub", "start-hub")
    assert run.code == 0, run.output
    assert "check mode: nothing was changed" in run.output
    assert any(task == "install-packages" for _, task in run.changed())
    assert "would install" in run.output
    assert host.sudo(snapshot, hide=True).stdout == before


def test_oauth_secret_reaches_the_hub_file_but_no_output(lab, fresh_host, connect):
    secret = "oauth-secret-4f1b9c2e7d"
    env = {
        "HUBSWARM_AUTHENTICATOR": "google",
        "HUBSWARM_DOMAIN": "hub.lab.example",
        "OAUTH_CLIENT_ID": "client-id-123",
        "OAUTH_CLIENT_SECRET": secret,
    }
    checked = fab("-H", fresh_host, "check", "write-env", env=env)
    written = fab("-H", fresh_host, "write-env", env=env)
    assert written.code == 0, written.output
    for run in (checked, written):
        assert secret not in run.output
    host = connect(fresh_host)
    assert host.sudo("stat -c '%a %U' /srv/jupyterhub /srv/jupyterhub/env", hide=True).stdout.split() == [
        "700",
        "root",
        "600",
        "root",
    ]
    content = host.sudo("cat /srv/jupyterhub/env", hide=True).stdout
    assert f'OAUTH_CLIENT_SECRET="{secret}"' in content
    assert 'OAUTH_CALLBACK_URL="https://hub.lab.example/hub/oauth_callback"' in content


def test_bad_input_fails_before_any_host_is_touched(lab, fresh_host, connect, tmp_path):
    userlist = tmp_path / "userlist"
    userlist.write_text("teacher@lab.example admin\nnot-an-email\n")
    run = fab("-H", fresh_host, "setup-hub", env={"HUBSWARM_USERLIST": str(userlist)})
    assert run.code != 0
    assert f"{userlist} line 2: 'not-an-email' is not an email address" in run.output
    assert "RECAP" not in run.output  # no host was reached
    missing = fab("-H", fresh_host, "write-env", env={"HUBSWARM_AUTHENTICATOR": "google", "OAUTH_CLIENT_ID": ""})
    assert missing.code != 0 and "OAUTH_CLIENT_ID is missing" in missing.output
    assert connect(fresh_host).sudo("test -e /srv/jupyterhub", warn=True, hide=True).failed
