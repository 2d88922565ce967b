"""The hub's own services, sandboxed: what `systemd-analyze security` and the files show."""

import re

import pytest

# systemd-analyze's exposure score (0 safe .. 10 unsafe) each unit must stay at or under;
# 9.6 and 7.5 before the sandboxing.
EXPOSURE = {"jupyterhub": 3.0, "jupyterhub-proxy": 2.0}


@pytest.mark.parametrize("unit, most", EXPOSURE.items())
def test_the_hubs_services_are_sandboxed(lab, deploy_run, connect, unit, most):
    hub = connect(lab.hub_ip)
    report = hub.sudo(f"systemd-analyze security {unit}", hide=True).stdout
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", report).group(1))
    assert score <= most, report
    shown = hub.sudo(f"systemctl show -p NoNewPrivileges -p ProtectSystem -p ActiveState {unit}", hide=True).stdout
    assert set(shown.split()) == {"NoNewPrivileges=yes", "ProtectSystem=strict", "ActiveState=active"}


def test_the_proxy_runs_as_no_one_and_the_database_is_private(lab, deploy_run, connect):
    hub = connect(lab.hub_ip)
    user = hub.sudo("ps -o user= -p $(systemctl show -p MainPID --value jupyterhub-proxy)", hide=True).stdout.strip()
    assert user not in ("root", "")
    mode = hub.sudo("stat -c '%a %U' /srv/jupyterhub/jupyterhub.sqlite", hide=True).stdout.strip()
    assert mode == "600 root"
