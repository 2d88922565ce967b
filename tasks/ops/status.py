"""``fab status``: the cluster's health in one table, read from the hub in one probe.

Everything comes from the hub, over one SSH connection and one batched probe
command: the hub's services, JupyterHub's version and URL, the certificate
nginx serves, the swarm's nodes and notebook services (with what they reserve),
the proxy's routes, and free disk. :func:`assess` turns the parsed answers into
the table's rows; a row with a problem makes the cluster unhealthy.
"""

import json
import re
import shlex
from datetime import datetime, timezone
from functools import partial
from typing import NamedTuple
from urllib.parse import urlsplit

from fabric import Connection, task

from ..aws import efs
from ..cli import inventory
from ..cli.invocation import hub_for, run_of, targets
from ..cluster.managers import answers, managers_plan, named, quorum
from ..cluster.swarm_model import (
    NODES,
    NOTEBOOK_LABEL,
    NOTEBOOK_SERVICES,
    NOTEBOOK_TASKS,
    Resources,
    reserved_on,
    swarm_of,
    takes_notebooks,
)
from ..core import HubswarmError, facts, fail
from ..core.errors import Unreachable, one_line
from ..core.run import on_every_host
from ..core.words import plural
from ..hub import proxy
from ..hub.certs import cert_paths, hub_name, letsencrypt_files, public_name_probes, tls_files
from ..hub.jupyterhub import mem_guarantee
from ..hub.nginx import letsencrypt_fact
from ..hub.python_env import version_fact
from ..hubswarm_hub.backups import bucket_url
from ..hubswarm_hub.labels import NO_HOMES_LABEL
from ..settings.kinds import NO_EFS, memory_bytes
from .backup import BACKUP_SERVICE, BACKUP_TIMER, SHARED, backups_folder, bucket_backups, stored_fact

UNITS = ("jupyterhub", proxy.SERVICE, "nginx", "docker")
CERT_MIN_DAYS = 14
DISK_MIN_FREE_PERCENT = 10
# Where a node's containers write (their layers and logs) and its images live.
NODE_DISK = "/var/lib/docker"
DAY = 24 * 3600
GIB = 1 << 30


# --- probes and their parsers -------------------------------------------------------


CLOCK = facts.Fact("clock", "date +%s", parse=lambda answer: int(answer.text))


def cert_end(answer):
    """When the certificate expires (UTC), None when there is no readable certificate."""
    found = re.fullmatch(r"notAfter=(.+?)( GMT)?", answer.text)
    if not found:
        return None
    return datetime.strptime(found.group(1), "%b %d %H:%M:%S %Y").replace(tzinfo=timezone.utc)


def cert_end_fact(path):
    return facts.Fact(f"cert-end:{path}", f"openssl x509 -noout -enddate -in {shlex.quote(path)}", parse=cert_end)


def cert_probes(config):
    """The facts that tell which certificate nginx serves (see :func:`certs.tls_files`) and when each expires."""
    if not config.domain:
        return [cert_end_fact(cert_paths(config)[0])]
    return [
        letsencrypt_fact(config.domain),
        cert_end_fact(cert_paths(config)[0]),
        cert_end_fact(letsencrypt_files(config.domain)[0]),
    ]


def parse_routes(answer):
    """{path: target} of the proxy's routes; None when its API gave no routes."""
    try:
        routes = json.loads(answer.out) if answer.ok else None
    except ValueError:
        return None
    return {path: route.get("target", "") for path, route in routes.items()} if isinstance(routes, dict) else None


def routes_fact(config):
    """The proxy's routes from its API. The token is read from the env file on the hub
    and reaches curl on stdin (printf is a builtin): never a command line, never output."""
    return facts.Fact(
        "proxy-routes",
        f"( . {shlex.quote(proxy.token_path(config))} && "
        "printf 'Authorization: token %s\\n' \"$CONFIGPROXY_AUTH_TOKEN\" | "
        f"curl -sf --max-time 5 -H @- {shlex.quote(proxy.API_URL + '/api/routes')} )",
        parse=parse_routes,
    )


class Disk(NamedTuple):
    total: int  # bytes
    free: int  # bytes available to users


def parse_disk(answer):
    if not answer.ok:
        return None
    block, blocks, available = map(int, answer.text.split())
    return Disk(block * blocks, block * available)


def disk_fact(path):
    """The size and free space of the file system holding ``path``; None when it cannot be read."""
    return facts.Fact(f"disk:{path}", f"stat -f -c '%S %b %a' -- {shlex.quote(path)}", parse=parse_disk)


def disk_paths(config):
    """The hub's state folder, the homes, and the hub's Docker."""
    return [config.srv, config.homes_path, NODE_DISK]


def node_disks(run, hub, nodes):
    """{hostname: Disk, or None when it cannot be read} of the other swarm nodes' Docker, each
    read in one probe, in parallel (through the hub with HUBSWARM_GATEWAY)."""
    others = [n for n in nodes if n.address and n.address != hub.private_ip()]
    gateway = hub.connection if run.config.gateway else None
    connections = [Connection(n.address, config=run.connection_config, gateway=gateway) for n in others]

    def disk(host):
        try:
            return host.fact(disk_fact(NODE_DISK))
        except HubswarmError:  # a node down is a row of its own already
            return None

    return {n.hostname: d for n, d in zip(others, on_every_host(targets(run, connections), disk), strict=True)}


def probes(host):
    """Every fact ``status`` reads, for one batch."""
    config = host.config
    return [
        *(facts.systemd_unit(unit) for unit in UNITS),
        version_fact(config.venv),
        *public_name_probes(host),
        *cert_probes(config),
        CLOCK,
        NODES,
        NOTEBOOK_SERVICES,
        NOTEBOOK_TASKS,
        routes_fact(config),
        *(disk_fact(path) for path in disk_paths(config)),
        facts.addresses(),  # which of the swarm's nodes is the hub
        stored_fact(config),
        facts.systemd_unit(BACKUP_TIMER),
        facts.systemd_unit(BACKUP_SERVICE),
    ]


# --- the answers as rows --------------------------------------------------------------


class Row(NamedTuple):
    what: str
    name: str
    state: str
    detail: str
    problem: str = ""


HEADER = Row("WHAT", "NAME", "STATE", "DETAIL", "PROBLEM")


def age(seconds):
    minutes = max(int(seconds), 0) // 60
    if minutes >= 24 * 60:
        return f"{minutes // (24 * 60)}d {minutes // 60 % 24}h"
    if minutes >= 60:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    return f"{minutes}m"


def gib(size):
    return f"{size / GIB:.1f} GiB"


def cpus(nano_cpus):
    """Swarm's nano CPUs as a person writes CPUs: 1 CPU, 0.5 CPUs."""
    count = f"{nano_cpus / 1e9:g}"
    return f"{count} CPU" + ("" if count == "1" else "s")


def unit_row(unit, state):
    return Row("service", unit, state.active or "unknown", state.enabled or "-", "" if state.running else "not active")


def cert_row(host, now):
    config = host.config
    letsencrypt = bool(config.domain) and host.fact(letsencrypt_fact(config.domain))
    path = tls_files(config, letsencrypt)[0]
    kind = "Let's Encrypt" if letsencrypt else "self-signed"
    end = host.fact(cert_end_fact(path))
    if end is None:
        return Row("cert", kind, "missing", path, "no readable certificate")
    left = end.timestamp() - now
    if left <= 0:
        return Row("cert", kind, "expired", f"on {end:%Y-%m-%d}, {path}", "expired")
    detail = f"{int(left // DAY)} days left (to {end:%Y-%m-%d}), {path}"
    if left < CERT_MIN_DAYS * DAY:
        return Row("cert", kind, "expiring", detail, f"expires within {CERT_MIN_DAYS} days")
    return Row("cert", kind, "valid", detail)


def guarantee(config):
    """What each new notebook reserves, worked out as SwarmSpawner asks swarm for it
    (``int(cpu_guarantee * 1e9)`` too, so the room counted here is swarm's); 0: none."""
    return Resources(int(memory_bytes(mem_guarantee(config)) or 0), int(float(config.cpu_guarantee) * 1e9))


def room(nodes, tasks, each):
    """How many more notebooks reserving ``each`` swarm can place: on every node that takes
    notebooks, as many as both its free memory and its free CPUs hold (a 0 in ``each``
    limits nothing). None when ``each`` reserves nothing: then nothing limits them."""
    if not any(each):
        return None
    fits = 0
    for node in filter(takes_notebooks, nodes):
        used = reserved_on(node, tasks)
        free = [(total - taken) // need for total, taken, need in zip(node.capacity, used, each, strict=True) if need]
        fits += max(min(free), 0)  # a node reporting less than its tasks hold (resized) has none
    return fits


def room_row(nodes, tasks, each):
    """How many more notebooks reserving ``each`` fit; none is a problem (the next student is turned away)."""
    fits = room(nodes, tasks, each)
    if fits is None:
        return Row("room", "notebooks", "unlimited", "no guarantees set: swarm places notebooks without limit")
    wanted = [gib(each.memory)] if each.memory else []
    wanted += [cpus(each.nano_cpus)] if each.nano_cpus else []
    detail = (
        f"{plural(fits, 'more notebook')} of {' and '.join(wanted)} guaranteed fit on "
        f"{plural(sum(map(takes_notebooks, nodes)), 'node')} taking notebooks"
    )
    full = "no room for another notebook: add a worker or lower HUBSWARM_MEM_GUARANTEE / HUBSWARM_CPU_GUARANTEE"
    return Row("room", "notebooks", f"{fits} more", detail, "" if fits else full)


def node_rows(nodes, tasks, each):
    """A row per node (what its notebooks reserve of its capacity), then the room they
    leave for notebooks reserving ``each``."""
    if not nodes:
        return [Row("swarm", "nodes", "none", "docker node ls lists no node", "the hub manages no swarm")]
    rows = []
    for node in sorted(nodes, key=lambda n: (n.role != "manager", n.hostname)):
        label = (
            f"{NOTEBOOK_LABEL}={node.labels[NOTEBOOK_LABEL]}" if NOTEBOOK_LABEL in node.labels else "no notebooks label"
        )
        running = sum(t.node == node.id and t.state == "running" for t in tasks)
        used = reserved_on(node, tasks)
        detail = (
            f"{node.role}, {node.availability}, {node.address}, {label}, {plural(running, 'notebook')}, "
            f"{used.memory / GIB:.1f} of {gib(node.capacity.memory)} and "
            f"{used.nano_cpus / 1e9:g} of {cpus(node.capacity.nano_cpus)} reserved"
        )
        down = node.state != "ready" and node.availability != "drain"
        homes_missing = node.labels.get(NO_HOMES_LABEL, "").lower() == "true"
        problem = "not ready, not drained" if down else "its homes storage is missing: no new notebook here"
        rows.append(Row("node", node.hostname, node.state, detail, problem if down or homes_missing else ""))
    return [*rows, room_row(nodes, tasks, each)]


def managers_row(nodes, hub_ip, config):
    """The swarm's managers (the hub first) and their quorum. A problem when some do not answer
    (none changes the swarm without its quorum), or when they are not those join-workers keeps."""
    members = sorted((n for n in nodes if n.manager_status), key=lambda n: (n.address != hub_ip, n.hostname))
    lost = [n.hostname for n in members if not answers(n)]
    need = quorum(len(members))
    spare = len(members) - len(lost) - need
    detail = (
        f"managers {len(members)} ({', '.join(n.hostname for n in members)}), quorum {need}, "
        f"tolerates {max(spare, 0)} {'more ' if lost else ''}lost"
    )
    state = f"{len(members) - len(lost)} up"
    if spare < 0:
        problem = f"no quorum: {', '.join(lost)} do not answer, and swarm changes nothing until they do"
    elif lost:
        problem = f"{', '.join(lost)} not answering: fab join-workers puts ready workers in their place"
    else:
        problem = kept_managers_problem(nodes, hub_ip, config)
    return Row("swarm", "managers", state, detail, problem)


def kept_managers_problem(nodes, hub_ip, config):
    """What join-workers would change of the managers, as a problem; "" when nothing, or when
    no node is at the hub's address."""
    hub = next((n for n in nodes if n.address == hub_ip), None)
    if hub is None:
        return ""
    try:
        plan = managers_plan(nodes, hub.id, named(config))
    except HubswarmError as refused:
        return str(refused)
    changes = [what for what, command in plan.changes if command]
    return f"not as kept: fab join-workers would {' and '.join(changes)}" if changes else ""


def notebook_rows(services, tasks, nodes, now):
    by_id = {n.id: n for n in nodes}
    rows = []
    for service, user in sorted(services.items(), key=lambda item: item[1]):
        mine = [t for t in tasks if t.service == service]
        if not mine:
            rows.append(Row("notebook", user, "no task", "swarm runs none of its tasks"))
        for t in mine:
            node = by_id.get(t.node)
            where = (
                f"on {node.hostname} ({node.address}:{','.join(map(str, t.ports)) or '-'})" if node else "on no node"
            )
            detail = f"{where} for {age(now - t.since.timestamp())}"
            if t.state == "pending" and t.error:  # swarm finds no node for it (the hub gives up soon)
                rows.append(Row("notebook", user, t.state, f"{detail}: {t.error}", f"waiting: {t.error}"))
            else:
                rows.append(Row("notebook", user, t.state, detail))
    return rows


def endpoints(nodes, tasks):
    """(address, port) of every running notebook on a ready node."""
    address = {n.id: n.address for n in nodes if n.state == "ready"}
    return {(address[t.node], port) for t in tasks if t.state == "running" and t.node in address for port in t.ports}


def points_at(target):
    """(host, port) of a route's target URL; None when it names no port."""
    try:
        parts = urlsplit(target)
        return (parts.hostname, parts.port) if parts.port else None
    except ValueError:
        return None


def route_rows(routes, nodes, tasks):
    """The proxy's user routes: a summary row, then one row per route that points nowhere
    (the ``/`` route is the hub itself)."""
    if routes is None:
        return [
            Row("routes", "proxy API", "unreadable", f"{proxy.API_URL}/api/routes", "cannot read the proxy's routes")
        ]
    running = endpoints(nodes, tasks)
    users = {path: target for path, target in sorted(routes.items()) if path != "/"}
    nowhere = {path: target for path, target in users.items() if points_at(target) not in running}
    rows = [
        Row(
            "routes",
            "proxy API",
            "ok" if not nowhere else f"{len(nowhere)} nowhere",
            f"{plural(len(users), 'user route')}, {len(nowhere)} pointing nowhere",
        )
    ]
    rows += [
        Row("route", path, "nowhere", target or "-", "points to no running notebook")
        for path, target in nowhere.items()
    ]
    return rows


def disk_row(path, disk):
    if disk is None or not disk.total:
        return Row("disk", path, "unknown", "stat -f failed", "cannot read its free space")
    percent = 100 * disk.free // disk.total
    detail = f"{gib(disk.free)} free of {gib(disk.total)}"
    low = f"less than {DISK_MIN_FREE_PERCENT}% free" if percent < DISK_MIN_FREE_PERCENT else ""
    return Row("disk", path, f"{percent}% free", detail, low)


def archives_row(where, stored, every, now, nothing_yet, problem=""):
    """When the newest of the hub's own archives in ``where`` was taken ([(name, size, mtime)]
    ``stored``, oldest first); a problem when it is older than twice ``every`` (none yet is
    fine: a new hub takes its first one ``every`` seconds after it starts)."""
    newest = stored[-1] if stored else None
    state = f"{age(now - newest[2])} old" if newest else "none yet"
    detail = f"{newest[0]}, {plural(len(stored), 'backup')} kept" if newest else nothing_yet
    if not problem and newest and now - newest[2] > 2 * every:
        problem = f"older than twice HUBSWARM_BACKUP_EVERY ({every} s)"
    return Row("backup", where, state, detail, problem)


def backup_row(config, host, now):
    """The hub's own backups in the shared storage: also a problem when its timer is not
    active or its last run failed."""
    every = int(config.backup_every)
    if not every:
        return Row("backup", SHARED, "off", "HUBSWARM_BACKUP_EVERY=0: fab backup only")
    timer, service, stored = host.facts(
        facts.systemd_unit(BACKUP_TIMER), facts.systemd_unit(BACKUP_SERVICE), stored_fact(config)
    )
    if not timer.running:
        problem = f"{BACKUP_TIMER} is not active: fab setup-hub"
    elif service.active == "failed":
        problem = f"the last backup failed: journalctl -u {BACKUP_SERVICE}"
    else:
        problem = ""
    return archives_row(SHARED, stored, every, now, backups_folder(config), problem)


def bucket_rows(config, now):
    """The hub's own backups in HUBSWARM_BACKUP_BUCKET, read from this machine: none without a
    bucket or backups; a problem when it cannot be listed."""
    every = int(config.backup_every)
    if not config.backup_bucket or not every:
        return []
    url = bucket_url(config.backup_bucket)
    try:
        stored = bucket_backups(config)
    except Exception as exc:  # noqa: BLE001 - botocore's many errors: credentials, endpoint, permissions
        return [Row("backup", url, "unknown", "s3:ListBucket from this machine", f"cannot list it: {one_line(exc)}")]
    return [archives_row(url, stored, every, now, f"no archive of cluster {config.cluster}")]


def efs_rows(config):
    """Whether EFS's automatic backups of the homes' file system are on, read from this machine
    (its backup policy): a problem when they are off or it cannot be read; a note when the homes
    are on no EFS file system hubswarm knows (unset, `none`, another server)."""
    if not efs.homes_on_efs(config):
        if config.efs == NO_EFS:
            return [Row("efs", NO_EFS, "no EFS", "HUBSWARM_EFS=none: the homes are on the hub only, in no EFS backup")]
        return [Row("efs", "unset", "unknown", "HUBSWARM_EFS is not set: the homes' storage is mounted otherwise")]
    if not config.efs_backups:
        return [
            Row("efs", config.efs, "not checked", "HUBSWARM_EFS_BACKUPS=0: its automatic backups are left as they are")
        ]
    try:
        file_system, policy = efs.backups_state(config, partial(inventory.aws_client, config, "efs"))
    except Exception as exc:  # noqa: BLE001 - botocore's many errors: credentials, endpoint, permissions
        problem = f"cannot read its backup policy: {one_line(exc)}"
        return [Row("efs", config.efs, "unknown", "elasticfilesystem:DescribeBackupPolicy from this machine", problem)]
    if file_system is None:
        return [Row("efs", config.efs, "unknown", "no EFS file system found for it: its backups cannot be checked")]
    detail = f"automatic backups by AWS Backup, daily (backup policy {policy or 'never set'})"
    if policy in efs.ON:
        return [Row("efs", file_system.id, "backups on" if policy == "ENABLED" else "backups turning on", detail)]
    return [Row("efs", file_system.id, "backups off", detail, "the homes have no automatic backup: fab efs-backups")]


def assess(host, url):
    """The table's rows from the hub's facts, all of :func:`probes` read in one batch;
    ``url``: the hub's public URL."""
    config = host.config
    host.facts(*probes(host))
    now, version, routes = host.facts(CLOCK, version_fact(config.venv), routes_fact(config))
    seen = swarm_of(host)
    return [
        Row("hub", url, version or "unknown", f"JupyterHub in {config.venv}"),
        *(unit_row(unit, host.fact(facts.systemd_unit(unit))) for unit in UNITS),
        cert_row(host, now),
        *node_rows(seen.nodes, seen.tasks, guarantee(config)),
        *([managers_row(seen.nodes, host.private_ip(), config)] if seen.nodes else []),
        *notebook_rows(seen.users, seen.tasks, seen.nodes, now),
        *route_rows(routes, seen.nodes, seen.tasks),
        *(disk_row(path, host.fact(disk_fact(path))) for path in disk_paths(config)),
        backup_row(config, host, now),
    ]


def problems(rows):
    return [f"{row.what} {row.name}: {row.problem}" for row in rows if row.problem]


def table(rows):
    lines = [HEADER, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


@task
def status(c):
    """Print the cluster's health as one table, read from the hub; exit 1 when unhealthy.

    Hub services (jupyterhub, jupyterhub-proxy, nginx, docker), JupyterHub's
    version and URL, the TLS certificate's days left, the swarm's nodes (with what
    notebooks reserve of each), its managers and their quorum, the room for more
    notebooks, the notebook servers, proxy routes that point at no running
    notebook, and free disk for the hub's state, the homes and every node's
    Docker: one probe of the hub, then one of each other node, in parallel.
    Unhealthy: a service not active, a node not ready and not drained, a
    manager not answering or the managers not as join-workers keeps them, no
    room for another notebook, a notebook waiting for a node, a route pointing
    nowhere, the certificate expiring within 14 days, less than 10% disk free,
    the hub's backups stopped, failing or older than twice
    HUBSWARM_BACKUP_EVERY, in the shared storage or in HUBSWARM_BACKUP_BUCKET
    (read from this machine: s3:ListBucket), EFS's automatic backups of the
    homes off, or unreadable (read from this machine:
    elasticfilesystem:DescribeBackupPolicy). Example: fab status
    """
    hub = hub_for(c)
    try:
        hub.facts(*probes(hub))  # one probe: what the URL and the rows are read from
        rows = assess(hub, f"https://{hub_name(hub)}/")
    except Unreachable as exc:
        fail(
            f"{hub.name}: {exc}; if its host is lost, bring a new one up at its private address and run "
            "fab -H NEW_HUB replace-hub (README: When the hub's host dies)"
        )
    except HubswarmError as exc:
        fail(f"{hub.name}: {exc}")
    disks = node_disks(run_of(c), hub, swarm_of(hub).nodes)
    rows += [disk_row(f"{name}:{NODE_DISK}", disk) for name, disk in sorted(disks.items())]
    rows += bucket_rows(hub.config, hub.fact(CLOCK))
    rows += efs_rows(hub.config)
    print(table(rows), flush=True)  # before the one-line summary on stderr
    found = problems(rows)
    if found:
        fail(f"unhealthy ({len(found)}): " + "; ".join(found))
