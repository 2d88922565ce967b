"""One probe command per host: the facts that tell a host's family (os-release, dnf5)
are probed in the batch with every other fact, so listing a step's probes costs no
command of its own, and a converged host of any family answers a run in one command."""

import hashlib

import pytest

from fakehost import (
    AMAZON_2023,
    DEBIAN_12,
    FEDORA_41,
    UBUNTU_2404,
    chp_info,
    docker_settings_done,
    unit_info,
    venv_info,
)
from tasks import pins
from tasks.cluster import workers
from tasks.core.run import prefetch, run_steps
from tasks.hub import nginx, nodejs, python_env
from tasks.node import docker, packages, updates
from tasks.ops import workflows

HOSTS = [
    pytest.param({"os-release": DEBIAN_12}, id="debian-12"),
    pytest.param({"os-release": UBUNTU_2404}, id="ubuntu-24.04"),
    pytest.param({"os-release": AMAZON_2023}, id="amazon-linux-2023"),
    pytest.param({"os-release": FEDORA_41, "dnf5": "/usr/bin/dnf5"}, id="fedora-41"),
]


@pytest.mark.parametrize("answers", HOSTS)
@pytest.mark.parametrize("steps", [workflows.HUB_SETUP, workers.WORKER_SETUP], ids=["setup-hub", "worker-setup"])
def test_listing_the_probes_probes_nothing(make_host, answers, steps):
    host, runner = make_host(answers)
    for step in steps:
        step.probes(host)
    assert runner.probes == []
    prefetch(host, steps)
    [batch] = runner.probes
    assert {"os-release", "dnf5"} <= set(batch)


def converged(make_host, answers):
    """The answers of a host whose packages, Docker, updater, Node.js, venv and nginx site
    are as hubswarm left them, on the host's own family."""
    host, _ = make_host(answers)
    family, updater = packages.family_of(host), updates.updater_of(host)
    site, link, _ = nginx.site_paths(family)
    done = {
        **answers,
        packages.installed_fact(packages.HUB_PACKAGES).key: " ".join(packages.HUB_PACKAGES[family]),
        packages.installed_fact(docker.DOCKER_PACKAGES).key: " ".join(docker.DOCKER_PACKAGES[family]),
        packages.installed_fact(updates.UPDATER_PACKAGES).key: updater.package,
        "unit:docker": unit_info("enabled", "active"),
        "groups:admin": "admin docker",
        "command:docker": "/usr/bin/docker",
        **docker_settings_done(),
        "nodejs-version": "v20.11.1",
        "npm-path": "/usr/bin/npm",
        "chp-version": chp_info(pins.CONFIGURABLE_HTTP_PROXY),
        "pythons": "python3 3 9\npython3.11 3 11\n" if family == packages.DNF else "python3 3 11\n",
        "venv:/opt/jupyterhub": venv_info(pins.HUB_REQUIREMENTS),
        "hub-package:/opt/jupyterhub": "/opt/jupyterhub/lib/python3.11/site-packages\n"
        + python_env.package_archive()[0],
        f"dir:{nginx.ACME_ROOT}": "755 root root",
        f"file:{nginx.DHPARAM}": "abc 644 root root",
        "unit:nginx": unit_info("enabled", "active"),
        f"content:{updates.RELEASEVER}": "latest\n",
        **{f"unit:{timer}": unit_info("enabled", "active") for timer in updater.timers},
    }
    for path, text in [
        (site, nginx.render_site(host.config, "hub.example.com")),
        (updater.config, updates.config_text(updater, enabled=True)),
    ]:
        done[f"file:{path}"] = f"{hashlib.sha256(text.encode()).hexdigest()} 644 root root"
    if link:
        done[f"link:{link}"] = site
    return done


@pytest.mark.parametrize("answers", HOSTS)
def test_a_converged_host_of_any_family_answers_in_one_command(make_host, answers):
    steps = [
        packages.install_hub_packages,
        docker.install_docker,
        updates.security_updates,
        nodejs.install_nodejs,
        python_env.pip_install,
        nginx.nginx,
    ]
    host, runner = make_host(converged(make_host, answers))
    assert run_steps([host], steps) == []
    assert [c for r in host.run.recap.records for c in r.changes] == []
    assert len(runner.probes) == 1 and runner.calls == []
