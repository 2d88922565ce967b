"""A no-op `fab setup-hub` on a converged lab hub: `python bench/setup_hub_noop.py [--runs 5]`.

Brings the lab up and converges the hub first, then times repeated no-op runs:
wall time (median), SSH connections opened, remote commands run. Goals: under
3 s, one connection, and well under two commands per step.
"""

import argparse
import statistics
import sys

from common import report, ssh_counts, timed_fab
from tasks import lab
from tasks.workflows import HUB_SETUP


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lab.ensure_lab(workers=2)
    timed_fab("setup-hub")  # converge
    runs = [timed_fab("setup-hub") for _ in range(args.runs)]
    changed = [run.changed() for _, run in runs if run.changed()]
    if changed:
        sys.exit(f"not a no-op: {changed}")
    connections, commands = ssh_counts(runs[-1][1])
    steps = len(HUB_SETUP)
    results = [
        report("no-op setup-hub wall time (median)", statistics.median(s for s, _ in runs), 3),
        report("SSH connections opened", connections, 1, "conn"),
        report(f"remote commands ({steps} steps)", commands, steps, "commands"),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
