"""Fixtures for the unit tests (helpers live in fakehost.py)."""

import io
import os
from types import SimpleNamespace

import boto3
import pytest
from hypothesis import settings
from moto import mock_aws

from fakehost import FakeRunner, hub_config
from tasks.core import Run, secrets
from tasks.core.host import Host
from tasks.core.recap import Recap

# No example has a time limit: bin/test runs these beside two labs that take the CPUs in turns,
# and speed is measured by bench/, not by a test.
settings.register_profile("hubswarm", deadline=None)
settings.load_profile("hubswarm")

# The hub of the tests that run tasks in this process has a DNS name, as fakehost's has.
os.environ.setdefault("HUBSWARM_DOMAIN", "hub.example.com")


@pytest.fixture(autouse=True)
def _isolated_secrets(monkeypatch):
    """Each test starts with no registered secret (the registry is global)."""
    monkeypatch.setattr(secrets, "_values", set())


@pytest.fixture
def recap_out():
    return io.StringIO()


@pytest.fixture
def test_run(recap_out):
    """The test's one :class:`Run`, its recap printing to ``recap_out``."""
    return Run(config=None, recap=Recap(stream=recap_out))


@pytest.fixture
def make_host(monkeypatch, test_run):
    """Factory: ``make_host(answers, check=False, **config)`` -> (host, runner).

    Every host of a test belongs to its one :class:`Run` (``test_run``); the
    latest call sets the run's check mode and config.
    """

    def factory(answers=None, check=False, user="admin", address="10.0.0.5", config=None, **overrides):
        test_run.check = check
        test_run.config = config or hub_config(**overrides)
        connection = SimpleNamespace(host=address, user=user, port=22)
        host = Host(connection, address, test_run)
        runner = FakeRunner(dict(answers or {}))
        monkeypatch.setattr(host, "_exec", runner)
        monkeypatch.setattr(host, "_probe", runner.probe)
        host.record = test_run.recap.start(host.name, "test-step", check)
        return host, runner

    return factory


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """moto's AWS, in this process, with no real AWS setting able to leak in."""
    for name in (
        "AWS_ENDPOINT_URL_EC2",
        "AWS_ENDPOINT_URL_ROUTE_53",
        "AWS_ENDPOINT_URL_IAM",
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "AWS_CA_BUNDLE",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # moto builds its thousands of sample AMIs per test otherwise; its EC2 takes any ImageId.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield


@pytest.fixture
def ec2(aws):
    """A moto EC2 client in us-west-2."""
    return boto3.client("ec2", region_name="us-west-2")


@pytest.fixture
def route53(aws):
    """A moto Route53 client."""
    return boto3.client("route53", region_name="us-west-2")


@pytest.fixture
def iam(aws):
    """A moto IAM client."""
    return boto3.client("iam", region_name="us-west-2")
