"""join-workers wall time for 1, 2, 4 and 8 lab workers, and a no-op deploy of the hub
and 8 workers: `python bench/join_workers.py [--workers 8]`.

The workers already have Docker (a first join-workers installs it); before
each measurement every worker leaves the swarm, and only N of them keep the
worker tag in the lab's EC2 API. Goals: 8 workers within 1.5x the time of 1,
and a no-op `fab deploy` of the hub and 8 workers within 2 s. Leaves the lab at
2 workers.
"""

import argparse
import statistics
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
    # Workers promoted to managers are demoted first: leaving, they would take the quorum along.
    lab.docker(
        "exec",
        f"{lab.CONTAINER_PREFIX}hub",
        "sh",
        "-c",
        "docker node demote $(docker node ls -q --filter role=manager | grep -vx \"$(docker info -f '{{.Swarm.NodeID}}')\") "
        "2>/dev/null",
        check=False,
    )
    for number in range(1, len(info.worker_ips) + 1):
        lab.docker("exec", f"{lab.CONTAINER_PREFIX}worker{number}", "docker", "swarm", "leave", "--force", check=False)
    lab.docker(
        "exec",
        f"{lab.CONTAINER_PREFIX}hub",
        "sh",
        "-c",
        "docker node rm --force $(docker node ls -q --filter role=worker) 2>/dev/null",
        check=False,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5, help="no-op deploys to take the median of")
    args = parser.parse_args()
    counts = sorted({1, 2, 4, args.workers} & set(range(1, args.workers + 1)))
    info = lab.ensure_lab(workers=args.workers)
    try:
        timed_fab("setup-hub")
        timed_fab("join-workers")  # Docker and the image on all of them
        seconds = {}
        for count in counts:
            leave_swarm(info)
            tag_workers(count)
            seconds[count], _ = timed_fab("join-workers")
            print(f"join-workers, {count} worker(s): {seconds[count]:.1f} s", flush=True)
        timed_fab("deploy")  # converged: the hub started as deploy leaves it
        noops = [timed_fab("deploy") for _ in range(args.runs)]
        changed = [run.changed() for _, run in noops if run.changed()]
        if changed:
            sys.exit(f"not a no-op: {changed}")
        noop = statistics.median(s for s, _ in noops)
        results = [
            report(f"{args.workers} workers / 1 worker (ratio)", seconds[args.workers] / seconds[1], 1.5, "x"),
            report(f"no-op deploy, hub + {args.workers} workers (median)", noop, 2),
        ]
    finally:
        tag_workers(args.workers)
        lab.ensure_lab(workers=2)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
