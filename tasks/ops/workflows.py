"""The hub's ``fab`` commands: each step alone, the composites that chain them, ``deploy``,
and a course's links (``fabfile.py`` declares the namespace)."""

from concurrent.futures import ThreadPoolExecutor

from fabric import task

from ..aws import efs, iam, route53
from ..cli import inventory
from ..cli.invocation import found_hosts, host_task, hub_for, named_hosts, run_of
from ..cluster import swarm
from ..cluster.workers import WORKER_SETUP, image_step, join, ready_steps
from ..core import HubswarmError, fail, gather_needs, run_on, run_steps, stop_if_failed
from ..core.run import preflight
from ..hub import auth, aws_env, certs, course, nodejs, python_env, users
from ..hub import jupyterhub as hub
from ..hub.letsencrypt import letsencrypt as letsencrypt_step
from ..hub.nginx import nginx as nginx_step
from ..node import docker, fence, packages, storage, updates
from . import backup

HUB_SETUP = [
    packages.install_hub_packages,
    docker.install_docker,
    fence.notebook_fence,
    aws_env.aws_env,
    updates.security_updates,
    nodejs.install_nodejs,
    python_env.pip_install,
    certs.make_cert,
    auth.write_env,
    users.write_userlist,
    storage.mount_efs,
    storage.homes,
    storage.homes_watch,
    storage.sync_notebooks,
    backup.scheduled_backups,
    hub.hub_config,
    nginx_step,
    swarm.swarm_init,
]
# The hub's start: the course folders of its userlist's groups first, as the hub will load them.
HUB_START = [course.course_folders, hub.start_hub]


def hub_in_aws(c):
    """What this machine makes in AWS for the hub before its steps, as its settings ask: its
    instance role (hub-role), its DNS records (dns-records), then the homes' backups in EFS
    (efs-backups)."""
    iam.hub_role_if_granted(c)
    route53.hub_records(c)
    efs.homes_backups(c)


@task
def check(c):
    """Check mode for the tasks after it: probe, change nothing, show what would change.

    Example: fab -H HUB check setup-hub
    """
    run_of(c).check = True


install_packages = host_task(packages.install_hub_packages)
install_docker = host_task(docker.install_docker)
install_nodejs = host_task(nodejs.install_nodejs, aliases=("install-node",))  # its name before 2026-11
pip_install = host_task(python_env.pip_install)
make_cert = host_task(certs.make_cert)
write_env = host_task(auth.write_env)
userlist = host_task(users.write_userlist)
hub_config = host_task(hub.hub_config)
nginx = host_task(nginx_step)
swarm_init = host_task(swarm.swarm_init)
start_hub = host_task(
    *HUB_START,
    name="start-hub",
    doc="Start the hub: " + ", then ".join(s.name for s in HUB_START) + ". " + hub.start_hub.apply.__doc__,
)
mount_efs = host_task(storage.mount_efs, role="node")
security_updates = host_task(updates.security_updates, role="node")
sync_notebooks = host_task(storage.sync_notebooks)
letsencrypt = host_task(letsencrypt_step)
setup_hub = host_task(
    *HUB_SETUP,
    name="setup-hub",
    doc="Set up the hub host: hub-role and dns-records (with HUBSWARM_ROUTE53_ZONE), efs-backups "
    "(with the homes on EFS, unless HUBSWARM_EFS_BACKUPS=0), " + ", ".join(s.name for s in HUB_SETUP) + ".",
    before_steps=hub_in_aws,
)


@task(help={"workers": "the workers' addresses, comma-separated (else found by their tags)"})
def deploy(c, workers=None):
    """The whole cluster in one command: setup-hub, join-workers (with images), start-hub.

    The workers get ready (packages, Docker, fence, image) while the hub is set up.
    The hub is the -H host, else found by its EC2 tags; the workers are --workers,
    else found by their tags. With HUBSWARM_ROUTE53_ZONE, hub-role and dns-records come
    before the hub is checked and set up; so does efs-backups, with the homes on EFS.
    Safe to rerun (a converged cluster reports no change).
    Example: fab deploy; fab -H HUB deploy; fab -H HUB deploy --workers W1,W2
    """
    run = run_of(c)
    hub_steps = gather_needs(run, [*HUB_SETUP, *HUB_START])
    hub_node = hub_for(c)
    worker_nodes = named_hosts(run, workers.split(",")) if workers else found_hosts(run, inventory.WORKER)
    # Whatever the probes can tell stops the deploy before the first change on any host; the
    # hub's check that its names resolve to it reads what dns-records made.
    preflight(worker_nodes, WORKER_SETUP)
    hub_in_aws(c)
    preflight([hub_node], hub_steps)
    image = image_step(run)
    hub_ip = run_on(hub_node, fence.hub_address)
    # The workers get ready (packages, Docker, fence, image) while the hub is set up; they
    # join once the hub's swarm exists.
    with ThreadPoolExecutor(max_workers=1) as pool:
        workers_ready = pool.submit(run_steps, worker_nodes, ready_steps(hub_ip, image))
        setup_hub(c)
        not_ready = workers_ready.result()
    join(run, hub_node, [w for w in worker_nodes if w not in not_ready], ready_with=image)
    start_hub(c)
    stop_if_failed(not_ready)
    run.recap.print_table()
    print(f"\nThe hub is up: https://{certs.hub_name(hub_node)}/")
    if run.config.lab:
        print(
            "Log in as a user of the lab userlist (.lab/userlist) with the password "
            "HUBSWARM_HUB_PASSWORD, or as its admin with HUBSWARM_HUB_ADMIN_PASSWORD, "
            "both in .lab/lab.env (the certificate is self-signed: accept it in the browser)."
        )


@task(
    help={
        "repo": "the git repository's URL (https://, http:// or git://), public: users' servers clone it",
        "branch": "its branch (default: the repository's own)",
        "path": "the file or folder opened, from the repository's top (default: the repository's folder)",
        "profile": "the profile a server that is not running starts with (HUBSWARM_PROFILES)",
    }
)
def course_link(c, repo=None, branch=None, path=None, profile=None):
    """Print the link that brings a git repository's material into a user's server and opens it in JupyterLab.

    Put it on the course's page: the user's server clones the repository into its folder of the
    same name (nbgitpuller, in the notebook image), and every later click pulls the changes,
    keeping the user's own edits. The hub's name is HUBSWARM_DOMAIN, else read from the hub.
    Example: fab course-link --repo https://github.com/ORG/REPO --path week1/intro.ipynb
    """
    run = run_of(c)
    problems = course.link_problems(run.config, repo, branch, path, profile)
    if problems:
        fail("\n".join(problems))
    if run.config.domain:
        name = run.config.domain
    else:
        hub_node = hub_for(c)
        try:
            name = certs.hub_name(hub_node)
        except HubswarmError as exc:
            fail(f"{hub_node.name}: {exc}")
    print(course.course_link(name, repo, branch, path, profile))
