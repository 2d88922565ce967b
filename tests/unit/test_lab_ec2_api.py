"""The lab's EC2 API (tasks/lab/ec2_api.py): moto's app behind the lab's follower, called in-process.

boto3 requests go straight into the WSGI app (botocore's before-send hook, no socket); Docker is
replaced by recorders of the lab hosts the follower makes and removes. The lab's real EC2 API on
its port is never asked: the lab's port is pointed at one nothing listens on.
"""

import io
import json
import os
import socket
from types import SimpleNamespace
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from invoke.exceptions import Exit
from moto.core.botocore_stubber import MockRawResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from fakehost import hub_config, invocation
from tasks import lab
from tasks.aws import ec2 as aws
from tasks.core import HubswarmError, Run
from tasks.core.recap import Recap
from tasks.lab import ec2 as lab_ec2
from tasks.lab import ec2_api

FIRST_FREE_IP = "10.213.0.4"  # moto's first address in the lab subnet after AWS's reserved .1-.3


@pytest.fixture
def hosts(monkeypatch):
    """The lab's containers as the follower sees them (a hub, two workers and a spare), with
    Docker and the metadata files replaced by recorders: .made, .removed, .identities;
    set .boot to a function that raises to make a boot fail."""
    state = SimpleNamespace(made=[], removed=[], identities={}, boot=lambda host: None)
    state.containers = {
        name: {"container": f"hubswarm-lab-{name}", "state": "running", "ip": ip, "role": role}
        for name, ip, role in [
            ("hub", "10.213.0.10", "hub"),
            ("worker1", "10.213.0.11", "worker"),
            ("worker2", "10.213.0.12", "worker"),
            ("spare1", "10.213.0.101", "spare"),
        ]
    }

    def create(host, ip, role):
        state.made.append((host, ip, role))
        state.containers[host] = {"container": f"hubswarm-lab-{host}", "state": "running", "ip": ip, "role": role}

    def remove(host):
        state.removed.append(host)
        state.containers.pop(host, None)

    def set_identity(ip, items, replace=False):
        state.identities[ip] = items

    monkeypatch.setattr(lab, "lab_containers", lambda: {host: dict(info) for host, info in state.containers.items()})
    monkeypatch.setattr(lab, "_create_host", create)
    monkeypatch.setattr(lab, "_remove_container", remove)
    monkeypatch.setattr(lab, "_wait_booted", lambda host, seconds: state.boot(host))
    monkeypatch.setattr(lab, "_check_sealed", lambda host: None)
    monkeypatch.setattr(lab, "_write_known_hosts", lambda: None)
    monkeypatch.setattr(lab.lab_imds, "set_identity", set_identity)
    monkeypatch.setattr(lab.lab_imds, "forget", lambda *ips: [state.identities.pop(ip, None) for ip in ips])
    state.zones = []  # each time the lab's DNS was given the zones' records
    monkeypatch.setattr(lab.lab_imds, "write_zones", state.zones.append)
    state.roles = []  # each time the metadata stand-in was given the instances' roles
    monkeypatch.setattr(lab.lab_imds, "write_roles", state.roles.append)
    return state


def in_process(app, service, sent=None):
    """A boto3 client of SERVICE whose requests go straight into the WSGI APP (werkzeug's test
    client; botocore's before-send hook, no socket); SENT(body) sees each request's body."""
    client = boto3.client(
        service,
        region_name=lab_ec2.REGION,
        endpoint_url="http://lab-ec2-api.invalid",
        **lab_ec2.FAKE_CREDENTIALS,
    )

    def send(request, **kwargs):
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        body = request.body or b""
        if sent:
            sent(body.decode() if isinstance(body, bytes) else body)
        url = urlsplit(request.url)
        answer = app.open(url.path, query_string=url.query, method=request.method, headers=headers, data=body)
        return AWSResponse(request.url, answer.status_code, dict(answer.headers), MockRawResponse(answer.data))

    client.meta.events.register("before-send", send)
    return client


@pytest.fixture
def api(monkeypatch, tmp_path, hosts):
    """A boto3 EC2 client of the lab's EC2 API, in-process, on a fresh moto; .requests counts the
    Actions; .route53: a Route53 client of the same API."""
    for name in (
        "AWS_ENDPOINT_URL_EC2",
        "AWS_ENDPOINT_URL_ROUTE_53",
        "AWS_ENDPOINT_URL_IAM",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "AWS_CA_BUNDLE",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with socket.socket() as unused:  # the real lab's API is never reached, even by mistake
        unused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HUBSWARM_LAB_MOTO_PORT", str(unused.getsockname()[1]))
    app = Client(ec2_api.Follower(DomainDispatcherApplication(create_backend_app)))
    requests = []

    def action(body):
        requests.append(dict(p.split("=", 1) for p in body.split("&"))["Action"])

    app.post("/moto-api/reset")
    client = in_process(app, "ec2", action)
    client.requests = requests
    client.app = app
    client.route53 = in_process(app, "route53")
    client.iam = in_process(app, "iam")
    monkeypatch.setattr(lab_ec2, "client", lambda service="ec2": {"ec2": client, "route53": client.route53}[service])
    monkeypatch.setattr(lab_ec2, "reset_moto", lambda: app.post("/moto-api/reset"))
    yield client
    app.post("/moto-api/reset")


def seeded(api, workers=2):
    """The lab's EC2 seeded as ensure_lab seeds it; the lab subnet's id."""
    return lab_ec2.ensure_instances(lab.fleet(workers))


def scale_launch(api, subnet_id, workers):
    """The EC2 side of `fab scale --workers N` in the lab (its launch, without waiting for SSH)."""
    config = hub_config(
        cluster=lab_ec2.CLUSTER,
        region=lab_ec2.REGION,
        subnet_id=subnet_id,
        ami=lab_ec2.IMAGE_ID,
        key_name=lab_ec2.KEY_NAME,
        instance_type="t3.medium",
        launch_timeout="30",
    )
    return aws.launch_cluster(Run(config, recap=Recap(stream=io.StringIO())), api, workers, wait_ssh=False)


def instance(api, instance_id):
    return api.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def test_the_lab_seeding_makes_no_host(api, hosts):
    seeded(api)
    assert hosts.made == [] and hosts.removed == []
    assert sorted(lab_ec2.lab_instances()) == ["lab-hub", "lab-worker1", "lab-worker2"]


def test_a_scale_launch_makes_a_worker_at_the_ip_moto_gave(api, hosts):
    subnet_id = seeded(api)
    [launched] = scale_launch(api, subnet_id, 3)
    raw = instance(api, launched)
    assert {t["Key"]: t["Value"] for t in raw["Tags"]}["Name"] == "lab-worker3"
    assert raw["PrivateIpAddress"] == FIRST_FREE_IP  # not worker3's fixed 10.213.0.13
    assert hosts.made == [("worker3", FIRST_FREE_IP, "worker")]
    assert hosts.identities[FIRST_FREE_IP]["instance-id"] == launched
    assert hosts.identities[FIRST_FREE_IP]["local-ipv4"] == FIRST_FREE_IP
    assert scale_launch(api, subnet_id, 3) == [] and len(hosts.made) == 1


def test_another_clusters_launch_makes_no_host(api, hosts):
    subnet_id = seeded(api)
    tags = [{"Key": "Name", "Value": "other-worker2"}, {"Key": "hubswarm:cluster", "Value": "other"}]
    tags.append({"Key": "hubswarm:role", "Value": "worker"})
    api.run_instances(
        ImageId=lab_ec2.IMAGE_ID,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    assert hosts.made == []


def test_a_termination_removes_the_workers_host_never_the_hubs(api, hosts):
    subnet_id = seeded(api)
    [launched] = scale_launch(api, subnet_id, 3)
    api.terminate_instances(InstanceIds=[launched])
    assert hosts.removed == ["worker3"] and "worker3" not in hosts.containers
    assert FIRST_FREE_IP not in hosts.identities
    assert instance(api, launched)["State"]["Name"] == "terminated"

    hub_id = lab_ec2.lab_instances()["lab-hub"]["InstanceId"]
    api.terminate_instances(InstanceIds=[hub_id])
    assert hosts.removed == ["worker3"] and "hub" in hosts.containers


def test_a_host_that_does_not_boot_is_an_error_and_leaves_no_instance(api, hosts):
    subnet_id = seeded(api)

    def boot(host):
        raise Exit(f"lab: hubswarm-lab-{host} did not boot cleanly (systemd: starting)", code=1)

    hosts.boot = boot
    api.requests.clear()
    with pytest.raises(HubswarmError) as failed:
        scale_launch(api, subnet_id, 3)
    assert "LabHostFailed" in str(failed.value) and "did not boot cleanly" in str(failed.value)
    assert api.requests.count("RunInstances") == 1  # answered at once, and not retried
    assert hosts.made == [("worker3", FIRST_FREE_IP, "worker")] and hosts.removed == ["worker3"]
    assert hosts.identities == {}
    [gone] = [
        i
        for r in api.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["PrivateIpAddress"] == FIRST_FREE_IP
    ]
    assert gone["State"]["Name"] == "terminated"


def test_an_ip_a_lab_host_holds_is_refused(api, hosts):
    subnet_id = seeded(api)
    hosts.containers["spare4"] = {
        "container": "hubswarm-lab-spare4",
        "state": "running",
        "ip": FIRST_FREE_IP,
        "role": "spare",
    }
    with pytest.raises(HubswarmError, match=f"lab host spare4 is at {FIRST_FREE_IP}"):
        scale_launch(api, subnet_id, 3)
    assert hosts.made == [] and hosts.removed == []
    assert lab_ec2.lab_instances().keys() == {"lab-hub", "lab-worker1", "lab-worker2"}


@pytest.mark.parametrize(
    "host, ip, refusal",
    [
        ("gpu", "10.213.0.5", "named lab-gpu, not lab-workerN"),
        ("worker3", "10.213.0.2", "where no lab host can be"),
        ("worker3", "172.31.0.9", "where no lab host can be"),
        ("worker1", "10.213.0.5", "lab host worker1 is at 10.213.0.11"),
    ],
)
def test_follow_launch_refuses_what_the_lab_cannot_make(hosts, host, ip, refusal):
    with pytest.raises(Exit, match=refusal):
        lab.follow_launch(host, ip, "i-0123")
    assert hosts.made == [] and hosts.identities == {}


def test_ensure_instances_takes_back_what_scale_left(api, hosts):
    subnet_id = seeded(api)
    scale_launch(api, subnet_id, 3)
    seeded(api)  # the scaled worker is terminated, and its host goes with it
    assert hosts.removed == ["worker3"]
    assert sorted(lab_ec2.lab_instances()) == ["lab-hub", "lab-worker1", "lab-worker2"]

    seeded(api, 3)
    seeded(api, 2)
    seeded(api, 3)  # worker3's fixed IP is held by its terminated instance: moto is seeded again
    ips = {name: i["PrivateIpAddress"] for name, i in lab_ec2.lab_instances().items()}
    assert ips == {f"lab-{host}": ip for host, ip in lab.fleet(3).items()}


def test_the_api_says_what_it_runs(api):
    said = json.loads(api.app.get(lab_ec2.API_PATH).data)
    assert said == {**lab_ec2.api_code(), "pid": said["pid"]}
    assert said["project"] == str(lab.LAB_DIR.parent)


def test_the_pid_listening_on_a_port_is_found():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert lab_ec2._listener_pid(listening.getsockname()[1]) == os.getpid()


# --- Route53 at the same address, and the lab's DNS following its records ---------------------


def upsert(route53, zone_id, name, address):
    record = {"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": address}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]}
    )


def test_the_lab_zone_is_made_once_and_the_dns_learns_of_it(api, hosts):
    zone_id = lab_ec2.ensure_hosted_zone(lab.LAB_ZONE)
    assert lab_ec2.ensure_hosted_zone(lab.LAB_ZONE) == zone_id
    [zone] = api.route53.list_hosted_zones()["HostedZones"]
    assert (zone["Name"], zone["Config"]["PrivateZone"]) == ("lab.example.", False)
    assert hosts.zones[-1] == {"lab.example": {}}  # no A record: the lab's DNS keeps its fixed rule


def test_the_dns_is_given_every_change_of_records_and_the_reset(api, hosts):
    zone_id = lab_ec2.ensure_hosted_zone(lab.LAB_ZONE)
    upsert(api.route53, zone_id, f"*.{lab.LAB_DOMAIN}", "10.213.0.10")
    upsert(api.route53, zone_id, f"{lab.LAB_DOMAIN}.", "10.213.0.11")
    assert hosts.zones[-1] == {
        "lab.example": {"A": {"hub.lab.example": ["10.213.0.11"], "*.hub.lab.example": ["10.213.0.10"]}}
    }

    given = len(hosts.zones)
    api.route53.list_resource_record_sets(HostedZoneId=zone_id)
    api.describe_instances()
    assert len(hosts.zones) == given  # reads change nothing

    api.app.post("/moto-api/reset")
    assert hosts.zones[-1] == {}


def test_the_dns_is_given_the_txt_records_of_acme_challenges(api, hosts):
    """What certbot's dns-route53 plugin writes for the hub's name and its wildcard (two values of
    one record, then one, then none), as the lab's DNS answers them to the lab's ACME server."""
    zone_id = lab_ec2.ensure_hosted_zone(lab.LAB_ZONE)
    name = f"_acme-challenge.{lab.LAB_DOMAIN}"

    def change(action, *values):
        record = {"Name": name, "Type": "TXT", "TTL": 10, "ResourceRecords": [{"Value": v} for v in values]}
        api.route53.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record}]}
        )

    upsert(api.route53, zone_id, f"*.{lab.LAB_DOMAIN}", "10.213.0.10")
    change("UPSERT", '"token-1"', '"token-2" "more \\"quoted\\""')
    assert hosts.zones[-1] == {
        "lab.example": {
            "A": {"*.hub.lab.example": ["10.213.0.10"]},
            "TXT": {name: [["token-1"], ["token-2", 'more "quoted"']]},
        }
    }
    change("UPSERT", '"token-2"')
    assert hosts.zones[-1]["lab.example"]["TXT"] == {name: [["token-2"]]}
    change("DELETE", '"token-2"')
    assert hosts.zones[-1] == {"lab.example": {"A": {"*.hub.lab.example": ["10.213.0.10"]}}}


@pytest.mark.parametrize(
    "value, strings",
    [
        ('"abc"', ["abc"]),
        ('"a" "b"', ["a", "b"]),
        ('"say \\"hi\\""', ['say "hi"']),
        ('"back\\\\slash"', ["back\\slash"]),
        ('"\\101\\102"', ["AB"]),  # octal, as Route53 escapes what is not printable
        ('""', [""]),
    ],
)
def test_route53s_txt_values_as_strings(value, strings):
    assert ec2_api.txt_strings(value) == strings


def test_a_dns_that_cannot_follow_is_an_error_of_the_change(api, hosts, monkeypatch):
    from botocore.exceptions import ClientError

    zone_id = lab_ec2.ensure_hosted_zone(lab.LAB_ZONE)

    def full(zones):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lab.lab_imds, "write_zones", full)
    with pytest.raises(ClientError) as failed:
        upsert(api.route53, zone_id, lab.LAB_DOMAIN, "10.213.0.10")
    assert failed.value.response["Error"]["Code"] == "LabDnsFailed"
    assert "the lab could not follow Route53's records: [Errno 28] No space left on device" in str(failed.value)


def test_dns_records_through_the_lab_give_the_lab_dns_the_hubs_records(api, hosts, monkeypatch):
    """dns-records against the lab's API, as a run of the lab's settings makes it (its client
    aside: boto3's AWS_ENDPOINT_URL_ROUTE_53 points a real run's at the lab's port)."""
    from tasks.aws import route53 as dns
    from tasks.cli import inventory

    lab_ec2.ensure_hosted_zone(lab.LAB_ZONE)
    monkeypatch.setattr(inventory, "aws_client", lambda config, service: api.route53)
    hub = SimpleNamespace(name="10.213.0.10", fact=lambda fact: "10.213.0.10")  # its public-ipv4, as the test gives it
    monkeypatch.setattr(dns, "hub_for", lambda c: hub)
    for _ in range(2):
        run = Run(hub_config(domain=lab.LAB_DOMAIN, route53_zone=lab.LAB_ZONE), recap=Recap(stream=io.StringIO()))
        dns.hub_records(invocation(run))
    assert [r.status for r in run.recap.records] == ["ok"]
    assert hosts.zones[-1] == {
        "lab.example": {"A": {"hub.lab.example": ["10.213.0.10"], "*.hub.lab.example": ["10.213.0.10"]}}
    }


# --- IAM at the same address, and the metadata stand-in following the instances' roles --------


def test_the_stand_in_is_given_the_role_each_instances_profile_holds(api, hosts):
    """hub-role against the lab's API, as a run of the lab's settings makes it (its clients aside:
    boto3's AWS_ENDPOINT_URL_IAM points a real run's at the lab's port), then what else may change
    an instance's role."""
    from tasks.aws import iam as hub_iam

    seeded(api)
    lab_ec2.ensure_hosted_zone(lab.LAB_ZONE)
    hub_id = lab_ec2.lab_instances()["lab-hub"]["InstanceId"]
    config = hub_config(cluster=lab_ec2.CLUSTER, domain=lab.LAB_DOMAIN, route53_zone=lab.LAB_ZONE)
    clients = {"ec2": api, "iam": api.iam, "route53": api.route53}
    hub = SimpleNamespace(name="10.213.0.10", fact=lambda fact: hub_id)  # its instance-id
    hub_iam.make_hub_role(Run(config, recap=Recap(stream=io.StringIO())), clients.get, hub)
    [profile] = api.iam.list_instance_profiles()["InstanceProfiles"]
    held = {"InstanceProfileArn": profile["Arn"], "InstanceProfileId": profile["InstanceProfileId"]}
    assert hosts.roles[-1] == {hub_id: {**held, "RoleName": "hubswarm-lab-hub"}}

    given = len(hosts.roles)
    api.describe_iam_instance_profile_associations()
    api.iam.get_instance_profile(InstanceProfileName="hubswarm-lab-hub")
    assert len(hosts.roles) == given  # reads change nothing

    api.iam.remove_role_from_instance_profile(InstanceProfileName="hubswarm-lab-hub", RoleName="hubswarm-lab-hub")
    assert hosts.roles[-1] == {}  # a profile that holds no role gives none
    api.iam.create_role(RoleName="another", AssumeRolePolicyDocument=json.dumps(hub_iam.TRUST))
    api.iam.add_role_to_instance_profile(InstanceProfileName="hubswarm-lab-hub", RoleName="another")
    assert hosts.roles[-1] == {hub_id: {**held, "RoleName": "another"}}

    [association] = api.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    api.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    assert hosts.roles[-1] == {}


@pytest.mark.parametrize("action", ["AssociateIamInstanceProfile", "AddRoleToInstanceProfile"])
def test_a_stand_in_that_cannot_follow_is_an_error_of_the_change(api, hosts, monkeypatch, action):
    from botocore.exceptions import ClientError

    seeded(api)
    hub_id = lab_ec2.lab_instances()["lab-hub"]["InstanceId"]
    api.iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    api.iam.create_instance_profile(InstanceProfileName="r")

    def full(roles):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lab.lab_imds, "write_roles", full)
    with pytest.raises(ClientError) as failed:
        if action == "AddRoleToInstanceProfile":  # IAM's, whose errors read otherwise than EC2's
            api.iam.add_role_to_instance_profile(InstanceProfileName="r", RoleName="r")
        else:
            api.associate_iam_instance_profile(IamInstanceProfile={"Name": "r"}, InstanceId=hub_id)
    assert failed.value.response["Error"]["Code"] == "LabRolesFailed"
    assert f"the lab could not follow {action}: [Errno 28] No space left on device" in str(failed.value)
