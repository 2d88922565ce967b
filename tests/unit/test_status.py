"""fab status: raw probe answers in, table rows and problems out.

A healthy cluster's answers (as bash would print them on the hub), then one
change at a time and the problem it must raise; the task on a fake hub (one
probe batch, nothing else run, exit 1 with one line when unhealthy); and the
whole probe batch in real bash with stub commands, the proxy's token reaching
curl on stdin only.
"""

import json
import shlex
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from invoke.exceptions import Exit

from fakehost import hub_config, invocation, manager_info, parsed, unit_info
from tasks.cli import inventory
from tasks.cluster import swarm_model
from tasks.core.errors import HubswarmError, Unreachable
from tasks.core.host import Host
from tasks.core.recap import Recap
from tasks.core.run import Run
from tasks.ops import status

URL = "https://hub.example.com/"
NOW = 1767225600  # 2026-01-01 00:00:00 UTC, by the hub's clock
SELF_SIGNED = "/srv/jupyterhub/ssl/hub.crt"
LETSENCRYPT = "/etc/letsencrypt/live/hub.example.com/fullchain.pem"
NOTEBOOKS = {"hubswarm.notebooks": "true"}
GIB = 1 << 30
NODE_MEMORY = 4_080_218_112  # 3.8 GiB: about what a 4 GiB instance reports
NO_ROOM = "no suitable node (insufficient resources on 2 nodes)"


def compact(*fields):
    """One answer line as docker's ``{{json ...}}`` template prints it."""
    return json.dumps(list(fields), separators=(",", ":")) + "\n"


def node(
    id_,
    hostname,
    role,
    state="ready",
    availability="active",
    address="10.0.0.5",
    labels=None,
    memory=NODE_MEMORY,
    cpus=2,
    manager=None,
):
    """A swarm-nodes answer line; ``manager``: its manager status (fakehost.manager_info)."""
    return compact(
        id_, hostname, role, state, availability, address, labels, memory, int(cpus * 1e9), manager_info(role, manager)
    )


def reserving(memory=0, cpus=0):
    """A task's ``.Spec.Resources`` as docker prints it: the 2G limit, and the reservations
    (a 0 left out, as Docker's JSON does; no Reservations at all when both are 0)."""
    reserved = {key: value for key, value in (("NanoCPUs", int(cpus * 1e9)), ("MemoryBytes", memory)) if value}
    return {"Limits": {"MemoryBytes": 2 * GIB}, **({"Reservations": reserved} if reserved else {})}


DEFAULT_RESERVED = reserving(GIB)  # the default memory guarantee: half the 2G limit


def notebook_task(
    service,
    node_id,
    state="running",
    since="2025-12-31T21:55:00.123456789Z",
    port=30001,
    err="",
    resources=DEFAULT_RESERVED,
):
    """A notebook-tasks answer line."""
    ports = [{"Protocol": "tcp", "TargetPort": 8888, "PublishedPort": port, "PublishMode": "host"}] if port else None
    return compact(service, node_id, state, since, ports, err, resources)


def routes(**targets):
    """A proxy API answer: the hub's route, and ``user=target`` routes."""
    found = {"/": {"hub": True, "target": "http://10.0.0.5:8081", "jupyterhub": True}}
    for user, target in targets.items():
        found[f"/user/{user}/"] = {"user": user, "server_name": "", "target": target, "jupyterhub": True}
    return json.dumps(found)


# The hub and both workers managers, as join-workers keeps them.
NODES = (
    node("n-hub", "hub", "manager", manager="leader")
    + node("n-w1", "worker1", "manager", address="10.0.0.6", labels=NOTEBOOKS)
    + node("n-w2", "worker2", "manager", address="10.0.0.7", labels=NOTEBOOKS)
)
# worker2 drained and down: the hub, the one worker left ready, and the hub the only manager.
ONE_DRAINED = (
    node("n-hub", "hub", "manager", manager="leader")
    + node("n-w1", "worker1", "worker", address="10.0.0.6", labels=NOTEBOOKS)
    + node("n-w2", "worker2", "worker", "down", "drain", address="10.0.0.7", labels=NOTEBOOKS)
)
BACKUP = "hubswarm-hubswarm-{}.tar.gz"
HEALTHY = {
    "unit:jupyterhub": unit_info("enabled", "active"),
    "unit:jupyterhub-proxy": unit_info("enabled", "active"),
    "unit:nginx": unit_info("enabled", "active"),
    "unit:docker": unit_info("enabled", "active"),
    "jupyterhub-version:/opt/jupyterhub": "5.2.1\n",
    "letsencrypt:hub.example.com": None,
    f"cert-end:{SELF_SIGNED}": "notAfter=Dec 31 00:00:00 2026 GMT\n",
    f"cert-end:{LETSENCRYPT}": (1, ""),
    "clock": f"{NOW}\n",
    swarm_model.NODES.key: NODES,
    swarm_model.NOTEBOOK_SERVICES.key: '["s-alice","alice"]\n["s-bob","bob"]\n',
    swarm_model.NOTEBOOK_TASKS.key: notebook_task("s-alice", "n-w1")
    + notebook_task("s-bob", "n-w2", since="2025-12-31T23:50:00Z", port=30002),
    "proxy-routes": routes(alice="http://10.0.0.6:30001", bob="http://10.0.0.7:30002"),
    "disk:/srv/jupyterhub": "4096 10485760 5242880\n",  # 40 GiB, half free
    "disk:/mnt/nfs/home": "1048576 102400 51200\n",  # 100 GiB, half free
    "disk:/var/lib/docker": "4096 5242880 2621440\n",  # 20 GiB, half free
    "addresses": "10.0.0.5\n",
    "unit:hubswarm-backup.timer": unit_info("enabled", "active"),
    "unit:hubswarm-backup.service": unit_info("static", "inactive"),
    # the hub's own backups: the newest taken 20 minutes ago
    "backups:/mnt/nfs/home/.hubswarm-backups": f"{NOW - 4800} 2048 {BACKUP.format('20251231T224000Z')}\n"
    f"{NOW - 1200} 2048 {BACKUP.format('20251231T234000Z')}\n.partial.x\n",
}

NO_MORE = "no room for another notebook: add a worker or lower HUBSWARM_MEM_GUARANTEE / HUBSWARM_CPU_GUARANTEE"
FULL = f"room notebooks: {NO_MORE}"
WITH_CAROL = HEALTHY[swarm_model.NOTEBOOK_SERVICES.key] + '["s-carol","carol"]\n'


def pending(err=""):
    """HEALTHY's tasks and carol's, which swarm has placed on no node yet."""
    carol = notebook_task("s-carol", "", state="pending", since="2025-12-31T23:59:50Z", port=None, err=err)
    return HEALTHY[swarm_model.NOTEBOOK_TASKS.key] + carol


HEALTHY_TABLE = """\
WHAT      NAME                      STATE     DETAIL                                                                                                   PROBLEM
hub       https://hub.example.com/  5.2.1     JupyterHub in /opt/jupyterhub
service   jupyterhub                active    enabled
service   jupyterhub-proxy          active    enabled
service   nginx                     active    enabled
service   docker                    active    enabled
cert      self-signed               valid     364 days left (to 2026-12-31), /srv/jupyterhub/ssl/hub.crt
node      hub                       ready     manager, active, 10.0.0.5, no notebooks label, 0 notebooks, 0.0 of 3.8 GiB and 0 of 2 CPUs reserved
node      worker1                   ready     manager, active, 10.0.0.6, hubswarm.notebooks=true, 1 notebook, 1.0 of 3.8 GiB and 0 of 2 CPUs reserved
node      worker2                   ready     manager, active, 10.0.0.7, hubswarm.notebooks=true, 1 notebook, 1.0 of 3.8 GiB and 0 of 2 CPUs reserved
room      notebooks                 4 more    4 more notebooks of 1.0 GiB guaranteed fit on 2 nodes taking notebooks
swarm     managers                  3 up      managers 3 (hub, worker1, worker2), quorum 2, tolerates 1 lost
notebook  alice                     running   on worker1 (10.0.0.6:30001) for 2h 05m
notebook  bob                       running   on worker2 (10.0.0.7:30002) for 10m
routes    proxy API                 ok        2 user routes, 0 pointing nowhere
disk      /srv/jupyterhub           50% free  20.0 GiB free of 40.0 GiB
disk      /mnt/nfs/home             50% free  50.0 GiB free of 100.0 GiB
disk      /var/lib/docker           50% free  10.0 GiB free of 20.0 GiB
backup    shared storage            20m old   hubswarm-hubswarm-20251231T234000Z.tar.gz, 2 backups kept"""
# What `fab status` adds, read from the other nodes.
WORKER_DISKS = """
disk      worker1:/var/lib/docker   50% free  10.0 GiB free of 20.0 GiB
disk      worker2:/var/lib/docker   50% free  10.0 GiB free of 20.0 GiB"""


def assessed(make_host, changes=None, **config):
    """(rows, problems) for the HEALTHY answers with ``changes``, probed in one batch."""
    host, runner = make_host({**HEALTHY, **(changes or {})}, **config)
    rows = status.assess(host, URL)
    assert len(runner.probes) == 1
    return rows, status.problems(rows)


def row(rows, what, name):
    [found] = [r for r in rows if r.what == what and r.name == name]
    return found


def test_healthy_cluster(make_host):
    rows, problems = assessed(make_host)
    assert problems == []
    assert status.table(rows) == HEALTHY_TABLE


PROBLEM_CASES = [
    # id, answers changed, the problems
    (
        "proxy stopped",
        {"unit:jupyterhub-proxy": unit_info("enabled", "inactive")},
        ["service jupyterhub-proxy: not active"],
    ),
    ("hub failed", {"unit:jupyterhub": unit_info("enabled", "failed")}, ["service jupyterhub: not active"]),
    ("nginx not installed", {"unit:nginx": ""}, ["service nginx: not active"]),
    ("a disabled unit that runs is fine", {"unit:nginx": unit_info("disabled", "active")}, []),
    ("a new hub has taken no backup yet", {"backups:/mnt/nfs/home/.hubswarm-backups": ""}, []),
    (
        "a worker whose homes storage is missing",
        {
            swarm_model.NODES.key: node("n-hub", "hub", "manager", manager="leader")
            + node("n-w1", "worker1", "manager", address="10.0.0.6", labels={**NOTEBOOKS, "hubswarm.no-homes": "true"})
            + node("n-w2", "worker2", "manager", address="10.0.0.7", labels=NOTEBOOKS)
        },
        ["node worker1: its homes storage is missing: no new notebook here"],
    ),
    (
        "the hub's backups stopped",
        {"unit:hubswarm-backup.timer": unit_info("enabled", "inactive")},
        ["backup shared storage: hubswarm-backup.timer is not active: fab setup-hub"],
    ),
    (
        "the hub's last backup failed",
        {"unit:hubswarm-backup.service": unit_info("static", "failed")},
        ["backup shared storage: the last backup failed: journalctl -u hubswarm-backup.service"],
    ),
    (
        "the hub's newest backup is older than twice its interval",
        {"backups:/mnt/nfs/home/.hubswarm-backups": f"{NOW - 7201} 2048 {BACKUP.format('20251231T220000Z')}\n"},
        ["backup shared storage: older than twice HUBSWARM_BACKUP_EVERY (3600 s)"],
    ),
    (
        "docker down: no swarm answers",
        {
            "unit:docker": unit_info("enabled", "inactive"),
            swarm_model.NODES.key: None,
            swarm_model.NOTEBOOK_SERVICES.key: None,
            swarm_model.NOTEBOOK_TASKS.key: None,
        },
        [
            "service docker: not active",
            "swarm nodes: the hub manages no swarm",
            "route /user/alice/: points to no running notebook",
            "route /user/bob/: points to no running notebook",
        ],
    ),
    (
        "worker down, not drained",
        {
            swarm_model.NODES.key: node("n-hub", "hub", "manager", manager="leader")
            + node("n-w1", "worker1", "manager", address="10.0.0.6", labels=NOTEBOOKS)
            + node("n-w2", "worker2", "manager", "down", address="10.0.0.7", labels=NOTEBOOKS, manager="unreachable")
        },
        [
            "node worker2: not ready, not drained",
            "swarm managers: worker2 not answering: fab join-workers puts ready workers in their place",
            "route /user/bob/: points to no running notebook",
        ],
    ),
    (
        "worker down and drained",
        {
            swarm_model.NODES.key: ONE_DRAINED,
            swarm_model.NOTEBOOK_TASKS.key: notebook_task("s-alice", "n-w1"),
            "proxy-routes": routes(alice="http://10.0.0.6:30001"),
        },
        [],
    ),
    (
        "every worker has room for one more notebook",
        {swarm_model.NODES.key: NODES.replace(str(NODE_MEMORY), str(2 * GIB))},
        [],
    ),
    ("every worker's room taken", {swarm_model.NODES.key: NODES.replace(str(NODE_MEMORY), str(2 * GIB - 1))}, [FULL]),
    (
        "a notebook no node has room for",
        {swarm_model.NOTEBOOK_SERVICES.key: WITH_CAROL, swarm_model.NOTEBOOK_TASKS.key: pending(NO_ROOM)},
        [f"notebook carol: waiting: {NO_ROOM}"],
    ),
    (
        "a notebook swarm has yet to place",
        {swarm_model.NOTEBOOK_SERVICES.key: WITH_CAROL, swarm_model.NOTEBOOK_TASKS.key: pending()},
        [],
    ),
    (
        "route to a port nothing publishes",
        {"proxy-routes": routes(alice="http://10.0.0.6:30001", bob="http://10.0.0.7:30009")},
        ["route /user/bob/: points to no running notebook"],
    ),
    (
        "route to the right port on another node",
        {"proxy-routes": routes(alice="http://10.0.0.7:30001", bob="http://10.0.0.7:30002")},
        ["route /user/alice/: points to no running notebook"],
    ),
    (
        "route to a notebook swarm is still starting",
        {
            swarm_model.NOTEBOOK_TASKS.key: notebook_task("s-alice", "n-w1")
            + notebook_task("s-bob", "n-w2", state="starting", port=30002)
        },
        ["route /user/bob/: points to no running notebook"],
    ),
    (
        "route with no port",
        {"proxy-routes": routes(alice="http://10.0.0.6:30001", bob="http://10.0.0.7")},
        ["route /user/bob/: points to no running notebook"],
    ),
    ("the hub's own route is not checked", {"proxy-routes": routes().replace("10.0.0.5:8081", "10.9.9.9:1")}, []),
    (
        "proxy API does not answer",
        {"proxy-routes": (7, "")},
        ["routes proxy API: cannot read the proxy's routes"],
    ),
    ("proxy API answers no JSON", {"proxy-routes": "<html>"}, ["routes proxy API: cannot read the proxy's routes"]),
    (
        "certificate expires in 13 days",
        {f"cert-end:{SELF_SIGNED}": "notAfter=Jan 14 00:00:00 2026 GMT\n"},
        ["cert self-signed: expires within 14 days"],
    ),
    ("certificate expires in 14 days", {f"cert-end:{SELF_SIGNED}": "notAfter=Jan 15 00:00:00 2026 GMT\n"}, []),
    (
        "certificate expired",
        {f"cert-end:{SELF_SIGNED}": "notAfter=Dec  1 08:00:00 2025 GMT\n"},
        ["cert self-signed: expired"],
    ),
    ("no certificate", {f"cert-end:{SELF_SIGNED}": (1, "")}, ["cert self-signed: no readable certificate"]),
    ("state folder 9% free", {"disk:/srv/jupyterhub": "4096 1000 90\n"}, ["disk /srv/jupyterhub: less than 10% free"]),
    ("homes 10% free", {"disk:/mnt/nfs/home": "4096 1000 100\n"}, []),
    ("homes not there", {"disk:/mnt/nfs/home": (1, "")}, ["disk /mnt/nfs/home: cannot read its free space"]),
    (
        "no notebook at all",
        {swarm_model.NOTEBOOK_TASKS.key: "", swarm_model.NOTEBOOK_SERVICES.key: "", "proxy-routes": routes()},
        [],
    ),
    ("no venv: version unknown, the hub's unit says the rest", {"jupyterhub-version:/opt/jupyterhub": (127, "")}, []),
]


@pytest.mark.parametrize("changes, expected", [c[1:] for c in PROBLEM_CASES], ids=[c[0] for c in PROBLEM_CASES])
def test_problems(make_host, changes, expected):
    _, problems = assessed(make_host, changes)
    assert problems == expected


def test_rows_show_what_is_wrong(make_host):
    rows, _ = assessed(
        make_host,
        {
            "unit:jupyterhub-proxy": unit_info("enabled", "inactive"),
            swarm_model.NODES.key: ONE_DRAINED,
            "proxy-routes": routes(alice="http://10.0.0.6:30001", bob="http://10.0.0.7:30009"),
            f"cert-end:{SELF_SIGNED}": "notAfter=Jan 10 12:00:00 2026 GMT\n",
            "disk:/srv/jupyterhub": "4096 1000 55\n",
        },
    )
    assert row(rows, "service", "jupyterhub-proxy") == (
        "service",
        "jupyterhub-proxy",
        "inactive",
        "enabled",
        "not active",
    )
    assert row(rows, "node", "worker2")[2:] == (
        "down",
        "worker, drain, 10.0.0.7, hubswarm.notebooks=true, 1 notebook, 1.0 of 3.8 GiB and 0 of 2 CPUs reserved",
        "",
    )
    assert row(rows, "room", "notebooks")[2:] == (
        "2 more",
        "2 more notebooks of 1.0 GiB guaranteed fit on 1 node taking notebooks",
        "",
    )
    assert row(rows, "routes", "proxy API")[2:4] == ("1 nowhere", "2 user routes, 1 pointing nowhere")
    assert row(rows, "route", "/user/bob/")[2:] == ("nowhere", "http://10.0.0.7:30009", "points to no running notebook")
    assert row(rows, "cert", "self-signed")[2:4] == ("expiring", f"9 days left (to 2026-01-10), {SELF_SIGNED}")
    assert row(rows, "disk", "/srv/jupyterhub")[2:] == ("5% free", "0.0 GiB free of 0.0 GiB", "less than 10% free")


def test_nodes_show_what_notebooks_reserve_old_ones_nothing(make_host):
    rows, problems = assessed(
        make_host,
        {
            swarm_model.NOTEBOOK_SERVICES.key: WITH_CAROL + '["s-dave","dave"]\n',
            swarm_model.NOTEBOOK_TASKS.key: notebook_task("s-alice", "n-w1", resources=reserving(GIB, 0.5))
            + notebook_task("s-dave", "n-w1", state="starting", port=30004, resources=reserving(GIB, 0.5))
            # made before guarantees: no Reservations, or no Resources at all
            + notebook_task("s-bob", "n-w2", port=30002, resources=reserving())
            + notebook_task("s-carol", "n-w2", port=30003, resources=None),
        },
        cpu_guarantee="0.5",
    )
    assert problems == []
    assert [r[1:4] for r in rows if r.what in ("node", "room")] == [
        (
            "hub",
            "ready",
            "manager, active, 10.0.0.5, no notebooks label, 0 notebooks, 0.0 of 3.8 GiB and 0 of 2 CPUs reserved",
        ),
        (
            "worker1",
            "ready",
            "manager, active, 10.0.0.6, hubswarm.notebooks=true, 1 notebook, 2.0 of 3.8 GiB and 1 of 2 CPUs reserved",
        ),
        (
            "worker2",
            "ready",
            "manager, active, 10.0.0.7, hubswarm.notebooks=true, 2 notebooks, 0.0 of 3.8 GiB and 0 of 2 CPUs reserved",
        ),
        ("notebooks", "4 more", "4 more notebooks of 1.0 GiB and 0.5 CPUs guaranteed fit on 2 nodes taking notebooks"),
    ]


def managers_answer(*nodes):
    """A swarm-nodes answer: the hub (leading) and ``nodes`` (hostname, role, manager status),
    worker N at 10.0.0.1N."""
    lines = node("n-hub", "hub", "manager", manager="leader")
    for hostname, role, manager in nodes:
        state = "down" if manager == "unreachable" else "ready"
        lines += node(f"n-{hostname}", hostname, role, state, address=f"10.0.0.1{hostname[-1]}", manager=manager)
    return lines


MANAGER_ROWS = [
    # id, the nodes besides the hub, HUBSWARM_MANAGERS, the row's (state, detail, problem)
    ("the hub alone", [], "", ("1 up", "managers 1 (hub), quorum 1, tolerates 0 lost", "")),
    (
        "one worker: the hub alone, as kept",
        [("worker1", "worker", "")],
        "",
        ("1 up", "managers 1 (hub), quorum 1, tolerates 0 lost", ""),
    ),
    (
        "two workers not promoted",
        [("worker1", "worker", ""), ("worker2", "worker", "")],
        "",
        (
            "1 up",
            "managers 1 (hub), quorum 1, tolerates 0 lost",
            "not as kept: fab join-workers would promote worker1, worker2 to managers",
        ),
    ),
    (
        "5 managers",
        [(f"worker{n}", "manager", "reachable") for n in range(1, 5)],
        "hub,worker1,worker2,worker3,worker4",
        ("5 up", "managers 5 (hub, worker1, worker2, worker3, worker4), quorum 3, tolerates 2 lost", ""),
    ),
    (
        "one lost",
        [("worker1", "manager", "reachable"), ("worker2", "manager", "unreachable")],
        "",
        (
            "2 up",
            "managers 3 (hub, worker1, worker2), quorum 2, tolerates 0 more lost",
            "worker2 not answering: fab join-workers puts ready workers in their place",
        ),
    ),
    (
        "the quorum lost",
        [("worker1", "manager", "unreachable"), ("worker2", "manager", "unreachable")],
        "",
        (
            "1 up",
            "managers 3 (hub, worker1, worker2), quorum 2, tolerates 0 more lost",
            "no quorum: worker1, worker2 do not answer, and swarm changes nothing until they do",
        ),
    ),
    (
        "HUBSWARM_MANAGERS without the hub",
        [("worker1", "manager", "reachable"), ("worker2", "manager", "reachable")],
        "worker1,worker2,worker3",
        (
            "3 up",
            "managers 3 (hub, worker1, worker2), quorum 2, tolerates 1 lost",
            "HUBSWARM_MANAGERS does not name the hub (hub, 10.0.0.5), always a manager: name it and 2 or 4 workers",
        ),
    ),
]


@pytest.mark.parametrize("nodes, names, expected", [c[1:] for c in MANAGER_ROWS], ids=[c[0] for c in MANAGER_ROWS])
def test_the_managers_row(nodes, names, expected):
    found = parsed(swarm_model.NODES, managers_answer(*nodes))
    assert status.managers_row(found, "10.0.0.5", hub_config(managers=names)) == ("swarm", "managers", *expected)


def test_a_notebook_waiting_for_room_shows_why(make_host):
    rows, _ = assessed(
        make_host, {swarm_model.NOTEBOOK_SERVICES.key: WITH_CAROL, swarm_model.NOTEBOOK_TASKS.key: pending(NO_ROOM)}
    )
    assert row(rows, "notebook", "carol")[2:] == ("pending", f"on no node for 0m: {NO_ROOM}", f"waiting: {NO_ROOM}")


ROOM_ROWS = [
    # id, settings, the room row's (state, detail, problem)
    (
        "the default: half the 2G limit",
        {},
        ("4 more", "4 more notebooks of 1.0 GiB guaranteed fit on 2 nodes taking notebooks", ""),
    ),
    (
        "half a 4G limit",
        {"mem_limit": "4G"},
        ("2 more", "2 more notebooks of 2.0 GiB guaranteed fit on 2 nodes taking notebooks", ""),
    ),
    (
        "no guarantees",
        {"mem_guarantee": "0"},
        ("unlimited", "no guarantees set: swarm places notebooks without limit", ""),
    ),
    (
        "a CPU guarantee alone",
        {"mem_guarantee": "0", "cpu_guarantee": "1"},
        ("4 more", "4 more notebooks of 1 CPU guaranteed fit on 2 nodes taking notebooks", ""),
    ),
    (
        "both: the scarcer counts",
        {"mem_guarantee": "512M", "cpu_guarantee": "0.75"},
        ("4 more", "4 more notebooks of 0.5 GiB and 0.75 CPUs guaranteed fit on 2 nodes taking notebooks", ""),
    ),
    (
        "more than any worker has left",
        {"mem_guarantee": "3G"},
        ("0 more", "0 more notebooks of 3.0 GiB guaranteed fit on 2 nodes taking notebooks", NO_MORE),
    ),
]


@pytest.mark.parametrize("settings, expected", [c[1:] for c in ROOM_ROWS], ids=[c[0] for c in ROOM_ROWS])
def test_room_row_by_settings(make_host, settings, expected):
    rows, _ = assessed(make_host, **settings)
    assert row(rows, "room", "notebooks")[2:] == expected


def test_a_notebook_service_with_no_task_and_a_task_on_a_removed_node(make_host):
    rows, problems = assessed(
        make_host,
        {
            swarm_model.NOTEBOOK_SERVICES.key: '["s-alice","alice"]\n["s-bob","bob"]\n["s-carol","carol"]\n',
            swarm_model.NOTEBOOK_TASKS.key: notebook_task("s-alice", "n-w1")
            + notebook_task("s-bob", "n-gone", since="2025-12-29T20:00:00Z", state="preparing", port=None),
            "proxy-routes": routes(alice="http://10.0.0.6:30001"),
        },
    )
    assert problems == []
    assert [r[1:4] for r in rows if r.what == "notebook"] == [
        ("alice", "running", "on worker1 (10.0.0.6:30001) for 2h 05m"),
        ("bob", "preparing", "on no node for 2d 4h"),
        ("carol", "no task", "swarm runs none of its tasks"),
    ]


def test_letsencrypt_certificate_once_it_is_there(make_host):
    rows, problems = assessed(
        make_host,
        {"letsencrypt:hub.example.com": "", f"cert-end:{LETSENCRYPT}": "notAfter=Jan  5 10:00:00 2026 GMT\n"},
    )
    assert row(rows, "cert", "Let's Encrypt")[2:] == (
        "expiring",
        f"4 days left (to 2026-01-05), {LETSENCRYPT}",
        "expires within 14 days",
    )
    assert problems == ["cert Let's Encrypt: expires within 14 days"]


def test_without_a_domain_the_url_is_the_public_name_and_the_certificate_self_signed(status_on, capsys):
    runner, _, run = status_on(
        {"imds:public-hostname": "ec2-1-2-3-4.us-west-2.compute.amazonaws.com\n"}, domain="", single_origin=True
    )
    run()
    [keys] = runner.probes
    assert not any(k.startswith("letsencrypt:") or LETSENCRYPT in k for k in keys)
    shown = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()}
    assert shown["hub"] == ["https://ec2-1-2-3-4.us-west-2.compute.amazonaws.com/", "5.2.1"]
    assert shown["cert"] == ["self-signed", "valid"]


def test_every_value_reaching_the_shell_is_quoted():
    config = hub_config(srv="/srv/a b", venv="/opt/$(x)", homes_path="/mnt/it's")
    commands = {f.key: f.command for f in status.probes(SimpleNamespace(config=config))}
    assert commands["jupyterhub-version:/opt/$(x)"].startswith("'/opt/$(x)'/bin/python -c ")
    assert commands["disk:/mnt/it's"] == "stat -f -c '%S %b %a' -- '/mnt/it'\"'\"'s'"
    assert commands["proxy-routes"].startswith("( . '/srv/a b/proxy.env' && ")


# --- parsers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "out, rc, expected",
    [
        ("notAfter=Mar  9 07:05:01 2027 GMT\n", 0, "2027-03-09 07:05:01+00:00"),
        ("notAfter=Nov 30 23:59:59 2026 GMT\n", 0, "2026-11-30 23:59:59+00:00"),
        ("", 1, "None"),
        ("Could not read certificate", 1, "None"),
    ],
)
def test_cert_end(out, rc, expected):
    assert str(parsed(status.cert_end_fact("/x"), out, rc)) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-12-31T21:55:00.123456789Z", "2025-12-31 21:55:00+00:00"),
        ("2025-12-31T21:55:00Z", "2025-12-31 21:55:00+00:00"),
        ("2025-12-31T23:55:00.5+02:00", "2025-12-31 23:55:00+02:00"),
    ],
)
def test_docker_timestamps(value, expected):
    assert str(swarm_model.timestamp(value)) == expected


@pytest.mark.parametrize(
    "seconds, expected", [(-5, "0m"), (59, "0m"), (61, "1m"), (3600, "1h 00m"), (86399, "23h 59m"), (90000, "1d 1h")]
)
def test_age(seconds, expected):
    assert status.age(seconds) == expected


@pytest.mark.parametrize(
    "target, expected",
    [
        ("http://10.0.0.6:30001", ("10.0.0.6", 30001)),
        ("http://[fd00::6]:30001/", ("fd00::6", 30001)),
        ("http://10.0.0.6", None),
        ("http://10.0.0.6:99999", None),
        ("", None),
    ],
)
def test_points_at(target, expected):
    assert status.points_at(target) == expected


def test_nodes_with_no_labels_and_odd_host_names():
    nodes = parsed(
        swarm_model.NODES, node("n1", "a b", "worker") + node("n2", 'q"x', "worker", labels={"k": "v"}, cpus=0.5)
    )
    assert [(n.hostname, n.labels, n.capacity) for n in nodes] == [
        ("a b", {}, (NODE_MEMORY, 2_000_000_000)),
        ('q"x', {"k": "v"}, (NODE_MEMORY, 500_000_000)),
    ]


@pytest.mark.parametrize(
    "resources, expected",
    [
        (None, (0, 0)),  # a service made with no resources at all
        (reserving(), (0, 0)),  # a limit, no reservations: made before guarantees
        ({"Reservations": {}}, (0, 0)),
        (reserving(GIB), (GIB, 0)),
        (reserving(cpus=0.5), (0, 500_000_000)),
        (reserving(GIB, 1.5), (GIB, 1_500_000_000)),
    ],
)
def test_what_a_task_reserves(resources, expected):
    [task] = parsed(swarm_model.NOTEBOOK_TASKS, notebook_task("s", "n", resources=resources))
    assert task.reserved == expected


def test_a_pending_task_and_its_error():
    [task] = parsed(swarm_model.NOTEBOOK_TASKS, notebook_task("s", "", state="pending", port=None, err=NO_ROOM))
    assert (task.node, task.state, task.ports, task.error) == ("", "pending", (), NO_ROOM)


def worker(id_, state="ready", availability="active", labels=NOTEBOOKS):
    """A swarm-nodes answer line for a 4 GiB, 2 CPU worker."""
    return node(id_, id_, "worker", state, availability, labels=labels, memory=4 * GIB)


TWO_WORKERS = worker("w1") + worker("w2")
ROOM = [
    # id, nodes answer, tasks answer, each notebook's guarantee (memory, nano CPUs), the room
    ("no guarantee: no limit", TWO_WORKERS, notebook_task("s1", "w1"), (0, 0), None),
    ("empty workers", TWO_WORKERS, "", (GIB, 0), 8),
    ("memory left on each", TWO_WORKERS, notebook_task("s1", "w1"), (GIB, 0), 7),
    ("what is left over on each node does not add up", TWO_WORKERS, "", (3 * GIB // 2, 0), 4),  # pooled: 5
    (
        "CPUs left on each",
        TWO_WORKERS,
        notebook_task("s1", "w1", resources=reserving(cpus=0.5)),
        (0, 500_000_000),
        7,
    ),
    (
        "per node the scarcer of memory and CPUs",  # pooled: 4 by memory, 5 by CPUs
        TWO_WORKERS,
        notebook_task("s1", "w1", resources=reserving(3 * GIB))
        + notebook_task("s2", "w2", resources=reserving(GIB // 2, 1.5)),
        (GIB, 500_000_000),
        2,
    ),
    (
        "reserved past capacity leaves none, not less",
        TWO_WORKERS,
        notebook_task("s1", "w1", resources=reserving(5 * GIB)),
        (GIB, 0),
        4,
    ),
    (
        "only ready, active nodes labelled for notebooks",
        node("hub", "hub", "manager", memory=4 * GIB)
        + worker("down", state="down")
        + worker("drained", availability="drain")
        + worker("paused", availability="pause")
        + worker("unlabelled", labels=None)
        + worker("false", labels={"hubswarm.notebooks": "false"})
        + worker("w1")
        + worker("True", labels={"hubswarm.notebooks": "True"}),  # swarm's == ignores case
        "",
        (GIB, 0),
        8,
    ),
    ("no node takes notebooks", worker("drained", availability="drain"), "", (GIB, 0), 0),
    (
        "tasks count where swarm placed them, starting ones too, old ones as nothing",
        TWO_WORKERS,
        notebook_task("s1", "w1", state="starting")
        + notebook_task("s2", "w1", resources=None)
        + notebook_task("s3", "w1", resources=reserving())
        + notebook_task("s4", "", state="pending", err=NO_ROOM)
        + notebook_task("s5", "removed"),
        (GIB, 0),
        7,
    ),
]


@pytest.mark.parametrize("nodes, tasks, each, expected", [c[1:] for c in ROOM], ids=[c[0] for c in ROOM])
def test_room(nodes, tasks, each, expected):
    each = swarm_model.Resources(*each)
    assert status.room(parsed(swarm_model.NODES, nodes), parsed(swarm_model.NOTEBOOK_TASKS, tasks), each) == expected


# --- the task ------------------------------------------------------------------------------


@pytest.fixture
def status_on(make_host, monkeypatch):
    """Factory: the status task on a fake hub answering ``changes`` to HEALTHY; (its runner, run it)."""

    def make(changes=None, **config):
        host, runner = make_host({**HEALTHY, **(changes or {})}, **config)
        roles = []
        monkeypatch.setattr("tasks.cli.invocation.hosts_for", lambda c, role: roles.append(role) or [host])
        half = status.Disk(20 * 2**30, 10 * 2**30)
        monkeypatch.setattr(status, "node_disks", lambda run, hub, nodes: {"worker2": half, "worker1": half})
        monkeypatch.setattr(status, "efs_rows", lambda config: [])  # read from this machine: test_efs_backups
        return runner, roles, lambda: status.status.body(invocation(host.run))

    return make


def test_status_reads_everything_in_one_probe_and_changes_nothing(status_on, capsys):
    runner, roles, run = status_on()
    run()
    assert roles == [inventory.HUB]
    assert len(runner.probes) == 1 and runner.calls == []
    assert capsys.readouterr().out == HEALTHY_TABLE + WORKER_DISKS + "\n"


def test_status_unhealthy_prints_the_table_then_exits_1_with_one_line(status_on, capsys):
    runner, _, run = status_on(
        {"unit:jupyterhub-proxy": unit_info("enabled", "inactive"), "disk:/mnt/nfs/home": "4096 1000 10\n"}
    )
    with pytest.raises(Exit) as stopped:
        run()
    assert stopped.value.code == 1
    assert stopped.value.message == (
        "unhealthy (2): service jupyterhub-proxy: not active; disk /mnt/nfs/home: less than 10% free"
    )
    assert "jupyterhub-proxy          inactive" in capsys.readouterr().out
    assert len(runner.probes) == 1 and runner.calls == []


def test_status_when_the_hub_cannot_be_probed(monkeypatch):
    host = Host(SimpleNamespace(host="10.0.0.5", user="admin", port=22), "10.0.0.5", Run(config=hub_config()))
    host._exec = lambda command, stdin=None: (1, "", "sudo: a password is required\n")
    monkeypatch.setattr("tasks.cli.invocation.hosts_for", lambda c, role: [host])
    with pytest.raises(Exit, match="^10.0.0.5: sudo on 10.0.0.5 asks for a password"):
        status.status.body(invocation(host.run))


def test_status_when_the_hub_does_not_answer_says_what_brings_it_back(monkeypatch):
    host = Host(SimpleNamespace(host="10.0.0.5", user="admin", port=22), "10.0.0.5", Run(config=hub_config()))

    def lost(command, stdin=None):
        raise Unreachable("cannot reach 10.0.0.5:22 (No route to host): check the host is running and SSH is open")

    host._exec = lost
    monkeypatch.setattr("tasks.cli.invocation.hosts_for", lambda c, role: [host])
    with pytest.raises(Exit) as stopped:
        status.status.body(invocation(host.run))
    assert stopped.value.message == (
        "10.0.0.5: cannot reach 10.0.0.5:22 (No route to host): check the host is running and SSH is open; "
        "if its host is lost, bring a new one up at its private address and run fab -H NEW_HUB replace-hub "
        "(README: When the hub's host dies)"
    )


# --- the probe batch in real bash ---------------------------------------------------------------

TOKEN = "f00dfeedc0ffee0123456789abcdef0123456789abcdef0123456789abcdef00"

# Each stub logs its argv (one line per call) and answers as the hub would.
STUBS = {
    # systemctl shows each unit asked for (after "show -p A -p B"), a blank line between two.
    "systemctl": '[ "$1" = show ] && shift 5 && for unit; do printf "%bActiveState=active\\nUnitFileState=enabled\\n" '
    '"${between-}"; between="\\n"; done',
    "date": '[ "$*" = +%s ] && echo 1767225600',
    "openssl": 'case "$*" in *"$SRV/ssl/hub.crt") echo "notAfter=Dec 31 00:00:00 2026 GMT" ;; *) exit 1 ;; esac',
    "stat": 'case "$*" in "-f -c %S %b %a -- $SRV") echo 4096 10485760 5242880 ;; '
    '"-f -c %S %b %a -- $HOMES") echo 1048576 102400 51200 ;; '
    '"-f -c %S %b %a -- /var/lib/docker") echo 4096 5242880 2621440 ;; '
    '"-c %Y %s %n -- "*) [ "$PWD" = "$HOMES/.hubswarm-backups" ] && printf %s "$BACKUPS" ;; *) exit 1 ;; esac',
    "hostname": '[ "$*" = -I ] && echo 10.0.0.5',
    "docker": """case "$1 $2" in
  "node ls") printf '%s\\n' n-hub n-w1 n-w2 ;;
  "node inspect") [ "$5 $6 $7" = "n-hub n-w1 n-w2" ] && printf '%s' "$NODES" ;;
  "service ls") [ "$*" = "service ls -q --filter label=hubswarm.user" ] && printf '%s\\n' s-alice s-bob ;;
  "service inspect") [ "$5 $6" = "s-alice s-bob" ] && printf '%s' "$SERVICES" ;;
  "service ps") [ "$*" = "service ps -q --no-trunc --filter desired-state=running s-alice s-bob" ] && echo t1 t2 ;;
  "inspect --type") [ "$3 $4 $6 $7" = "task --format t1 t2" ] && printf '%s' "$TASKS" ;;
  *) exit 1 ;;
esac""",
    # curl reads its header from stdin (-H @-), as the real one does.
    "curl": """IFS= read -r header
[ "$header" = "Authorization: token $EXPECTED_TOKEN" ] || exit 22
[ "$*" = "-sf --max-time 5 -H @- http://127.0.0.1:8001/api/routes" ] || exit 3
printf '%s' "$ROUTES\"""",
}


def test_probe_batch_in_real_bash_with_stubbed_commands(tmp_path, make_host):
    bash = shutil.which("bash")
    stubs, log = tmp_path / "bin", tmp_path / "argv.log"
    srv, homes, venv = tmp_path / "srv", tmp_path / "homes", tmp_path / "venv"
    for folder in (stubs, srv, homes / ".hubswarm-backups", venv / "bin"):
        folder.mkdir(parents=True)
    (srv / "proxy.env").write_text(f"CONFIGPROXY_AUTH_TOKEN={TOKEN}\n")
    version = '[ "$1" = -c ] && echo 5.2.1'
    for path, body in [*((stubs / name, body) for name, body in STUBS.items()), (venv / "bin" / "python", version)]:
        path.write_text(f'#!{bash}\nprintf "%s %s\\n" "${{0##*/}}" "$*" >> "$LOG"\n{body}\n')
        path.chmod(0o755)
    for name in ("mktemp", "rm"):  # where the batch keeps its answers
        (stubs / name).symlink_to(shutil.which(name))

    def exec_(command, stdin=None):
        argv = shlex.split(command)
        assert argv[:4] == ["sudo", "-n", "bash", "-c"]
        answers = {
            "NODES": swarm_model.NODES,
            "SERVICES": swarm_model.NOTEBOOK_SERVICES,
            "TASKS": swarm_model.NOTEBOOK_TASKS,
        }
        done = subprocess.run(
            [bash, "-c", argv[4]],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={
                "PATH": str(stubs),
                "LOG": str(log),
                "SRV": str(srv),
                "HOMES": str(homes),
                "EXPECTED_TOKEN": TOKEN,
                "ROUTES": HEALTHY["proxy-routes"],
                "BACKUPS": HEALTHY["backups:/mnt/nfs/home/.hubswarm-backups"],
                **{name: HEALTHY[fact.key] for name, fact in answers.items()},
            },
        )
        return done.returncode, done.stdout, done.stderr

    config = hub_config(srv=str(srv), homes_path=str(homes), venv=str(venv))
    commands = []
    host = Host(SimpleNamespace(host="10.0.0.5", user="admin", port=22), "10.0.0.5", Run(config=config, recap=Recap()))
    host._exec = lambda command, stdin=None: commands.append(command) or exec_(command)
    rows = status.assess(host, URL)
    assert len(commands) == 1

    def generic(cell):
        for path, usual in ((srv, "/srv/jupyterhub"), (homes, "/mnt/nfs/home"), (venv, "/opt/jupyterhub")):
            cell = cell.replace(str(path), usual)
        return cell

    assert [tuple(map(generic, r)) for r in rows] == assessed(make_host)[0]
    called = log.read_text()
    assert TOKEN not in called
    assert "curl -sf --max-time 5 -H @- http://127.0.0.1:8001/api/routes" in called
    assert shlex.split(swarm_model.NODES.command)[3] in called  # the Go template arrived whole


def test_every_other_node_s_docker_disk_is_read_once_each_in_parallel(make_host, monkeypatch):
    """The nodes the hub's swarm lists, but the hub; one that does not answer cannot be read."""
    hub, _ = make_host({**HEALTHY})
    hub.facts(*status.probes(hub))
    asked = []

    class Node:
        def __init__(self, connection):
            self.connection = connection

        def fact(self, fact):
            asked.append((self.connection.host, fact.key))
            if self.connection.host == "10.0.0.7":
                raise HubswarmError("10.0.0.7 does not answer")
            return status.Disk(100, 5)

    monkeypatch.setattr(status, "targets", lambda run, connections: [Node(c) for c in connections])
    disks = status.node_disks(hub.run, hub, status.swarm_of(hub).nodes)
    assert disks == {"worker1": status.Disk(100, 5), "worker2": None}
    assert sorted(asked) == [("10.0.0.6", "disk:/var/lib/docker"), ("10.0.0.7", "disk:/var/lib/docker")]
    assert status.disk_row("worker1:/var/lib/docker", disks["worker1"]).problem == "less than 10% free"
    assert status.disk_row("worker2:/var/lib/docker", None).problem == "cannot read its free space"
