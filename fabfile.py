"""hubswarm: JupyterHub on a Docker swarm of EC2 hosts, as idempotent Fabric tasks.

Run ``fab --list`` for the tasks and ``fab --help TASK`` for one of them.
Settings come from the environment, then a running lab's ``.lab/lab.env``
(unless HUBSWARM_LAB=0; its settings then apply to lab hosts only), then
``.env`` (see ``.env.example``); ``fabric.yaml`` overrides them all. Every task
checks them all before it touches a host.
"""

import atexit
import gc
import os

import fabric.main
from invoke import Collection

from tasks import settings

# The environment wins, then a running lab's settings, then .env.
LAB_ENV = settings.load_environment()

# (after the settings are loaded)
from tasks import lab  # noqa: E402
from tasks.aws import ec2 as aws  # noqa: E402
from tasks.aws import efs, iam, route53  # noqa: E402
from tasks.cli import inventory, invocation  # noqa: E402
from tasks.cluster import workers  # noqa: E402
from tasks.ops import backup, replace, scale, status, workflows  # noqa: E402

if LAB_ENV:  # a lab.env written before it named its subnet
    os.environ.setdefault("HUBSWARM_LAB_SUBNET", lab.SUBNET)

# Every `fab` command, declared here.
ns = Collection(
    workflows.check,
    # the hub, step by step, and all at once
    workflows.install_packages,
    workflows.install_docker,
    workflows.install_nodejs,
    workflows.pip_install,
    workflows.make_cert,
    workflows.write_env,
    workflows.userlist,
    workflows.mount_efs,
    workflows.security_updates,
    workflows.sync_notebooks,
    workflows.hub_config,
    workflows.nginx,
    workflows.swarm_init,
    workflows.setup_hub,
    workflows.start_hub,
    workflows.letsencrypt,
    # the workers and the whole cluster
    workers.join_workers,
    workers.remove_worker,
    workers.notebook_fence,
    workers.push_image,
    workers.pull_image,
    workflows.deploy,
    # a course
    workflows.course_link,
    # a term with the hub up
    backup.backup,
    backup.restore,
    replace.replace_hub,
    # AWS
    inventory.hosts,
    status.status,
    aws.security_groups,
    route53.dns_records,
    iam.hub_role,
    efs.efs_backups,
    aws.launch,
    scale.scale,
    aws.harden_metadata,
)
ns.add_collection(lab.ns)
ns.configure(settings.defaults(os.environ))

# Python's last collections at exit would walk every object fab loaded (~40 ms of every
# run); nothing in them is left to release.
atexit.register(gc.freeze)

# Each task runs once for all the -H hosts, in parallel, not once per host in turn.
# `fab` picks its executor before it reads the collection's config, so it is set here.
fabric.main.program.executor_class = invocation.Executor
