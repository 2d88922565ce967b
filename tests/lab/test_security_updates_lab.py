"""security-updates on the lab's Debian nodes, checked as an operator would: unattended-upgrades
on, never a reboot, the Docker engine held back, apt's timers on; a second run changes nothing;
turned off and on again. Nothing is upgraded for real (a dry run at most)."""

import shlex

from fabrun import fab
from tasks.node import updates

APT_TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")


def shell(connection, command, timeout=None):
    """``command`` (a pipeline) as root on a node: its Result, whatever its exit status."""
    return connection.sudo("bash -c " + shlex.quote(command), hide=True, warn=True, timeout=timeout)


def nodes(lab):
    return [lab.hub_ip, *lab.worker_ips]


def apt_settings(connection):
    """What apt makes of all its configuration files, one setting a line."""
    return shell(connection, "apt-config dump").stdout.splitlines()


def test_every_node_installs_security_updates_on_its_own(lab, deploy_run, connect):
    held = [f'Unattended-Upgrade::Package-Blacklist:: "{pattern}";' for pattern in updates.HELD_PATTERNS]
    for ip in nodes(lab):
        node = connect(ip)
        assert shell(node, "dpkg-query -W -f='${Status}' unattended-upgrades").stdout == "install ok installed", ip
        settings = apt_settings(node)
        for line in [
            'APT::Periodic::Update-Package-Lists "1";',
            'APT::Periodic::Unattended-Upgrade "1";',
            'Unattended-Upgrade::Automatic-Reboot "false";',
            *held,
        ]:
            assert line in settings, (ip, line)
        for timer in APT_TIMERS:
            assert shell(node, f"systemctl is-enabled {timer}").stdout.strip() == "enabled", (ip, timer)


def test_a_dry_run_holds_the_docker_engine_back(lab, deploy_run, connect):
    """unattended-upgrades' own dry run (it may download, it installs nothing) reads the
    settings and starts from the engine held back. On a worker only: every node has the same
    settings (the test above), and a dry run costs a node half a minute of CPU."""
    run = shell(connect(lab.worker_ips[0]), "timeout 600 unattended-upgrade --dry-run -d 2>&1", timeout=660)
    assert run.exited == 0, run.stdout[-3000:]
    assert "Initial blacklist: " + " ".join(updates.HELD_PATTERNS) in run.stdout, run.stdout[-3000:]


def test_a_second_run_changes_nothing(lab, deploy_run):
    for args in [("security-updates",), ("check", "security-updates")]:
        run = fab(*args)
        assert run.code == 0, run.output
        assert run.changed() == [], run.output
        assert sorted(run.rows()) == sorted((ip, "security-updates", "ok") for ip in nodes(lab)), run.output


def test_turned_off_then_on_again(lab, deploy_run, connect):
    off = fab("security-updates", env={"HUBSWARM_SECURITY_UPDATES": "0"})
    try:
        assert off.code == 0, off.output
        assert sorted(off.changed()) == sorted((ip, "security-updates") for ip in nodes(lab)), off.output
        for ip in nodes(lab):
            settings = apt_settings(connect(ip))
            assert 'APT::Periodic::Unattended-Upgrade "0";' in settings, ip  # over 20auto-upgrades' "1"
            assert 'Unattended-Upgrade::Package-Blacklist:: "docker\\.io$";' in settings, ip
    finally:
        on = fab("security-updates")
    assert on.code == 0, on.output
    assert sorted(on.changed()) == sorted((ip, "security-updates") for ip in nodes(lab)), on.output
    for ip in nodes(lab):
        assert 'APT::Periodic::Unattended-Upgrade "1";' in apt_settings(connect(ip)), ip
