"""What the benchmarks share: running fab in the project and reading its recap."""

import re
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests" / "lab")]

from fabrun import fab  # noqa: E402
from student import Student  # noqa: E402, F401  (for the benchmarks that play a student)


def timed_fab(*args, env=None):
    """(seconds, FabRun) of one ``fab`` run; exits when it fails."""
    start = time.monotonic()
    run = fab(*args, env=env)
    seconds = time.monotonic() - start
    if run.code != 0:
        sys.exit(f"fab {' '.join(args)} failed:\n{run.output[-3000:]}")
    return seconds, run


def ssh_counts(run):
    """(connections, remote commands) from the recap's last line."""
    match = re.search(r"ssh: (\d+) connection\(s\), (\d+) remote command\(s\)", run.output)
    return int(match.group(1)), int(match.group(2))


def report(label, value, goal, unit="s"):
    verdict = "ok" if value <= goal else "OVER GOAL"
    print(f"{label:<42} {value:8.2f} {unit:<9} (goal <= {goal}: {verdict})", flush=True)
    return value <= goal
