"""join-workers wall time for 1, 2 and 4 lab workers: `python bench/join_workers.py`.

The workers already have Docker (a first join-workers installs it); before
each measurement every worker leaves the swarm, and only N of them keep the
worker tag in the lab's EC2 API. Goals: 4 workers within 1.5x the time of 1,
and a no-op join-workers on 4 workers under 3 s. Leaves the lab at 2 workers.
"""

import sys

from common import report, timed_fab
from tasks import lab
from tasks.lab import ec2 as lab_ec2

ROLE_KEY = "hubswarm:role"


def tag_workers(count):
    """Keep the worker role on the first ``count`` lab workers; the rest become spares."""
    ec2 = lab_ec2.client()
    for reservation in ec2.describe_instances(
        Filters=[
            {"Name": "tag:Name", "Values": ["lab-worker*"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["Reservations"]:
        for instance in reservation["Instances"]:
            name = next(t["Value"] for t in instance["Tags"] if t["Key"] == "Name")
            role = "worker" if int(name.removeprefix("lab-worker")) <= count else "spare"
            ec2.create_tags(Resources=[instance["InstanceId"]], Tags=[{"Key": ROLE_KEY, "Value": role}])


def leave_swarm(info):
    for number in range(1, len(info.worker_ips) + 1):
        lab.docker("exec", f"hubswarm-lab-worker{number}", "docker", "swarm", "leave", "--force", check=False)
    lab.docker(
        "exec",
        "hubswarm-lab-hub",
        "sh",
        "-c",
        "docker node rm --force $(docker node ls -q --filter role=worker) 2>/dev/null",
        check=False,
    )


def main():
    info = lab.ensure_lab(workers=4)
    timed_fab("setup-hub")
    timed_fab("join-workers")  # Docker and the image on all four
    seconds = {}
    for count in (1, 2, 4):
        leave_swarm(info)
        tag_workers(count)
        seconds[count], _ = timed_fab("join-workers")
        print(f"join-workers, {count} worker(s): {seconds[count]:.1f} s", flush=True)
    noop, _ = timed_fab("join-workers")
    results = [
        report("4 workers / 1 worker (ratio)", seconds[4] / seconds[1], 1.5, "x"),
        report("no-op join-workers, 4 workers", noop, 3),
    ]
    tag_workers(4)
    lab.ensure_lab(workers=2)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
