"""Fixtures for tests that run against the lab (tasks/lab/): real hosts, real SSH, moto EC2.

The `lab` fixture brings the lab up once per session (fast when it is already up). When the lab
cannot start, lab tests are skipped with the reason, or fail under CI=true.

Tests marked `lab_teardown` run after every other test of the session (they destroy the lab).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest
from dotenv import dotenv_values
from fabric import Connection

from browsing import browser  # noqa: F401 - the session's browser, a fixture
from fabrun import fab
from tasks import lab as lab_module


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_teardown: destroys the lab; runs after all other tests")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (item.rep_call...) for fixtures' teardown; a
    failure of a test on the lab shows the hub's last log lines (the lab's secrets masked)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.failed and "lab" in item.fixturenames:
        report.sections.append(("the hub's journal, last lines", hub_journal()))


def hub_journal(lines=60):
    """The lab hub's jupyterhub journal, every secret of the lab masked ("" when there is no hub)."""
    try:
        text = lab_module.docker(
            "exec",
            f"{lab_module.CONTAINER_PREFIX}hub",
            "journalctl",
            "-u",
            "jupyterhub",
            "-n",
            str(lines),
            "--no-pager",
            "-o",
            "cat",
            check=False,
            timeout=20,
        )
    except Exception as error:  # noqa: BLE001 - a diagnostic never hides the failure itself
        return f"(no journal: {error!r})"
    env = dotenv_values(lab_module.ENV_PATH) if lab_module.ENV_PATH.is_file() else {}
    for key, value in env.items():
        if value and any(word in key for word in ("PASSWORD", "TOKEN", "SECRET")):
            text = text.replace(value, "********")
    return text


def pytest_collection_modifyitems(session, config, items):
    """Move tests marked lab_teardown to the end of the whole session."""
    items.sort(key=lambda item: item.get_closest_marker("lab_teardown") is not None)


@pytest.fixture(scope="session")
def lab():
    """The lab, up with a hub and 2 workers: a tasks.lab.LabInfo."""
    try:
        return lab_module.ensure_lab(workers=2)
    except Exception as error:  # noqa: BLE001 - any failure to start means "no lab here"
        reason = f"lab cannot start: {getattr(error, 'message', None) or error!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def lab_connection(lab, ip):
    """Fabric Connection to lab host IP as admin, with the lab key and strict host key checking."""
    connection = Connection(
        ip,
        user="admin",
        connect_timeout=10,
        connect_kwargs={"key_filename": str(lab.key_path), "look_for_keys": False, "allow_agent": False},
    )
    connection.config.run.in_stream = False
    connection.client.load_host_keys(str(lab.known_hosts_path))
    connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return connection


@pytest.fixture
def connect(lab):
    """Factory: connect(ip) -> lab_connection(lab, ip); connections are closed after the test."""
    connections = []

    def factory(ip):
        connection = lab_connection(lab, ip)
        connections.append(connection)
        return connection

    yield factory
    for connection in connections:
        connection.close()


@dataclass
class LabUsers:
    """The lab userlist and the shared passwords lab.up made (secrets: never in repr)."""

    path: Path
    admin: str
    student: str
    password: str = field(repr=False)
    admin_password: str = field(repr=False)

    @property
    def secrets(self):
        return [self.password, self.admin_password]


@pytest.fixture(scope="session")
def lab_users(lab):
    path = Path(lab.env["HUBSWARM_USERLIST"])
    names = [
        (line.split()[0].split("@")[0], line.split()[1:]) for line in path.read_text().splitlines() if line.strip()
    ]
    return LabUsers(
        path=path,
        admin=next(name for name, roles in names if roles == ["admin"]),
        student=next(name for name, roles in names if not roles),
        password=lab.env["HUBSWARM_HUB_PASSWORD"],
        admin_password=lab.env["HUBSWARM_HUB_ADMIN_PASSWORD"],
    )


class FirstDeploy:
    """``first_deploy(**fab_options)``: `fab deploy`, hosts found by tag, on a pristine lab: the
    hub and every worker made again unless the lab just made them, or a test left them deployed
    by the current project (:meth:`left_current`). The whole cluster in one command, as a user's
    first run does it (the workers get ready while the hub is set up); returns its FabRun.

    HUBSWARM_TEST_REUSE=1 keeps the hosts as they are (faster when working on tests).
    """

    def __init__(self, lab):
        self.lab = lab
        self.as_they_are = set(lab.fresh)

    def __call__(self, **fab_options):
        if os.environ.get("HUBSWARM_TEST_REUSE") != "1":
            lab_module.recreate_hosts(*(name for name in self.lab.hosts if name not in self.as_they_are))
        self.as_they_are.clear()
        run = fab("deploy", **fab_options)
        assert run.code == 0, run.output
        (lab_module.LAB_DIR / "first-deploy-done").touch()  # bin/test's unit tests start now
        return run

    def left_current(self):
        """Every lab host is as a first deploy of the current project leaves it: the next one keeps them."""
        self.as_they_are.update(self.lab.hosts)


@pytest.fixture(scope="session")
def first_deploy(lab):
    return FirstDeploy(lab)


@pytest.fixture(scope="session")
def deploy_run(first_deploy):
    """The FabRun of the first deploy of the current project (:class:`FirstDeploy`)."""
    return first_deploy()


@pytest.fixture(scope="session")
def hub_run(deploy_run):
    """The first run that set up the pristine hub (and started it): :func:`deploy_run`."""
    return deploy_run


@pytest.fixture
def fresh_host(lab):
    """A pristine lab host, not in EC2, thrown away after the test: its IP."""
    ip = lab_module.spare_host("spare1", f"{lab_module.IP_PREFIX}101")
    yield ip
    lab_module.remove_host("spare1")


@pytest.fixture(scope="session")
def cluster_run(deploy_run):
    """The first run that joined the pristine workers, found by tag: :func:`deploy_run`."""
    return deploy_run
