"""fab status on the deployed lab: healthy, then unhealthy while the proxy is stopped."""

import re
import time

from fabrun import fab
from tasks.hub import jupyterhub as hub
from tasks.hub import proxy

ROUTES_BACK_SECONDS = 90  # the hub puts its routes back on a restarted proxy every 30 s


def status_rows(output):
    """{(what, name): (state, detail, problem)} of the table ``fab status`` printed."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["WHAT", "NAME"])
    rows = {}
    for line in lines[start + 1 :]:
        cells = re.split(r" {2,}", line.strip())
        if len(cells) < 4:  # the table ends (the summary line follows it)
            break
        rows[(cells[0], cells[1])] = (*cells[2:], "")[:3]
    return rows


def wait_for_hub_routes(connection):
    """Until the hub answers through nginx and the proxy again: its routes are back."""
    deadline = time.monotonic() + ROUTES_BACK_SECONDS
    while connection.run(hub.LOGIN_STATUS, hide=True, warn=True).stdout.strip() != "200":
        assert time.monotonic() < deadline, f"the hub's routes were not back within {ROUTES_BACK_SECONDS} s"
        time.sleep(2)


def test_status_healthy_then_names_the_stopped_proxy(lab, deploy_run, connect):
    healthy = fab("status")
    assert healthy.code == 0, healthy.output
    rows = status_rows(healthy.output)
    assert rows[("service", "jupyterhub")][0] == "active"
    assert rows[("service", "jupyterhub-proxy")][0] == "active"
    nodes = {name: state for (what, name), (state, _, _) in rows.items() if what == "node"}
    assert set(nodes) >= {"hub", "worker1", "worker2"}
    assert set(nodes.values()) == {"ready"}, nodes
    assert rows[("routes", "proxy API")][1].endswith(", 0 pointing nowhere"), healthy.output
    for node in ("worker1", "worker2"):  # every node's Docker disk, read from the node itself
        assert rows[("disk", f"{node}:/var/lib/docker")][0].endswith("% free"), healthy.output
    assert [row for row in rows.values() if row[2]] == []

    hub_host = connect(lab.hub_ip)
    hub_host.sudo(f"systemctl stop {proxy.SERVICE}", hide=True)
    try:
        stopped = fab("status")
    finally:
        hub_host.sudo(f"systemctl start {proxy.SERVICE}", hide=True)
        wait_for_hub_routes(hub_host)
    assert stopped.code == 1, stopped.output
    assert status_rows(stopped.output)[("service", "jupyterhub-proxy")] == ("inactive", "enabled", "not active")
    [summary] = [line for line in stopped.output.splitlines() if line.startswith("unhealthy")]
    assert "service jupyterhub-proxy: not active" in summary

    again = fab("status")
    assert again.code == 0, again.output
