"""Check mode runs only read-only probes.

Every step of setup-hub (``workflows.HUB_SETUP``), start-hub (``workflows.HUB_START``), the worker steps
(join-workers: the join token read on the hub, ``workers.WORKER_SETUP``, swarm
join, the notebook image by push or pull, node labels on the hub) and
letsencrypt run in check mode through ``run_steps``, as ``fab check ...`` runs
them, on fake hosts with pristine and with drifted probe answers. Every remote
command a host is asked to run is recorded, and each one must be a probe batch
(a script :func:`facts.batch_script` made): no change script, and no other
command, ever runs in check mode. The steps still report the changes they
would make.
"""

import shlex

import pytest

from fakehost import DEBIAN_12, cert_info, hub_config, node_info, swarm_info, unit_info, with_input
from tasks import pins
from tasks.cluster import swarm, swarm_model, workers
from tasks.core import run
from tasks.hub import jupyterhub as hub
from tasks.hub import letsencrypt, nginx, proxy, records, users
from tasks.node import docker, images, packages, storage
from tasks.ops import workflows

HUB_ADDRESS, WORKER_ADDRESS = "10.0.0.5", "10.0.0.6"
WRONG_FILE = "0" * 64 + " 644 root root"
IMAGE_ID = "sha256:" + "1" * 64


def env_values():
    from tasks.hub import auth

    return auth.hub_secrets(
        type("C", (), {"authenticator": "google", "lab": False})(),
        {"OAUTH_CLIENT_ID": "new-client-id", "OAUTH_CLIENT_SECRET": "new-secret-value"},
    )


NEEDED = {
    "write-env": env_values(),
    "userlist": users.parse_userlist("a@x.io admin\nb@x.io\n"),
    "course-folders": users.parse_userlist("a@x.io admin instructor\nb@x.io group:cs101\n"),
    "hub-config": ("google", ("abc  ./site.py\n", b"tar")),
    "sync-notebooks": ("abc  ./welcome.ipynb\n", b"tar"),
    "letsencrypt": (["hub.example.com"], "-----BEGIN CERTIFICATE-----\n"),
}

# --- probe answers ----------------------------------------------------------------------

PRISTINE_HUB = {
    "os-release": DEBIAN_12,
    "addresses": HUB_ADDRESS,
    "swarm-state": swarm_info(),
    "resolve:hub.example.com": HUB_ADDRESS,
    # (its users' servers' names, under its own)
    f"resolve:{records.UNDER_THE_HUB}.hub.example.com": HUB_ADDRESS,
}
PRISTINE_WORKER = {"os-release": DEBIAN_12, "addresses": WORKER_ADDRESS, "swarm-state": swarm_info()}


def pkg_key(names):
    return "packages:" + ",".join(sorted(names))


def drifted_hub():
    """A hub set up once, then drifted: a package gone, services stopped, files
    edited, an old proxy and an expiring certificate, the default site back, a
    stale swarm node and an unlabelled worker, the hub's inputs changed since its start."""
    srv = "/srv/jupyterhub"
    site, link, default = nginx.site_paths(packages.APT)
    answers = {
        **PRISTINE_HUB,
        "swarm-state": swarm_info("active", True, "hubnode"),
        pkg_key(packages.HUB_PACKAGES[packages.APT]): "ca-certificates\ncurl\nopenssl\npython3-venv\nrsync",
        pkg_key(docker.DOCKER_PACKAGES[packages.APT]): "docker.io",
        pkg_key(["nfs-common"]): "nfs-common",
        "apt-lists-fresh": "/var/lib/apt/lists/x_Packages",
        "unit:docker": unit_info("enabled", "inactive"),
        "unit:nginx": unit_info("disabled", "active"),
        "unit:jupyterhub": unit_info("enabled", "active"),
        "groups:admin": "admin sudo",
        "nodejs-version": "v18.19.0",
        "chp-version": "4.6.1",
        "pythons": "python3 3 11",
        f"venv:{hub_config_value('venv')}": '{"jupyterhub": "5.0.0"}',
        f"dir:{srv}": "755 root root",
        f"dir:{srv}/ssl": "700 root root",
        f"cert:{srv}/ssl/hub.crt": cert_info("DNS:hub.example.com", lasts=False),
        f"file:{srv}/env": WRONG_FILE,
        f"content:{srv}/env": 'OAUTH_CLIENT_ID="old"\n',
        f"file:{srv}/userlist": WRONG_FILE,
        f"content:{srv}/userlist": "old@x.io admin\n",
        "mount:/mnt/nfs/home": "fs-1.efs.us-west-2.amazonaws.com:/ nfs4",
        f"file:{storage.HOME_TOOL}": WRONG_FILE,
        f"dir:{srv}/notebooks": "755 root root",
        f"manifest:{srv}/notebooks": "old  ./welcome.ipynb\n",
        f"content:/mnt/nfs/home/{storage.SYNCED_STAMP}": "old  ./welcome.ipynb\n",
        f"file:{srv}/jupyterhub_config.py": WRONG_FILE,
        f"file:{srv}/hubswarm.json": WRONG_FILE,
        "hub-package:/opt/jupyterhub": "/opt/jupyterhub/lib/python3.11/site-packages\nold  spawner.py",
        f"dir:{nginx.ACME_ROOT}": "755 root root",
        f"file:{nginx.DHPARAM}": WRONG_FILE,
        f"file:{site}": WRONG_FILE,
        f"link:{link}": "/elsewhere",
        f"exists:{default}": "",
        f"file:{hub.UNIT}": WRONG_FILE,
        "inputs:jupyterhub": "abc\nold",
        f"file:{proxy.UNIT}": WRONG_FILE,
        f"file:{srv}/proxy.env": WRONG_FILE,
        f"unit:{proxy.SERVICE}": unit_info("enabled", "active"),
        f"inputs:{proxy.SERVICE}": "abc\nold",
        "hub-login-status": "502",
        swarm_model.NODES.key: "".join(
            node_info(id_, role, state, hostname, labels)
            for id_, role, state, hostname, labels in [
                ("hubnode", "manager", "ready", "hub", {}),
                ("w1", "worker", "ready", "worker1", {"hubswarm.notebooks": "false"}),
                ("w1old", "worker", "down", "worker1", None),
            ]
        ),
        f"image:{hub_config_value('image')}": "sha256:old",
        "cert:/etc/letsencrypt/live/hub.example.com/fullchain.pem": cert_info("DNS:old.example.com"),
        f"file:{srv}/acme-ca.pem": WRONG_FILE,
        "unit:certbot.timer": unit_info("disabled", "inactive"),
    }
    return answers


def drifted_worker():
    """A worker in another swarm, Docker not running, no EFS mount, an old image."""
    return {
        **PRISTINE_WORKER,
        "swarm-state": swarm_info("active", False, "othernode"),
        pkg_key(packages.WORKER_PACKAGES[packages.APT]): "ca-certificates\nrsync",
        pkg_key(docker.DOCKER_PACKAGES[packages.APT]): "docker.io",
        "apt-lists-fresh": "",
        "unit:docker": unit_info("enabled", "failed"),
        "groups:admin": "admin",
        f"image:{hub_config_value('image')}": "sha256:old",
    }


def hub_config_value(key):
    return hub_config()[key]


# --- the run ----------------------------------------------------------------------------


@pytest.fixture
def check_run(make_host):
    """(make, run, sent): fake hosts in check mode; ``run(hosts, steps)`` runs
    steps as a task does; ``sent`` lists every remote script other than a probe."""
    sent = []

    def make(answers, address):
        host, runner = make_host(answers, check=True, address=address)

        def exec_(command, stdin=None):
            argv = shlex.split(command)
            assert argv[:4] == ["sudo", "-n", "bash", "-c"], command
            sent.append((host.name, argv[4]))
            return runner(command, stdin)

        host._exec = exec_
        return host, runner

    def run_task(hosts, steps, needed=NEEDED):
        failed = run.run_steps(hosts, with_input(steps, needed))
        records = hosts[0].run.recap.records
        assert not failed, [(r.host, r.task, r.error) for r in records if r.error]
        return records

    return make, run_task, sent


def changes_by_task(records):
    found = {}
    for r in records:
        found.setdefault(r.task, []).extend(r.changes)
    return found


@pytest.mark.parametrize("scenario", ["pristine", "drifted"])
def test_check_mode_runs_only_probes(check_run, scenario):
    make, run_task, sent = check_run
    hub_host, hub_runner = make(PRISTINE_HUB if scenario == "pristine" else drifted_hub(), HUB_ADDRESS)
    worker, worker_runner = make(PRISTINE_WORKER if scenario == "pristine" else drifted_worker(), WORKER_ADDRESS)

    run_task([hub_host], workflows.HUB_SETUP)
    run_task([hub_host], workflows.HUB_START)
    info = workers.read_join_info(hub_host)
    image = images.push_image.bind({hub_config_value("image"): IMAGE_ID})
    join = swarm.swarm_join.bind(info, True)
    run_task([worker], [*workers.WORKER_SETUP, join, image])
    run_task([worker], [images.pull_image])
    run_task([hub_host], [image, swarm.swarm_nodes])
    records = run_task([hub_host], [letsencrypt.letsencrypt])

    # Every remote command was a probe: no change script ran, nor anything else.
    assert hub_runner.probes and worker_runner.probes
    assert sent == [] and hub_runner.calls == [] and worker_runner.calls == []

    # ... while the steps still say what they would change.
    changes = changes_by_task(records)
    would = {change for task_changes in changes.values() for change in task_changes}
    expected = {
        "install-docker",
        "security-updates",
        "install-nodejs",
        "pip-install",
        "make-cert",
        "write-env",
        "userlist",
        "homes",
        "sync-notebooks",
        "hub-config",
        "nginx",
        "course-folders",
        "start-hub",
        "swarm-join",
        "push-image",
        "letsencrypt",
    }
    if scenario == "pristine":
        expected |= {"install-packages", "swarm-init", "mount-efs"}
    else:
        expected |= {"install-packages", "swarm-nodes"}
    assert {task for task, c in changes.items() if c} >= expected, changes
    if scenario == "pristine":
        assert "initialise the swarm, advertising 10.0.0.5" in would
        assert "join the swarm at 10.0.0.5:2377" in would
        assert "start jupyterhub" in would
        assert "make the proxy's token (it stays on the hub)" in would
        assert "start jupyterhub-proxy" in would
    else:
        assert "leave its active swarm and join the one at 10.0.0.5:2377" in would
        assert "remove 1 stale node entries" in would
        assert "set notebook placement labels" in would
        assert f"install configurable-http-proxy {pins.CONFIGURABLE_HTTP_PROXY} from npm" in would
        assert "restart jupyterhub (its inputs changed)" in would
        assert "restart jupyterhub-proxy (its inputs changed)" in would
    assert any(c.startswith("get a certificate for hub.example.com") for c in would)
