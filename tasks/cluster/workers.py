"""Workers: join the hub's swarm in parallel, leave it, and get the notebook image."""

from pathlib import Path

from fabric import task

from ..cli import inventory
from ..cli.invocation import found_hosts, hosts_for, hub_for, named_hosts, run_of
from ..core import HubswarmError, fail, run_on, run_steps, stop_if_failed
from ..node import docker, fence, images, packages, storage, updates
from . import managers, swarm
from .swarm_model import NODES

PROJECT = Path(__file__).resolve().parents[2]


# What every worker gets before it joins the swarm.
WORKER_SETUP = [
    packages.install_worker_packages,
    docker.install_docker,
    updates.security_updates,
    storage.mount_efs,
    storage.homes_watch,
]


def hub_host(c, hub=None):
    """The hub, where ``-H`` names the workers or nodes: ``--hub`` when given, else
    found by its tags. Settings are checked first."""
    run = run_of(c)
    return (named_hosts(run, [hub]) if hub else found_hosts(run, inventory.HUB))[0]


def read_join_info(hub):
    """The hub's join token and node list, as a recorded step on the hub."""
    return run_on(hub, swarm.join_info)


def image_step(run, source=None):
    """push-image (the notebook image built here, every profile's as it is here, streamed) or
    pull-image; ``source`` defaults to the setting. A push stops here, before any host is
    changed, when an image is not to be had on this machine."""
    config = run.config
    if (source or config.image_source) == "pull":
        return images.pull_image
    try:
        # Those hubswarm does not build first: one missing stops the push before a build.
        others = {image: images.profile_image_id(image) for image in images.notebook_images(config)[1:]}
        if run.check:  # no build in check mode: compare with what is built already
            built = images.existing_image_id(config.image)
        else:
            built = images.build_local(config.image, config.image_base, PROJECT)
    except HubswarmError as exc:
        fail(str(exc))
    return images.push_image.bind({config.image: built, **others})


def ready_steps(hub_ip, image):
    """What a worker gets before it joins: its setup, the fence (notebooks reach the hub's API
    at ``hub_ip``), the notebook image. Swarm places notebooks on a worker only once it is
    fenced and has the image."""
    return [*WORKER_SETUP, fence.notebook_fence.bind(hub_ip), image]


def join(run, hub_node, workers, rejoin=False, ready_with=None):
    """Bring ``workers`` into ``hub_node``'s swarm, in parallel (see :func:`join_workers`).
    ``ready_with``: the image step the caller made the workers ready with (:func:`ready_steps`):
    only the join is left for them."""
    image = ready_with or image_step(run)
    info = read_join_info(hub_node)
    join_step = swarm.swarm_join.bind(info, rejoin)
    # Joined last (and a no-op join costs no second probe after a rejoin).
    steps = [join_step] if ready_with else [*ready_steps(info.manager.rpartition(":")[0], image), join_step]
    failed = run_steps(workers, steps)
    hub_node.forget(NODES)  # the joins changed the node list the hub read for the join token
    # Managers before labels: a stale entry that was a manager is demoted before it is removed.
    swarm_steps = [managers.swarm_managers, swarm.swarm_nodes]
    # The hub needs the image only to run notebooks itself (a load costs ~15 s).
    hub_steps = [image, *swarm_steps] if hub_node.config.hub_takes_notebooks else swarm_steps
    failed += run_steps([hub_node], hub_steps)
    stop_if_failed(failed)


@task(
    help={
        "rejoin": "make a worker that is in another swarm (or in an error state) leave it and join this one",
        "hub": "the hub's address (else found by its tags)",
    }
)
def join_workers(c, rejoin=False, hub=None):
    """Bring every worker into the hub's swarm, in parallel: packages, Docker, security updates, join, notebook image.

    Workers are found by their EC2 tags, or named with -H; the hub is --hub, else
    found by its tags. The join token is read from the hub and never printed or
    put on a command line. One worker failing does not stop the others; the exit
    code is then non-zero. Then the swarm's managers: the hub and the workers
    HUBSWARM_MANAGERS names, else the first 2 ready ones (the hub alone below 3
    nodes), promoted; the swarm then outlives the hub's host.
    Example: fab join-workers; fab -H W1,W2 join-workers --hub HUB
    """
    join(run_of(c), hub_host(c, hub), hosts_for(c, inventory.WORKER), rejoin)


@task(help={"name": "the worker's swarm node name (its hostname, as `docker node ls` shows it)"})
def remove_worker(c, name):
    """Drain a worker, make it leave the swarm, and remove it from the hub's node list.

    A manager is first demoted, another ready worker promoted in its place when
    there is one, else one more demoted with it (1, 3 or 5 managers are kept,
    never 2); nothing changes when the
    swarm's managers have lost their quorum. The hub is the -H host, else found
    by its tags. A node that is gone already is ok.
    Example: fab remove-worker --name worker3
    """
    hub_node = hub_for(c)
    run_on(hub_node, managers.swarm_managers.bind((name,)))
    address = run_on(hub_node, swarm.drain.bind(name))
    if address:
        worker = hub_node.run.connect(address)
        failed = run_steps([worker], [swarm.leave])
        stop_if_failed(failed + run_steps([hub_node], [swarm.remove_node.bind(name)]))


@task(help={"hub": "the hub's address (else found by its tags)"})
def notebook_fence(c, hub=None):
    """Fence notebooks in on every node: no instance metadata, no private address but the
    hub's API; the internet as HUBSWARM_NOTEBOOK_EGRESS says. Kept across reboots.

    Nodes are found by their EC2 tags, or named with -H; the hub is --hub, else
    found by its tags. Example: fab notebook-fence
    """
    address = run_on(hub_host(c, hub), fence.hub_address)
    stop_if_failed(run_steps(hosts_for(c, inventory.NODE), [fence.notebook_fence.bind(address)]))


@task
def push_image(c):
    """Build the notebook image here (files/singleuser) and stream it, and every profile's image as it is here, to every node that lacks it."""
    stop_if_failed(run_steps(hosts_for(c, inventory.NODE), [image_step(run_of(c), "push")]))


@task
def pull_image(c):
    """Pull the configured notebook image and every profile's image on every node where it is missing, in parallel."""
    stop_if_failed(run_steps(hosts_for(c, inventory.NODE), [image_step(run_of(c), "pull")]))
