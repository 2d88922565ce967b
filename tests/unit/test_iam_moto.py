"""hub-role: the hub's instance role, its policy made of what the settings turn on (a table), then
the task against moto's in-process IAM and EC2."""

import io
import json
from functools import partial
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from invoke.exceptions import Exit

from fakehost import ROOT, FakeRunner, hub_config, invocation
from tasks.aws import iam as hub_iam
from tasks.core import Run
from tasks.core.host import Host
from tasks.core.recap import Recap

ROLE = "hubswarm-c1-hub"
ZONE_ARN = "arn:aws:route53:::hostedzone/Z1"


# --- the policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "more, records",
    [
        ({}, ["_acme-challenge.hub.example.com"]),  # the wildcard's challenge is the hub's name's
        ({"single_origin": True}, ["_acme-challenge.hub.example.com"]),
        (
            {"letsencrypt_domains": "WWW.example.com", "static_domain": "example.com"},
            ["_acme-challenge.hub.example.com", "_acme-challenge.www.example.com", "_acme-challenge.example.com"],
        ),
    ],
)
def test_the_challenges_the_hub_may_write_are_those_of_the_certificates_names(more, records):
    config = hub_config(domain="hub.example.com", route53_zone="example.com", **more)
    statement = hub_iam.hub_policy(config, {"zone_id": "Z1"})["Statement"][-1]
    condition = statement["Condition"]["ForAllValues:StringEquals"]
    assert condition["route53:ChangeResourceRecordSetsNormalizedRecordNames"] == records


def test_no_setting_gives_the_hub_aws_work_so_no_policy():
    assert hub_iam.hub_policy(hub_config(route53_zone=""), {}) is None


def test_the_route53_zone_gives_what_certbots_dns_plugin_needs_there_only():
    policy = hub_iam.hub_policy(hub_config(domain="hub.example.com", route53_zone="example.com"), {"zone_id": "Z1"})
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Route53FindZone",
                "Effect": "Allow",
                "Action": ["route53:ListHostedZones", "route53:ListHostedZonesByName"],
                "Resource": "*",
            },
            {
                "Sid": "Route53WaitForChanges",
                "Effect": "Allow",
                "Action": ["route53:GetChange"],
                "Resource": "arn:aws:route53:::change/*",
            },
            {
                "Sid": "Route53ReadZone",
                "Effect": "Allow",
                "Action": ["route53:ListResourceRecordSets"],
                "Resource": ZONE_ARN,
            },
            {
                "Sid": "Route53AcmeChallenge",
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets"],
                "Resource": ZONE_ARN,
                # Only the TXT record of the ACME challenge of the hub's name (and of its wildcard).
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.hub.example.com"],
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                    }
                },
            },
        ],
    }


@pytest.mark.parametrize(
    "bucket, cluster, archives",
    [
        ("my-bucket", "c1", "arn:aws:s3:::my-bucket/hubswarm-c1-*"),
        ("my-bucket/term-1/hub", "c1", "arn:aws:s3:::my-bucket/term-1/hub/hubswarm-c1-*"),
        ("my-bucket/hub", "fall 2026", "arn:aws:s3:::my-bucket/hub/hubswarm-fall 2026-*"),
    ],
)
def test_the_backup_bucket_lets_the_hub_put_encrypted_list_and_prune_its_clusters_archives_only(
    bucket, cluster, archives
):
    policy = hub_iam.hub_policy(hub_config(route53_zone="", backup_bucket=bucket, cluster=cluster), {})
    listed = archives.removeprefix(f"arn:aws:s3:::{bucket.split('/')[0]}/")
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BackupBucketList",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{bucket.split('/')[0]}",
                "Condition": {"StringLike": {"s3:prefix": [listed]}},
            },
            {
                "Sid": "BackupBucketPut",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": archives,
                # Only encrypted at rest; a multipart upload's parts would not carry the header.
                "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
            },
            # (no s3:GetObject: the hub never reads a backup back; this machine does, to restore)
            {"Sid": "BackupBucketPrune", "Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": archives},
        ],
    }


def test_the_readme_prints_the_policy_the_zone_and_the_bucket_give():
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("**What the hub itself may do in AWS.**", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    zone = "Z0123456789ABCDEFGHIJ"
    config = hub_config(
        domain="hub.example.com", route53_zone=zone, backup_bucket="my-bucket/hubswarm", cluster="hubswarm"
    )
    assert json.loads(shown) == hub_iam.hub_policy(config, {"zone_id": zone})


def test_every_grant_is_turned_on_by_a_setting_of_the_table():
    from tasks.settings.table import SETTING

    assert [grant.setting for grant in hub_iam.GRANTS] == ["HUBSWARM_ROUTE53_ZONE", "HUBSWARM_BACKUP_BUCKET"]
    assert all(SETTING[grant.setting].key for grant in hub_iam.GRANTS)


@pytest.mark.parametrize(
    "document, trusted",
    [
        (hub_iam.TRUST, True),
        (
            {"Statement": {"Effect": "Allow", "Principal": {"Service": ["ecs.amazonaws.com", "ec2.amazonaws.com"]}}},
            False,  # no action
        ),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Principal": {"Service": ["ec2.amazonaws.com"]}}
                ]
            },
            True,
        ),
        (
            {
                "Statement": [
                    {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}
                ]
            },
            False,
        ),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "arn:aws:iam::1:root"}}
                ]
            },
            False,
        ),
    ],
    ids=["ours", "no action", "lists", "denied", "another principal"],
)
def test_whether_a_trust_policy_lets_ec2_take_the_role(document, trusted):
    assert hub_iam.trusts_ec2(document) is trusted


# --- against moto -------------------------------------------------------------------------


@pytest.fixture
def zone(route53):
    made = route53.create_hosted_zone(Name="example.com.", CallerReference="public")
    return made["HostedZone"]["Id"].rsplit("/", 1)[-1]


@pytest.fixture
def instance_id(ec2):
    return ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]


def the_hub(run, instance_id):
    """The run's hub, whose instance metadata names ``instance_id``."""
    hub = Host(SimpleNamespace(host="10.0.0.5", user="admin", port=22), "10.0.0.5", run)
    runner = FakeRunner({"imds:instance-id": instance_id})
    hub._exec, hub._probe = runner, runner.probe
    return hub


def hub_role(instance_id, check=False, **settings):
    """One ``fab hub-role`` of cluster c1 against moto (HUBSWARM_ROUTE53_ZONE example.com unless
    ``settings`` say otherwise): its run."""
    config = hub_config(**{"cluster": "c1", "route53_zone": "example.com", **settings})
    run = Run(config, check=check, recap=Recap(stream=io.StringIO()))
    client = partial(boto3.client, region_name="us-west-2")
    hub_iam.in_one_line(hub_iam.make_hub_role, run, client, the_hub(run, instance_id))
    return run


def changes(run):
    return {r.host: (r.status, r.changes) for r in run.recap.records}


def the_profile_of(ec2, instance_id):
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}, {"Name": "state", "Values": ["associated"]}]
    )["IamInstanceProfileAssociations"]
    return [hub_iam.profile_of(association) for association in found]


MADE = [
    f"create role {ROLE}, which only ec2.amazonaws.com may take",
    f"set policy hubswarm-hub of role {ROLE}: Route53FindZone, Route53WaitForChanges, Route53ReadZone, "
    "Route53AcmeChallenge",
    f"create instance profile {ROLE}",
    f"put role {ROLE} in instance profile {ROLE}",
]


def test_the_role_is_predicted_then_made_then_left_alone(iam, ec2, zone, instance_id):
    check = hub_role(instance_id, check=True)
    assert changes(check) == {
        ROLE: ("changed", MADE),
        "10.0.0.5": ("changed", [f"give {instance_id} instance profile {ROLE}"]),
    }
    out = check.recap.stream.getvalue()
    assert f"[{ROLE}] hub-role: would create role {ROLE}" in out
    assert f'+      "Resource": "arn:aws:route53:::hostedzone/{zone}"' in out  # the policy it would set, shown
    assert iam.list_roles()["Roles"] == [] and iam.list_instance_profiles()["InstanceProfiles"] == []
    assert the_profile_of(ec2, instance_id) == []

    first = hub_role(instance_id)
    assert changes(first) == changes(check)
    role = iam.get_role(RoleName=ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"] == hub_iam.TRUST
    assert role["Tags"] == [{"Key": "hubswarm:cluster", "Value": "c1"}]
    policy = iam.get_role_policy(RoleName=ROLE, PolicyName="hubswarm-hub")["PolicyDocument"]
    assert policy == hub_iam.hub_policy(hub_config(route53_zone="example.com"), {"zone_id": zone})
    [held] = iam.get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]["Roles"]
    assert held["RoleName"] == ROLE
    assert the_profile_of(ec2, instance_id) == [ROLE]

    second = hub_role(instance_id)
    assert changes(second) == {ROLE: ("ok", []), "10.0.0.5": ("ok", [])}
    assert f"[{ROLE}] hub-role: ok" in second.recap.stream.getvalue()


def test_what_drifted_is_put_back_alone(iam, ec2, zone, instance_id):
    hub_role(instance_id)
    ecs_only = json.dumps(hub_iam.TRUST).replace("ec2.amazonaws.com", "ecs-tasks.amazonaws.com")
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=ecs_only)
    anything = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    iam.put_role_policy(RoleName=ROLE, PolicyName="hubswarm-hub", PolicyDocument=anything)
    iam.put_role_policy(RoleName=ROLE, PolicyName="operators-own", PolicyDocument=anything)
    iam.create_role(RoleName="other", AssumeRolePolicyDocument=json.dumps(hub_iam.TRUST))
    iam.remove_role_from_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
    iam.add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName="other")
    iam.create_instance_profile(InstanceProfileName="operators")
    [association] = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    ec2.replace_iam_instance_profile_association(
        IamInstanceProfile={"Name": "operators"}, AssociationId=association["AssociationId"]
    )

    run = hub_role(instance_id)
    assert changes(run) == {
        ROLE: (
            "changed",
            [
                f"let ec2.amazonaws.com take role {ROLE} (its trust policy does not)",
                MADE[1],
                f"take role other out of instance profile {ROLE}",
                MADE[3],
            ],
        ),
        "10.0.0.5": ("changed", [f"give {instance_id} instance profile {ROLE} in place of operators"]),
    }
    assert the_profile_of(ec2, instance_id) == [ROLE]
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["hubswarm-hub", "operators-own"]  # theirs stays
    assert changes(hub_role(instance_id)) == {ROLE: ("ok", []), "10.0.0.5": ("ok", [])}


def test_without_a_setting_that_needs_one_no_role_is_made_and_a_former_policy_goes(iam, ec2, zone, instance_id):
    run = hub_role(instance_id, route53_zone="")
    assert run.recap.records == []
    assert run.recap.stream.getvalue() == (
        "hub-role: the hub has no AWS work of its own (HUBSWARM_ROUTE53_ZONE or HUBSWARM_BACKUP_BUCKET gives it "
        "some): it needs no role\n"
    )
    assert iam.list_roles()["Roles"] == []

    hub_role(instance_id)
    check = hub_role(instance_id, check=True, route53_zone="")
    assert changes(check) == {ROLE: ("changed", [f"remove policy hubswarm-hub from role {ROLE}"])}
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["hubswarm-hub"]
    hub_role(instance_id, route53_zone="")
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == []
    assert hub_role(instance_id, route53_zone="").recap.records == []


@pytest.mark.parametrize(
    "instance_id, settings, problem",
    [
        ("", {}, "10.0.0.5 has no EC2 instance id in its instance metadata: its AWS permissions come from"),
        ("i-1", {"route53_zone": "example.org"}, "HUBSWARM_ROUTE53_ZONE: no public hosted zone named example.org"),
        ("i-1", {"cluster": "term 1"}, "HUBSWARM_CLUSTER: 'term 1' cannot name the hub's IAM role hubswarm-term 1-hub"),
    ],
    ids=["not an EC2 instance", "no such zone", "a cluster no role can be named after"],
)
def test_a_problem_is_one_line_and_makes_nothing(iam, zone, instance_id, settings, problem):
    with pytest.raises(Exit) as stopped:
        hub_role(instance_id, **settings)
    message = str(stopped.value.message)
    assert message.startswith(problem) and "\n" not in message
    assert iam.list_roles()["Roles"] == []


def test_a_cluster_no_role_can_be_named_after_needs_none_without_a_setting(iam):
    run = hub_role("i-1", cluster="term 1", route53_zone="")
    assert run.recap.stream.getvalue().startswith("hub-role: the hub has no AWS work of its own")


def test_a_new_instance_profile_is_given_once_ec2_knows_it(monkeypatch):
    monkeypatch.setattr(hub_iam, "PROFILE_DELAY", 0)
    refusal = {"Error": {"Code": "InvalidParameterValue", "Message": "Invalid IAM Instance Profile name"}}
    asked = []

    def associate(**arguments):
        asked.append(arguments)
        if len(asked) < 3:
            raise ClientError(refusal, "AssociateIamInstanceProfile")
        return "given"

    assert hub_iam.until_ec2_knows_it(associate, InstanceId="i-1") == "given" and len(asked) == 3

    monkeypatch.setattr(hub_iam, "PROFILE_ATTEMPTS", 2)
    asked.clear()
    with pytest.raises(ClientError):
        hub_iam.until_ec2_knows_it(associate, InstanceId="i-1")
    assert len(asked) == 2

    def denied(**arguments):
        asked.append(arguments)
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "AssociateIamInstanceProfile")

    asked.clear()
    with pytest.raises(ClientError):
        hub_iam.until_ec2_knows_it(denied, InstanceId="i-1")
    assert len(asked) == 1  # asked once: only EC2 not knowing the profile yet is waited out


# --- in setup-hub and deploy ----------------------------------------------------------------


def test_the_role_is_made_once_a_run_and_only_when_a_setting_needs_it(monkeypatch):
    made = []
    monkeypatch.setattr(hub_iam, "make_hub_role", lambda run, client, hub: made.append(run.config.route53_zone))
    run = Run(hub_config(route53_zone=""), recap=Recap(stream=io.StringIO()))
    hub_iam.hub_role_if_granted(invocation(run, "10.0.0.5"))
    assert made == []

    run = Run(hub_config(route53_zone="example.com"), recap=Recap(stream=io.StringIO()))
    for _ in range(2):  # fab hub-role setup-hub, or deploy's setup-hub
        hub_iam.hub_role_if_granted(invocation(run, "10.0.0.5"))
    assert made == ["example.com"]


def test_a_hub_not_found_is_its_own_line(monkeypatch):
    from tasks.core import fail

    monkeypatch.setattr(hub_iam, "hub_for", lambda c: fail("no instance found as the hub (tags ...)"))
    run = Run(hub_config(route53_zone="example.com"), recap=Recap(stream=io.StringIO()))
    with pytest.raises(Exit) as stopped:
        hub_iam.hub_role.body(invocation(run))
    assert stopped.value.message == "no instance found as the hub (tags ...)"
