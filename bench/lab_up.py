"""Wall time of bringing the lab up (hub + 2 workers): `python bench/lab_up.py [--skip-cold]`.

Measures, in this order, and leaves the lab up:
- from nothing: no lab, no lab images (debootstrap + image build + boot), goal < 3 min;
- from a cached image: no lab, images cached, goal < 30 s;
- already up: the common path every later test pays, goal < 5 s.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks import lab  # noqa: E402


def timed_up():
    start = time.monotonic()
    lab.ensure_lab(workers=2)
    return time.monotonic() - start


def report(label, seconds, goal):
    verdict = "ok" if seconds < goal else "OVER GOAL"
    print(f"lab.up {label:<20} {seconds:6.1f} s  (goal < {goal} s: {verdict})", flush=True)
    return seconds < goal


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="skip the from-nothing measurement")
    args = parser.parse_args()
    results = []
    if not args.skip_cold:
        lab.destroy(images=True)
        results.append(report("from nothing", timed_up(), 180))
    lab.destroy()
    results.append(report("from cached image", timed_up(), 30))
    results.append(report("already up", timed_up(), 5))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
