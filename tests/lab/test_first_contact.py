"""First contact with a host: its public name from instance metadata, checks that stop a run
before any change, and a killed run that leaves nothing racing the next one."""

import json
import os
import signal
import subprocess
import time

from fabrun import PROJECT, fab
from tasks import pins
from tasks.lab import imds as lab_imds

PUBLIC = "ec2-198-51-100-7.us-west-2.compute.amazonaws.com"
OAUTH = {"HUBSWARM_AUTHENTICATOR": "google", "OAUTH_CLIENT_ID": "lab-client", "OAUTH_CLIENT_SECRET": "lab-secret-1"}


def test_one_public_name_from_instance_metadata(fresh_host, connect):
    """No domain: certificate, public_url, OAuth callback and nginx all use the instance's
    public host name, which the lab's metadata stand-in gives this host."""
    lab_imds.set_identity(fresh_host, public_hostname=PUBLIC, public_ipv4="198.51.100.7")
    run = fab("-H", fresh_host, "install-packages", "make-cert", "write-env", "hub-config", "nginx", env=OAUTH)
    assert run.code == 0, run.output
    host = connect(fresh_host)
    san = host.sudo("openssl x509 -in /srv/jupyterhub/ssl/hub.crt -noout -ext subjectAltName", hide=True).stdout
    assert f"DNS:{PUBLIC}" in san
    values = json.loads(host.sudo("cat /srv/jupyterhub/hubswarm.json", hide=True).stdout)
    assert values["public_url"] == f"https://{PUBLIC}/"
    env = host.sudo("cat /srv/jupyterhub/env", hide=True).stdout
    assert f'OAUTH_CALLBACK_URL="https://{PUBLIC}/hub/oauth_callback"' in env
    assert f"server_name {PUBLIC};" in host.sudo("cat /etc/nginx/sites-available/jupyterhub", hide=True).stdout


def test_oauth_without_a_public_name_stops_before_any_change(fresh_host, connect):
    run = fab("-H", fresh_host, "setup-hub", env=OAUTH)
    assert run.code == 1
    assert f"no public name for the OAuth callback on {fresh_host}: set HUBSWARM_DOMAIN" in run.output
    assert "FAILED before any change" in run.output
    # Nothing was installed: the packages step never ran.
    assert connect(fresh_host).run("dpkg -s nginx", warn=True, hide=True).failed


def test_a_killed_install_does_not_break_the_next_run(fresh_host, connect):
    """Kill `fab install-nodejs` while apt runs on the host, then run it again: the rerun
    waits for what was left running and finishes (it used to fail: npm not found)."""
    first = subprocess.Popen(
        ["fab", "-H", fresh_host, "install-nodejs"],
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    host = connect(fresh_host)
    deadline = time.monotonic() + 300
    while not host.run("pgrep -x apt-get || pgrep -x dpkg", warn=True, hide=True).ok:
        assert first.poll() is None, "install-nodejs ended before apt started"
        assert time.monotonic() < deadline, "apt never started"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    again = fab("-H", fresh_host, "install-nodejs")
    assert again.code == 0, again.output
    chp = host.run("/usr/local/bin/configurable-http-proxy --version", hide=True).stdout.strip()
    assert chp == pins.CONFIGURABLE_HTTP_PROXY
