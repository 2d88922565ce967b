"""Fixtures for tests that run against the lab (tasks/lab.py): real hosts, real SSH, moto EC2.

The `lab` fixture brings the lab up once per session (fast when it is already up). When the lab
cannot start, lab tests are skipped with the reason, or fail under CI=true.

Tests marked `lab_teardown` run after every other test of the session (they destroy the lab).
"""

import os

import paramiko
import pytest
from fabric import Connection

from tasks import lab as lab_module


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_teardown: destroys the lab; runs after all other tests")


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
        ip, user="admin", connect_timeout=10,
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
