"""A class arriving at once: `python bench/load.py [--users 20] [--timeout 600] [--flood]`.

N users (at most 100) of the lab's hub start together: each logs in through
nginx, starts a server and follows the hub's progress events (as the spawn page
does), opens JupyterLab, runs `print(6*7)` in a kernel over its websocket, then
stops the server. Meanwhile a probe GETs the hub's login page every 0.25 s, as a
new visitor would. Reports how many users got through, the failures by reason,
when users reached each stage (the cell's answer is the time to a running cell),
and /hub/login's latency during the storm and just before it. Results also go to
artifacts/load-N.json.

Lab only: the hub is the lab's (tasks.lab.ensure_lab) and every fab run carries
the lab's settings, whose subnet guard stops a run aimed at any other host. The
lab is deployed with N extra users (load001@lab.example...) and notebook sizes
that fit N on this machine (--mem-guarantee, --mem-limit), then given back its
own userlist and settings, whatever happens (the hub's restarts lose nobody;
users taken off the list lose their servers, never their homes). The storm ends
by --timeout even when users hang, and the servers it started are stopped.

With --flood, one more user's notebook opens connections to the hub's API as fast as it can
(FLOOD_THREADS at once) from before the login probe starts until the storm ends, as a student's
runaway loop would: the notebook fence lets 20 a second through, so the class should not notice.
Results then go to artifacts/load-N-flood.json, with how many of its connections the hub took.
"""

import argparse
import ast
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from common import PROJECT, Student, fab, timed_fab
from load_stats import reason, summary
from tasks import lab
from tasks.settings.kinds import memory_bytes

WORKERS = 2
MAX_USERS = 100
MAX_TIMEOUT = 1800
EMAIL_DOMAIN = "lab.example"
# Named so that an operator's .env cannot change what is measured. The spawn limit fits
# the lab: its workers share this machine's CPUs, and notebooks that start all at once
# each get too little of them to answer within the hub's timeouts.
SPAWN_LIMIT = 20
ACTIVE_SERVER_LIMIT = "0"
# Every wait has its bound; the storm's --timeout bounds them all.
BARRIER_SECONDS = 60
ROUTE_SECONDS = 60  # from the hub's "ready" to the server answering through the proxy
HTTP_SECONDS = 60
CELL_SECONDS = 60
STOP_SECONDS = 120
PROBE_SECONDS = 0.25
PROBE_TIMEOUT = 10
BASELINE_SECONDS = 5
PROGRESS_SECONDS = 30
# Where a user got to, in order: seconds since the storm began.
MARKS = ["logged in", "server ready", "JupyterLab open", "cell answered", "server stopped"]
CELL = "cell answered"
FLOODER = "flood001"
FLOOD_THREADS = 4
HUB_API_PORT = 8081
# Run in the flooding notebook's kernel: threads that open and close connections to the hub's
# API until the given time, and the tally of what each attempt met.
FLOOD = """
import socket, threading, time
tally = {{"open": 0, "refused": 0}}
def flood(until):
    while time.monotonic() < until:
        try:
            socket.create_connection(({hub!r}, {port}), timeout=2).close()
            tally["open"] += 1
        except OSError:
            tally["refused"] += 1
for _ in range({threads}):
    threading.Thread(target=flood, args=(time.monotonic() + {seconds},), daemon=True).start()
"""


class Failed(Exception):
    """A step answered, but not as a user needs."""


class Player(threading.Thread):
    """One user of the storm. A daemon thread, so that one that hangs cannot keep the
    benchmark from ending; the main thread reads ``stage``, ``reached`` and ``error``."""

    def __init__(self, hub_ip, name, password, barrier, stopping):
        super().__init__(name=name, daemon=True)
        self.hub_ip, self.password, self.barrier, self.stopping = hub_ip, password, barrier, stopping
        self.stage, self.reached, self.error = "wait for the others", {}, None
        self.student, self.stopped, self.started, self.throttled = None, False, None, 0

    def mark(self, what):
        self.reached[what] = time.monotonic() - self.started

    def run(self):
        try:
            self.barrier.wait(BARRIER_SECONDS)
            self.started = time.monotonic()
            self.stage = "log in"
            # Kept before the check below: whoever has a Student may have a server to stop.
            self.student = Student(self.hub_ip, self.name, self.password)
            self.mark("logged in")
            if self.stopping.is_set():
                raise Failed("the storm ended before this user asked for a server")
            self.stage = "spawn"
            # As a student shown "Try again in N seconds" does: comes back when the hub said.
            while (wait := self.student.ask_for_server()) is not None:
                self.throttled += 1
                if self.stopping.wait(wait):
                    raise Failed("the storm ended while the hub had this user wait for a spawn slot")
            outcome = self.student.follow_spawn()
            if not outcome.get("ready"):
                raise Failed(f"the hub says the spawn failed: {outcome.get('message', '')}")
            self.student.wait_for_server(ROUTE_SECONDS)
            self.mark("server ready")
            self.stage = "open JupyterLab"
            # With the login cookie, as a browser: through the server's OAuth with the hub.
            page = self.student.session.get(
                f"{self.student.hub}/user/{self.name}/lab", verify=False, timeout=HTTP_SECONDS
            )
            if page.status_code != 200 or "JupyterLab" not in page.text:
                raise Failed(f"GET /user/{self.name}/lab: {page.status_code}, not JupyterLab")
            self.mark("JupyterLab open")
            self.stage = "run a cell"
            printed = self.student.execute(self.student.start_kernel(), "print(6*7)", seconds=CELL_SECONDS)
            if printed != "42":
                raise Failed(f"the cell printed {printed!r}")
            self.mark(CELL)
            self.stage = "stop"
            self.stop()
            self.mark("server stopped")
            self.stage = "done"
        except Exception as error:  # noqa: BLE001 - every failure is a result, counted by its reason
            self.error = f"{self.stage}: {type(error).__name__}: {error}"

    def stop(self):
        """Stop the user's server (a pending spawn too) and wait until the hub shows none."""
        self.student.stop_server(STOP_SECONDS)
        self.stopped = True

    def outcome(self, timeout):
        """This user's result now: {name, ok, reached, reason}."""
        done = self.stage == "done"
        error = self.error
        if not done and error is None:
            error = f"unfinished after {timeout} s, at: {self.stage}"
        return {
            "name": self.name,
            "ok": done,
            "reached": dict(self.reached),
            "throttled": self.throttled,
            "reason": None if done else reason(error, self.name),
        }


class LoginProbe(threading.Thread):
    """GETs the hub's login page every PROBE_SECONDS (a new connection each time, as a new
    visitor) until stopped: the seconds of each 200 answer, and how many were anything else."""

    def __init__(self, hub_ip):
        super().__init__(daemon=True)
        self.url, self.seconds, self.errors, self.stopping = f"https://{hub_ip}/hub/login", [], 0, threading.Event()

    def run(self):
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                ok = requests.get(self.url, timeout=PROBE_TIMEOUT, verify=False).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                self.seconds.append(time.monotonic() - began)
            else:
                self.errors += 1
            self.stopping.wait(max(0.0, began + PROBE_SECONDS - time.monotonic()))

    def finish(self):
        """Stop probing; the latency summary and the error count."""
        self.stopping.set()
        self.join(PROBE_TIMEOUT + 5)
        return {**summary(self.seconds), "errors": self.errors}


class Flooder:
    """The notebook of :data:`FLOODER`, flooding the hub's API from its kernel."""

    def __init__(self, hub_ip, password, seconds):
        self.student = Student(hub_ip, FLOODER, password)
        self.student.start_server()
        self.kernel = self.student.start_kernel()
        code = FLOOD.format(hub=hub_ip, port=HUB_API_PORT, threads=FLOOD_THREADS, seconds=seconds)
        self.student.execute(self.kernel, code)

    def finish(self):
        """Stop the server (and so the flood): {"open": N, "refused": M} of its connections."""
        tally = ast.literal_eval(self.student.execute(self.kernel, "print(tally)"))
        self.student.stop_server(STOP_SECONDS)
        return tally


def bounded(low, high):
    """An argparse type: an integer from low to high."""

    def parse(text):
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not within {low}..{high}")
        return value

    return parse


def memory_size(text):
    """An argparse type: a memory size as the settings write it (256M, 1G)."""
    if not memory_bytes(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size such as 256M or 1G")
    return text


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=bounded(1, MAX_USERS), default=20, help=f"at most {MAX_USERS}")
    parser.add_argument(
        "--timeout",
        type=bounded(1, MAX_TIMEOUT),
        default=600,
        help=f"seconds for the whole storm, at most {MAX_TIMEOUT}",
    )
    parser.add_argument(
        "--spawn-limit",
        type=bounded(0, MAX_USERS),
        default=SPAWN_LIMIT,
        help="HUBSWARM_CONCURRENT_SPAWN_LIMIT for the run (0: none); users over it wait as the hub asks",
    )
    parser.add_argument("--mem-guarantee", type=memory_size, default="256M", help="HUBSWARM_MEM_GUARANTEE for the run")
    parser.add_argument("--mem-limit", type=memory_size, default="1G", help="HUBSWARM_MEM_LIMIT for the run")
    parser.add_argument(
        "--flood", action="store_true", help="one more notebook floods the hub's API throughout (see above)"
    )
    return parser.parse_args()


def room(args):
    """What the notebooks have: each lab worker reports this whole machine to swarm, which
    places a notebook where its memory guarantee still fits."""
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    per_worker = int(machine // memory_bytes(args.mem_guarantee))
    return {
        "machine_cpus": os.cpu_count(),
        "machine_memory_gib": round(machine / 1024**3, 1),
        "notebooks_swarm_places": per_worker * WORKERS,
    }


def storm(info, names, timeout):
    """Run the storm; (outcomes, /hub/login during it, before it, servers left running)."""
    baseline = LoginProbe(info.hub_ip)
    baseline.start()
    time.sleep(BASELINE_SECONDS)
    before = baseline.finish()
    password = info.env["HUBSWARM_HUB_PASSWORD"]
    barrier, stopping = threading.Barrier(len(names) + 1), threading.Event()
    players = [Player(info.hub_ip, name, password, barrier, stopping) for name in names]
    for player in players:
        player.start()
    probe = LoginProbe(info.hub_ip)
    probe.start()
    try:
        barrier.wait(BARRIER_SECONDS)
        start = time.monotonic()
        deadline, next_report = start + timeout, start + PROGRESS_SECONDS
        while any(p.is_alive() for p in players) and (now := time.monotonic()) < deadline:
            if now >= next_report:
                print(f"  {progress(players, now - start)}", flush=True)
                next_report += PROGRESS_SECONDS
            time.sleep(1)
        print(f"storm over after {time.monotonic() - start:.0f} s: {progress(players)}", flush=True)
    finally:
        # A player past log in that sees this asks for no server; the outcomes are the
        # deadline's, whatever the unfinished do next.
        stopping.set()
        outcomes = [player.outcome(timeout) for player in players]
        during = probe.finish()
        left = stop_servers(players)
    return outcomes, during, before, left


def progress(players, elapsed=None):
    """How many users reached the cell, failed, or are still on their way."""
    cells = sum(CELL in p.reached for p in players)
    failed = sum(p.error is not None for p in players)
    running = sum(p.is_alive() for p in players)
    at = f"{elapsed:.0f} s: " if elapsed is not None else ""
    return f"{at}{cells} cells answered, {failed} failed, {running} on their way"


def stop_servers(players):
    """Stop, all at once, every server a player may still have; the names of those still
    shown after STOP_SECONDS (the userlist restore then removes them)."""
    pending = [p for p in players if p.student is not None and not p.stopped]

    def stop(player):
        try:
            player.stop()
        except Exception:  # noqa: BLE001 - whoever is not stopped is named below
            pass

    stoppers = [threading.Thread(target=stop, args=(player,), daemon=True) for player in pending]
    for stopper in stoppers:
        stopper.start()
    deadline = time.monotonic() + STOP_SECONDS + HTTP_SECONDS
    for stopper in stoppers:
        stopper.join(max(0.0, deadline - time.monotonic()))
    return [p.name for p in pending if not p.stopped]


def seconds(value):
    return "-" if value is None else f"{value:.2f}"


def print_results(results):
    outcomes, n = results["users"], results["settings"]["users"]
    print(f"\nsucceeded: {sum(o['ok'] for o in outcomes)}/{n}")
    for why, count in results["failures"].items():
        print(f"  failed x{count}: {why}")
    print(f"\n{'reached (s since start)':<26} {'users':>5} {'p50':>8} {'p95':>8} {'max':>8}")
    for what, stats in results["reached"].items():
        label = "cell answered (running)" if what == CELL else what
        print(
            f"{label:<26} {stats['count']:>5} {seconds(stats['p50']):>8} {seconds(stats['p95']):>8} {seconds(stats['max']):>8}"
        )
    for label, stats in (("during the storm", results["login_during"]), ("just before", results["login_before"])):
        print(
            f"/hub/login {label:<16} p50 {seconds(stats['p50'])} s, p95 {seconds(stats['p95'])} s, "
            f"max {seconds(stats['max'])} s ({stats['count']} answers, {stats['errors']} errors)"
        )
    throttled = [o["throttled"] for o in outcomes if o["throttled"]]
    print(f"asked by the hub to come back later (429): {len(throttled)} users, {sum(throttled)} times")
    if results["flood"]:
        tally = results["flood"]
        print(
            f"the flooding notebook's connections to the hub's API: {tally['open']} taken, {tally['refused']} refused"
        )
    left = results["servers_left"]
    print("servers left running: " + (", ".join(left) + " (the userlist restore stops them)" if left else "none"))


def restore(info):
    """Give the lab back its own userlist and settings; whether that worked (said loudly if not)."""
    print("restoring the lab's own userlist and settings (fab setup-hub start-hub)", flush=True)
    try:
        run = fab("setup-hub", "start-hub", env=info.env)
        failure = run.output[-3000:] if run.code != 0 else None
    except subprocess.TimeoutExpired as error:  # fab's own bound; the load users must still be named
        failure = str(error)
    if failure is not None:
        print(failure, file=sys.stderr)
        print("RESTORE FAILED: the hub may still have the load users; run `fab setup-hub start-hub`", file=sys.stderr)
        return False
    print("lab restored: its own userlist and settings", flush=True)
    return True


def main():
    args = arguments()
    info = lab.ensure_lab(workers=WORKERS)
    # The lab's own address, never another hub's.
    if ipaddress.ip_address(info.hub_ip) not in ipaddress.ip_network(lab.SUBNET):
        sys.exit(f"{info.hub_ip} is not a lab host ({lab.SUBNET})")
    names = [f"load{number:03d}" for number in range(1, args.users + 1)]
    settings = {
        "HUBSWARM_MEM_GUARANTEE": args.mem_guarantee,
        "HUBSWARM_MEM_LIMIT": args.mem_limit,
        "HUBSWARM_CONCURRENT_SPAWN_LIMIT": str(args.spawn_limit),
        "HUBSWARM_ACTIVE_SERVER_LIMIT": ACTIVE_SERVER_LIMIT,
    }
    fits = room(args)
    print(
        f"load: {args.users} users on the lab hub {info.hub_ip} ({WORKERS} workers), storm bounded to {args.timeout} s"
    )
    print("settings for the run: " + " ".join(f"{key}={value}" for key, value in settings.items()))
    print(
        f"room: this machine has {fits['machine_cpus']} CPUs and {fits['machine_memory_gib']} GiB, shared by every "
        f"lab host; each worker reports all of it, so swarm places {fits['notebooks_swarm_places']} notebooks "
        f"of {args.mem_guarantee}",
        flush=True,
    )
    if args.users > fits["notebooks_swarm_places"]:
        print("warning: more users than room: expect spawns that fail for want of a node", flush=True)
    lab_userlist = Path(info.env["HUBSWARM_USERLIST"]).read_text()
    restored = False
    with tempfile.TemporaryDirectory() as folder:
        userlist = Path(folder) / "userlist"
        listed = [*names, FLOODER] if args.flood else names
        userlist.write_text(lab_userlist.rstrip("\n") + "\n" + "".join(f"{n}@{EMAIL_DOMAIN}\n" for n in listed))
        try:
            # The lab's settings explicitly, so that no setting in this shell can aim the run elsewhere.
            deploy_seconds, _ = timed_fab("deploy", env={**info.env, **settings, "HUBSWARM_USERLIST": str(userlist)})
            print(f"deployed with the load users and settings in {deploy_seconds:.0f} s; storm begins", flush=True)
            password = info.env["HUBSWARM_HUB_PASSWORD"]
            flooder = Flooder(info.hub_ip, password, BASELINE_SECONDS + args.timeout) if args.flood else None
            outcomes, during, before, left = storm(info, names, args.timeout)
            flood = flooder.finish() if flooder else None
            results = {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "settings": {"users": args.users, "timeout": args.timeout, "workers": WORKERS, **settings, **fits},
                "failures": dict(Counter(o["reason"] for o in outcomes if not o["ok"]).most_common()),
                "reached": {
                    what: summary(o["reached"][what] for o in outcomes if what in o["reached"]) for what in MARKS
                },
                "login_during": during,
                "login_before": before,
                "servers_left": left,
                "flood": flood,
                "users": outcomes,
            }
            print_results(results)
            artifact = PROJECT / "artifacts" / f"load-{args.users}{'-flood' if args.flood else ''}.json"
            artifact.parent.mkdir(exist_ok=True)
            artifact.write_text(json.dumps(results, indent=1) + "\n")
            print(f"results: {artifact.relative_to(PROJECT)}")
        finally:
            restored = restore(info)
    return 0 if restored and all(o["ok"] for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
