"""What a hub restart costs: `python bench/hub_restart.py [--restarts 3]`.

Brings the lab up and deploys it, starts a student's server and kernel, then
restarts the hub (`systemctl restart jupyterhub`, what start-hub does after a
userlist or config change) while two probes poll every 50 ms through nginx: the
hub API (`/hub/api`) and the student's own server (through the proxy). Reports
the longest hub API outage, the student's failed requests, and that the kernel
kept its state. Goals: hub API back within 10 s; the student sees no failure.
"""

import argparse
import statistics
import sys
import threading
import time

import requests

from common import Student, report, timed_fab
from tasks import lab

POLL_SECONDS = 0.05


class Probe(threading.Thread):
    """Polls ``request()`` until stopped; keeps (time, ok) of every answer."""

    def __init__(self, request):
        super().__init__(daemon=True)
        self.request, self.answers, self.stopping = request, [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                ok = self.request().status_code == 200
            except requests.RequestException:
                ok = False
            self.answers.append((time.monotonic(), ok))
            time.sleep(POLL_SECONDS)

    def longest_outage(self):
        longest, down_since = 0.0, None
        for moment, ok in self.answers:
            if not ok and down_since is None:
                down_since = moment
            elif ok and down_since is not None:
                longest, down_since = max(longest, moment - down_since), None
        return longest

    def failures(self):
        return sum(not ok for _, ok in self.answers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    info = lab.ensure_lab(workers=2)
    timed_fab("deploy")
    name = next(line.split("@")[0] for line in open(info.env["HUBSWARM_USERLIST"]) if line.split()[1:] == [])
    student = Student(info.hub_ip, name, info.env["HUBSWARM_HUB_PASSWORD"])
    student.start_server()
    kernel = student.start_kernel()
    student.execute(kernel, "x = 41")
    hub_api = f"https://{info.hub_ip}/hub/api"
    outages, failures = [], 0
    for _ in range(args.restarts):
        probes = [
            Probe(lambda: requests.get(hub_api, timeout=2, verify=False)),
            Probe(lambda: student.server_api("GET", "status", timeout=2)),
        ]
        for probe in probes:
            probe.start()
        time.sleep(1)
        lab.docker("exec", f"{lab.CONTAINER_PREFIX}hub", "systemctl", "restart", "jupyterhub")
        # The hub is back when its API answers again; then a little more of both probes.
        while not requests.get(hub_api, timeout=2, verify=False).ok:
            time.sleep(POLL_SECONDS)
        time.sleep(2)
        for probe in probes:
            probe.stopping.set()
            probe.join()
        outages.append(probes[0].longest_outage())
        failures += probes[1].failures()
    kept = student.execute(kernel, "print(x + 1)") == "42"
    results = [
        report("hub API outage per restart (median)", statistics.median(outages), 10),
        report("hub API outage per restart (longest)", max(outages), 10),
        report("student requests failed during restarts", failures, 0, "requests"),
        report("kernel lost its state", 0 if kept else 1, 0, ""),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
