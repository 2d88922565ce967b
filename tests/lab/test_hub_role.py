"""The hub's instance role (fab hub-role), with the lab's Route53 zone: the lab's moto holds the
role, and the lab's metadata stand-in hands the hub its credentials, as EC2 does.

fab hub-role first predicts (check mode) the role, its policy, its instance profile and the hub's
instance given that profile, and makes none of them; then makes them; a second run changes
nothing. On the hub, an AWS call made with no credentials in its environment, only what the
deployment wrote in /etc/hubswarm/aws.env (the region, and the lab's EC2 API on the lab network as
the endpoint), finds none before the hub has the role, and succeeds with the role's after.
"""

import io
import json
import shlex

import pytest

from fabrun import fab, lab_aws
from tasks.aws.iam import POLICY_NAME
from tasks.hub.aws_env import AWS_ENV
from tasks.lab import LAB_DOMAIN, LAB_ZONE
from tasks.lab import ec2 as lab_ec2
from tasks.lab import imds as lab_imds

ROLE = f"hubswarm-{lab_ec2.CLUSTER}-hub"
ZONE_KEPT = {"HUBSWARM_DOMAIN": LAB_DOMAIN, "HUBSWARM_ROUTE53_ZONE": LAB_ZONE}
# The hub venv's pinned uv (pip-install) makes a throwaway venv with boto3 for the call.
UV = "/opt/jupyterhub/bin/uv"
CALLER = "/tmp/hub-role-call"
# The call, on the caller's stdin: how boto3 found credentials, their key id, the zones it lists.
CALL = """
import boto3
session = boto3.Session()
credentials = session.get_credentials()
print(credentials.method if credentials else "none", credentials.access_key if credentials else "-")
print(" ".join(zone["Name"] for zone in session.client("route53").list_hosted_zones()["HostedZones"]))
"""


def associations(ec2, instance_id):
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[
            {"Name": "instance-id", "Values": [instance_id]},
            {"Name": "state", "Values": ["associating", "associated"]},
        ]
    )
    return found["IamInstanceProfileAssociations"]


def remove_hub_role(env, instance_id):
    """No role of the hub in the lab's moto (a setup-hub with the zone may have made one), so none
    for the hub in the metadata stand-in (the lab's EC2 API follows)."""
    ec2, iam = lab_aws(env, "ec2"), lab_aws(env, "iam")
    for association in associations(ec2, instance_id):
        ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    try:
        for role in iam.get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]["Roles"]:
            iam.remove_role_from_instance_profile(InstanceProfileName=ROLE, RoleName=role["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=ROLE)
    except iam.exceptions.NoSuchEntityException:
        pass
    try:
        for name in iam.list_role_policies(RoleName=ROLE)["PolicyNames"]:
            iam.delete_role_policy(RoleName=ROLE, PolicyName=name)
        iam.delete_role(RoleName=ROLE)
    except iam.exceptions.NoSuchEntityException:
        pass


@pytest.fixture
def hub_instance(lab):
    """The hub's instance id, with no role before the test, and none after it."""
    instance_id = lab_ec2.lab_instances()["lab-hub"]["InstanceId"]
    remove_hub_role(lab.env, instance_id)
    yield instance_id
    remove_hub_role(lab.env, instance_id)


@pytest.fixture
def caller(deploy_run, connect, lab):
    """A function that makes the AWS call on the hub, as root, with an environment of nothing but
    what /etc/hubswarm/aws.env holds: its (exit code, output)."""
    hub = connect(lab.hub_ip)
    install = f"rm -rf {CALLER} && {UV} venv -q {CALLER} && {UV} pip install -q --system-certs --python {CALLER}/bin/python boto3"
    made = hub.run(f"sudo -n sh -c {shlex.quote(install)}", hide=True, warn=True)
    assert made.ok, made.stderr

    def call():
        script = f"set -a; . {AWS_ENV}; exec {CALLER}/bin/python -"
        command = f"sudo -n env -i PATH=/usr/bin:/bin HOME=/nonexistent sh -c {shlex.quote(script)}"
        done = hub.run(command, in_stream=io.StringIO(CALL), hide=True, warn=True)
        return done.exited, done.stdout + done.stderr

    yield call
    hub.run(f"sudo -n rm -rf {CALLER}", hide=True, warn=True)


def test_the_hub_gets_its_role_and_calls_aws_with_its_credentials(lab, deploy_run, hub_instance, caller, connect):
    ec2, iam = lab_aws(lab.env, "ec2"), lab_aws(lab.env, "iam")
    zone_id = lab_ec2.ensure_hosted_zone(LAB_ZONE)

    # What the deployment wrote on the hub: the lab's EC2 API as the hub reaches it, no credentials.
    written = connect(lab.hub_ip).run(f"sudo -n cat {AWS_ENV}", hide=True).stdout
    assert f"AWS_ENDPOINT_URL={lab.env['HUBSWARM_HUB_AWS_ENDPOINTS']}\n" in written
    assert f"AWS_DEFAULT_REGION={lab.env['AWS_DEFAULT_REGION']}\n" in written
    assert "KEY" not in written and "TOKEN" not in written

    code, output = caller()
    assert code != 0 and "Unable to locate credentials" in output, output

    check = fab("check", "hub-role", env=ZONE_KEPT)
    assert check.code == 0, check.output
    predicted = [line for line in check.output.splitlines() if " hub-role: would " in line]
    assert predicted == [
        f"[{ROLE}] hub-role: would create role {ROLE}, which only ec2.amazonaws.com may take",
        f"[{ROLE}] hub-role: would change policy {POLICY_NAME}:",
        f"[{ROLE}] hub-role: would set policy {POLICY_NAME} of role {ROLE}: Route53FindZone, "
        "Route53WaitForChanges, Route53ReadZone, Route53AcmeChallenge",
        f"[{ROLE}] hub-role: would create instance profile {ROLE}",
        f"[{ROLE}] hub-role: would put role {ROLE} in instance profile {ROLE}",
        f"[{lab.hub_ip}] hub-role: would give {hub_instance} instance profile {ROLE}",
    ]
    assert f'+      "Resource": "arn:aws:route53:::hostedzone/{zone_id}"' in check.output
    assert ROLE not in [role["RoleName"] for role in iam.list_roles()["Roles"]]  # check mode made none
    assert associations(ec2, hub_instance) == []

    first = fab("hub-role", env=ZONE_KEPT)
    assert first.code == 0, first.output
    assert first.changed() == [(ROLE, "hub-role"), (lab.hub_ip, "hub-role")]
    policy = iam.get_role_policy(RoleName=ROLE, PolicyName=POLICY_NAME)["PolicyDocument"]
    assert [each["Sid"] for each in policy["Statement"]] == [
        "Route53FindZone",
        "Route53WaitForChanges",
        "Route53ReadZone",
        "Route53AcmeChallenge",
    ]
    assert policy["Statement"][-1]["Resource"] == f"arn:aws:route53:::hostedzone/{zone_id}"
    [association] = associations(ec2, hub_instance)
    assert association["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{ROLE}")

    again = fab("hub-role", env=ZONE_KEPT)
    assert again.code == 0, again.output
    assert again.changed() == [], again.output
    assert {(host, status) for host, task, status in again.rows() if task == "hub-role"} == {
        (ROLE, "ok"),
        (lab.hub_ip, "ok"),
    }

    # On the hub, the role's credentials, from the metadata stand-in: the zones come back.
    code, output = caller()
    assert code == 0, output
    given = json.loads(lab_imds.identity(lab.hub_ip)[f"iam/security-credentials/{ROLE}"])
    method_and_key, zones = output.splitlines()
    assert method_and_key == f"iam-role {given['AccessKeyId']}"
    assert f"{LAB_ZONE}." in zones.split()
