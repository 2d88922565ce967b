"""The hub's host lost mid-lesson, and a new one in its place: `python bench/replace_hub.py`.

Brings the lab up and deploys it; two students log in and the hub backs itself up (as
its timer does), then one starts a server and a kernel (`x = 41`: after the backup, as in
a lesson) and the other stays idle. The hub's lab host is killed (`docker kill`); once a
surviving manager's swarm sees it down, a new lab host boots at its address and
`fab replace-hub` makes it the hub. Reports the time from the kill to the first
student's answer from the same kernel, phase by phase (replace-hub's steps from its recap),
and that both students carry on with the cookies they had. Goal: under 5 minutes.
"""

import re
import sys
import time

from common import Student, report, timed_fab
from tasks import lab

RECAP_LINE = re.compile(r"^\S+\s+(\S+)\s+(?:ok|changed)\s+([0-9.]+)s$")
# replace-hub's steps, by phase: the rest is the hub's setup (setup-hub's steps).
PHASES = {
    "swarm-view": "read the swarm from a surviving manager",
    "lost-hub": "wait: the lost hub seen down (beside setup)",
    "join-token": "read the swarm from a surviving manager",
    "hub-state": "read the swarm from a surviving manager",
    "swarm-takeover": "join the swarm as a manager",
    "backups": "restore the newest backup",
    "restore": "restore the newest backup",
    "swarm-managers": "the lost hub's entry demoted, removed",
    "swarm-nodes": "the lost hub's entry demoted, removed",
    "course-folders": "start the hub",
    "start-hub": "start the hub",
}


def phases(output):
    """{phase: seconds} from a replace-hub run's recap."""
    found = {}
    for line in output.splitlines():
        matched = RECAP_LINE.match(line.strip())
        if matched:
            phase = PHASES.get(matched.group(1), "set the host up (setup-hub's steps)")
            found[phase] = found.get(phase, 0.0) + float(matched.group(2))
    return found


def main():
    info = lab.ensure_lab(workers=2)
    timed_fab("deploy")
    names = [line.split("@")[0] for line in open(info.env["HUBSWARM_USERLIST"]) if line.split()[1:] == []]
    password = info.env["HUBSWARM_HUB_PASSWORD"]
    hub = f"{lab.CONTAINER_PREFIX}hub"
    # Logged in (their API tokens in the backup: the new hub knows them), then backed up.
    working, idle = Student(info.hub_ip, names[0], password), Student(info.hub_ip, names[1], password)
    lab.docker("exec", hub, "systemctl", "start", "hubswarm-backup.service")
    working.start_server()
    kernel = working.start_kernel()
    working.execute(kernel, "x = 41")
    assert idle.hub_api("GET", "user").json()["name"] == idle.name

    killed = time.monotonic()
    lab.docker("kill", hub)
    lab.recreate_host("hub")
    booted = time.monotonic()
    _, replaced = timed_fab("replace-hub")
    back = time.monotonic()
    working.start_server()  # the new hub did not know it: it takes it back
    kept = working.execute(kernel, "print(x + 1)") == "42"
    answered = time.monotonic()
    idle_carries_on = idle.hub_api("GET", "user").json()["name"] == idle.name

    print(f"{'a new host boots at its address':<42} {booted - killed:8.1f} s")
    print(f"{'fab replace-hub':<42} {back - booted:8.1f} s")
    for phase, seconds in phases(replaced.output).items():
        print(f"  {phase:<40} {seconds:8.1f} s")
    print(f"{'the first answer from the same kernel':<42} {answered - back:8.1f} s")
    results = [
        report("from the kill to the first answer", answered - killed, 300),
        report("the kernel lost its state", 0 if kept else 1, 0, ""),
        report("the idle student logged out", 0 if idle_carries_on else 1, 0, ""),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
