"""A no-op `fab -H HUB setup-hub` on a converged lab hub, its homes as found and 200 more:
`python bench/setup_hub_noop.py [--runs 5] [--homes 200]`.

Brings the lab up and converges its hub first. Then times, as medians of RUNS runs:
the local start-up (`fab --list`: Python, Fabric and the tasks loaded, no host touched);
no-op runs with the lab hub's own homes (none on a fresh lab), and again with HOMES more,
made on the lab hub by `hubswarm-home ensure` as first spawns make them (starter notebooks
included) and removed afterwards. What a run takes beyond the start-up is its SSH
connection, probes and steps. Goals: a no-op run within 0.6 s, with the homes as with
none; one SSH connection; well under two commands per step. It touches only the lab:
`fab` runs with the lab's settings against the lab hub, and the homes are made and
removed inside the lab hub's container.
"""

import argparse
import os
import shlex
import statistics
import sys
from types import SimpleNamespace

from common import report, ssh_counts, timed_fab
from tasks import lab, settings
from tasks.node import storage
from tasks.ops.workflows import HUB_SETUP

GOAL_SECONDS = 0.6
# Homes a no-op may cost on top of none: the medians' noise on a busy machine, no more.
HOMES_GOAL_SECONDS = 0.1
BENCH_PREFIX = "bench-noop-"  # the names of the homes this benchmark makes, and removes


def on_hub(script):
    """Run ``script`` as root in the lab hub's container; its output."""
    return lab.docker("exec", f"{lab.CONTAINER_PREFIX}hub", "bash", "-c", script, timeout=900)


def hub_settings(info):
    """The settings `fab` runs with on this lab (the environment wins over the lab's)."""
    return SimpleNamespace(**settings.defaults({**info.env, **os.environ})["hubswarm"])


def count_homes(config):
    """Homes in the homes folder, as `hubswarm-home sync` finds them."""
    return int(on_hub(f"shopt -s nullglob; set -- {shlex.quote(config.homes_path)}/*/; echo $#"))


def make_homes(config, count):
    """Make ``count`` homes on the lab hub as first spawns do (starter notebooks included)."""
    names = [f"{BENCH_PREFIX}{number:03d}" for number in range(1, count + 1)]
    on_hub("set -e\n" + "\n".join(f"{storage.home_tool(config, 'ensure', name)} >/dev/null" for name in names))


def remove_homes(config):
    """Remove the benchmark's homes, and their ids (under the lock `hubswarm-home` writes them with)."""
    on_hub(
        f"set -e; cd {shlex.quote(config.homes_path)}; rm -rf -- {BENCH_PREFIX}*; "
        f"exec 9>>.hubswarm-uids.lock; flock 9; if [ -f .hubswarm-uids ]; then "
        f"sed -i '/^{BENCH_PREFIX}[0-9]* /d' .hubswarm-uids; fi"
    )


def noop_runs(hub_ip, runs):
    """(median seconds, last run) of ``runs`` no-op setup-hub runs; exits when one changed anything."""
    timed = [timed_fab("-H", hub_ip, "setup-hub") for _ in range(runs)]
    changed = [run.changed() for _, run in timed if run.changed()]
    if changed:
        sys.exit(f"not a no-op: {changed}")
    return statistics.median(seconds for seconds, _ in timed), timed[-1][1]


def show(label, seconds):
    print(f"{label:<42} {seconds:8.2f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--homes", type=int, default=200)
    args = parser.parse_args()
    info = lab.ensure_lab(workers=2)
    config = hub_settings(info)
    timed_fab("-H", info.hub_ip, "setup-hub")  # converge (a hub from before the notebooks' stamp gets it)
    remove_homes(config)  # what an interrupted run of this benchmark left
    start_up = statistics.median(timed_fab("--list")[0] for _ in range(args.runs))
    own = count_homes(config)
    bare, run = noop_runs(info.hub_ip, args.runs)
    try:
        make_homes(config, args.homes)
        homes = count_homes(config)
        with_homes, _ = noop_runs(info.hub_ip, args.runs)
    finally:
        remove_homes(config)
    show("local start-up (fab --list, median)", start_up)
    show(f"beyond start-up, {own} home(s) (median)", bare - start_up)
    show(f"beyond start-up, {homes} home(s) (median)", with_homes - start_up)
    connections, commands = ssh_counts(run)
    steps = len(HUB_SETUP)
    results = [
        report(f"no-op setup-hub, {own} home(s) (median)", bare, GOAL_SECONDS),
        report(f"no-op setup-hub, {homes} home(s) (median)", with_homes, GOAL_SECONDS),
        report(f"what {homes - own} more homes cost", with_homes - bare, HOMES_GOAL_SECONDS),
        report("SSH connections opened", connections, 1, "conn"),
        report(f"remote commands ({steps} steps)", commands, steps, "commands"),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
