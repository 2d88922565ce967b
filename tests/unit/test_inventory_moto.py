"""EC2 discovery by tags, against moto's in-process EC2 (no network)."""

import pytest

from fakehost import hub_config
from tasks.cli import inventory
from tasks.core import HubswarmError

REGION = "us-west-2"
AMI = "ami-12345678"


def launch(ec2, role, cluster="hubswarm", count=1, name=None):
    tags = [{"Key": "hubswarm:cluster", "Value": cluster}, {"Key": "hubswarm:role", "Value": role}]
    if name:
        tags.append({"Key": "Name", "Value": name})
    reply = ec2.run_instances(
        ImageId=AMI, MinCount=count, MaxCount=count, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )
    return [i["InstanceId"] for i in reply["Instances"]]


def test_filters_by_cluster_role_and_state(ec2):
    [hub_id] = launch(ec2, "hub", name="hub")
    w1 = launch(ec2, "worker", name="w1")
    w2 = launch(ec2, "worker", name="w2")
    stopped = launch(ec2, "worker", name="w0-stopped")
    ec2.stop_instances(InstanceIds=stopped)
    launch(ec2, "worker", cluster="other", name="w-other")
    launch(ec2, "hub", cluster="other", name="hub-other")
    config = hub_config()

    [hub] = inventory.find(config, "hub")
    assert (hub.instance_id, hub.name, hub.role, hub.state) == (hub_id, "hub", "hub", "running")
    assert hub.private_ip and hub.address("private") == hub.private_ip
    workers = inventory.find(config, "worker")
    assert [w.instance_id for w in workers] == w1 + w2  # sorted by Name


def test_address_choice_falls_back_to_private():
    i = inventory.Instance("hub", "i-1", "hub", "10.0.0.5", "", "", "running")
    assert [i.address(c) for c in ("private", "public", "dns")] == ["10.0.0.5"] * 3
    i = inventory.Instance("hub", "i-1", "hub", "10.0.0.5", "54.1.2.3", "ec2-x.compute.amazonaws.com", "running")
    assert [i.address(c) for c in ("public", "dns")] == ["54.1.2.3", "ec2-x.compute.amazonaws.com"]


class PagingClient:
    """The moto client, its describe_instances paginator asked for small pages."""

    def __init__(self, client, page_size):
        self.client, self.page_size, self.pages = client, page_size, 0

    def get_paginator(self, name):
        paginator = self.client.get_paginator(name)
        outer = self

        class Pages:
            def paginate(self, **kwargs):
                for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": outer.page_size}):
                    outer.pages += 1
                    yield page

        return Pages()


def test_every_page_is_read(ec2):
    ids = [i for n in range(12) for i in launch(ec2, "worker", count=5, name=f"w{n:02d}")]
    launch(ec2, "hub", name="hub")
    client = PagingClient(ec2, page_size=5)
    found = inventory.find(hub_config(), "worker", client=client)
    assert len(found) == 60
    assert sorted(i.instance_id for i in found) == sorted(ids)
    assert client.pages >= 3


def test_no_hub(ec2):
    launch(ec2, "worker")
    with pytest.raises(HubswarmError) as err:
        inventory.find(hub_config(cluster="prod"), "hub")
    assert str(err.value) == (
        "no instance found as the hub (tags hubswarm:cluster=prod, hubswarm:role=hub, state running, "
        f"region {REGION}): tag exactly one running instance, or name the hub: -H (--hub where -H names the workers or nodes)"
    )


def test_two_hubs(ec2):
    launch(ec2, "hub", count=2)
    with pytest.raises(HubswarmError) as err:
        inventory.find(hub_config(), "hub")
    message = str(err.value)
    assert message.startswith("2 instances found as the hub (tags hubswarm:cluster=hubswarm, hubswarm:role=hub")
    assert f"region {REGION}" in message and "tag exactly one running instance" in message
    assert "\n" not in message


def test_no_workers(ec2):
    launch(ec2, "hub")
    stopped = launch(ec2, "worker")
    ec2.stop_instances(InstanceIds=stopped)
    with pytest.raises(HubswarmError) as err:
        inventory.find(hub_config(), "worker")
    assert str(err.value) == (
        "no worker found (tags hubswarm:cluster=hubswarm, hubswarm:role=worker, state running, "
        f"region {REGION}): tag the workers, or name them: -H (--workers for deploy)"
    )


def test_discovery_failure_is_one_line():
    class Broken:
        def get_paginator(self, name):
            raise RuntimeError("Unable to locate credentials\nsecond line")

    with pytest.raises(HubswarmError) as err:
        inventory.find(hub_config(), "hub", client=Broken())
    message = str(err.value)
    assert message.startswith("EC2 discovery failed (RuntimeError: Unable to locate credentials")
    assert message.endswith("check AWS credentials and region")


def test_a_run_asks_ec2_once_until_a_task_changes_instances(ec2, monkeypatch):
    """deploy finds the hub for setup-hub, join-workers and start-hub: one client, one
    answer per role; a task that may launch or terminate (aws.with_ec2) forgets it."""
    from tasks.aws import ec2 as aws
    from tasks.core.run import Run

    made, asked, describe = [], [], inventory.describe
    monkeypatch.setattr(inventory, "ec2_client", lambda config: made.append(config) or ec2)
    monkeypatch.setattr(
        inventory, "describe", lambda config, role, *a: asked.append(role) or describe(config, role, *a)
    )
    [hub_id] = launch(ec2, "hub", name="hub")
    run = Run(config=hub_config())
    for _ in range(2):
        assert [i.instance_id for i in inventory.found(run, "hub")] == [hub_id]
    assert asked == ["hub"]
    aws.with_ec2(lambda run, client: client.terminate_instances(InstanceIds=[hub_id]), run)
    with pytest.raises(HubswarmError, match="no instance found as the hub"):
        inventory.found(run, "hub")
    assert asked == ["hub", "hub"] and len(made) == 1
