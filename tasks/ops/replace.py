"""``fab replace-hub``: a new hub host in the place of a lost one, mid-lesson, every running
notebook kept (the swarm's other managers kept their services; :mod:`tasks.cluster.takeover`)."""

from concurrent.futures import ThreadPoolExecutor

from fabric import task

from ..cli import inventory
from ..cli.invocation import found_hosts, hub_for, named_hosts, run_of
from ..cluster import managers, swarm, takeover
from ..core import facts, fail, gather_needs, run_on, run_steps, step, stop_if_failed
from ..core.run import preflight, run_everywhere
from ..hub import certs
from . import backup
from .workflows import HUB_SETUP, hub_in_aws, start_hub


def database_fact(config):
    return facts.file_state(backup.member_path(config, backup.DATABASE))


@step("hub-state", probes=lambda host: [database_fact(host.config)])
def has_database(host):
    """Whether the host has a hub database: a new hub runs with the one it has (a rerun
    restores nothing over the state the hub made since)."""
    return bool(host.fact(database_fact(host.config)))


@step("restore")
def predicted_restore(host, what):
    """Check mode: the restore a new hub would get (its archive is read only to restore it)."""
    host.changed(what)


def surviving_view(workers):
    """(a surviving manager, the swarm's nodes as it lists them, the workers' node ids); one
    line when no worker manages the swarm with a quorum."""
    failed, views = run_everywhere(workers, [takeover.swarm_view])
    answering = list(zip([w for w in workers if w not in failed], views, strict=True))
    ids = {node_id for _, (node_id, _) in answering if node_id}
    for worker, (_, nodes) in answering:
        if nodes:
            return worker, nodes, ids
    fail(
        "replace-hub: no worker manages the swarm with a quorum (see fab status): the swarm was lost with "
        "the hub; rebuild the cluster instead: fab setup-hub, fab restore, fab join-workers --rejoin, fab start-hub"
    )


@task(
    help={
        "workers": "the workers' addresses, comma-separated (else found by their tags)",
        "archive": "a fab backup archive to restore (default: the newest backup the lost hub took by itself)",
        "force": "take the hub's place even while the swarm still sees the lost hub up",
    }
)
def replace_hub(c, workers=None, archive=None, force=False):
    """Bring the hub back on a new host after its host was lost, every running notebook kept.

    The new host (-H, else found by its tags) must have the lost hub's private address:
    running notebooks reach the hub's API there. It joins the swarm as a manager through a
    surviving one (the workers manage the swarm too: join-workers), is set up as setup-hub
    does, gets the newest backup the lost hub took by itself (or --archive) unless it has a
    hub database already, takes the lost hub's place among the managers (its entry is
    removed), and starts the hub: it finds the notebooks still running on the workers, and
    login cookies stay valid. While it sets the host up, it waits (up to 2 minutes) until a
    surviving manager sees the lost hub down, and is refused, before the join, while it
    still sees it up (unless --force). Safe to rerun; check mode shows what it would do.
    Example: fab -H NEW_HUB replace-hub
    """
    run = run_of(c)
    setup = gather_needs(run, [s for s in HUB_SETUP if s is not swarm.swarm_init])
    new_hub = hub_for(c)
    worker_nodes = named_hosts(run, workers.split(",")) if workers else found_hosts(run, inventory.WORKER)
    survivor, nodes, worker_ids = surviving_view(worker_nodes)
    # The takeover's refusals but one, before any change on any host (and before AWS): the
    # swarm may still see the lost hub up, for the seconds it takes to miss its heartbeats.
    # One probe of the new host answers both.
    preflight([new_hub], [takeover.swarm_takeover.bind(nodes, worker_ids, None, True), has_database])
    fresh = not run_on(new_hub, has_database)
    info = run_on(survivor, takeover.manager_join_info.bind(nodes))
    hub_in_aws(c)
    new_id = new_hub.fact(swarm.SWARM_STATE).node_id
    with ThreadPoolExecutor(max_workers=1) as pool:
        seen = pool.submit(run_on, survivor, takeover.seen_down.bind(new_hub.private_ip(), new_id))
        not_set_up = run_steps([new_hub], setup)
        nodes = seen.result()
    stop_if_failed(not_set_up)
    stop_if_failed(run_steps([new_hub], [takeover.swarm_takeover.bind(nodes, worker_ids, info, force)]))
    if fresh:
        if run.check:
            run_on(new_hub, predicted_restore.bind(f"restore {archive or 'the newest backup'}"))
        else:
            run_on(new_hub, backup.restore_state.bind(backup.members_to_restore(c, new_hub, archive)))
    # The lost hub's entry: demoted (it answers no more), then removed as stale.
    stop_if_failed(run_steps([new_hub], [managers.swarm_managers, swarm.swarm_nodes]))
    start_hub(c)
    run.recap.print_table()
    print(f"\nThe hub is back: https://{certs.hub_name(new_hub)}/")
