"""From nothing to a hub serving its login page, by phase: `python bench/deploy_phases.py`.

Removes the lab (keeping its cached images), then: lab.up (hub + 2 workers),
`fab deploy`, and a browser session until a kernel answers. Prints the wall
time of each phase (lab, hub, workers, images, start; read from deploy's
recap) and the time from "start server" to a kernel's first output.
"""

import os
import subprocess
import sys
import time

from common import PROJECT, timed_fab
from tasks import lab
from tasks.ops.workflows import HUB_SETUP

HUB_STEPS = {s.name for s in HUB_SETUP}
WORKER_STEPS = {"install-packages", "install-docker", "swarm-join"}


def phase_seconds(run, hub_ip):
    rows = run.timed_rows()
    by_host = {}
    for host, task, _, seconds in rows:
        by_host.setdefault(host, {}).setdefault(task, 0.0)
        by_host[host][task] += seconds
    workers = [tasks for host, tasks in by_host.items() if host != hub_ip]
    return {
        "hub (setup-hub)": sum(t for task, t in by_host[hub_ip].items() if task in HUB_STEPS),
        "workers (packages, docker, join)": max(sum(t.get(s, 0) for s in WORKER_STEPS) for t in workers),
        "images (build here, push)": max(t.get("push-image", 0) for t in by_host.values()),
        "start (start-hub)": by_host[hub_ip].get("start-hub", 0.0),
    }


def main():
    lab.destroy()
    start = time.monotonic()
    info = lab.ensure_lab(workers=2)
    lab_seconds = time.monotonic() - start
    deploy_seconds, run = timed_fab("deploy")
    print(f"{'lab (lab.up)':<36} {lab_seconds:7.1f} s")
    for phase, seconds in phase_seconds(run, info.hub_ip).items():
        print(f"{phase:<36} {seconds:7.1f} s")
    print(f"{'total: nothing -> login page':<36} {lab_seconds + deploy_seconds:7.1f} s")
    browser = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/lab/test_browser.py::test_student_runs_code_on_a_worker"],
        cwd=PROJECT,
        env={**os.environ, "HUBSWARM_TEST_REUSE": "1"},
    )
    if browser.returncode == 0:
        kernel = (PROJECT / "artifacts" / "kernel-seconds.txt").read_text().strip()
        print(f"{'start server -> kernel answers':<36} {float(kernel):7.1f} s")
    return browser.returncode


if __name__ == "__main__":
    sys.exit(main())
