"""The hub's instance role (boto3 IAM and EC2, from this machine): what the hub itself may do in AWS.

Some settings give the hub work of its own in AWS (HUBSWARM_ROUTE53_ZONE: answering Let's
Encrypt's DNS challenges for its names). Its AWS clients then take the credentials EC2 hands an
instance through its metadata: those of the role its instance profile holds. hub-role makes the
role ``hubswarm-<cluster>-hub``, which only EC2 may take, its one inline policy
``hubswarm-hub``, made of the statements of every grant the settings turn on and nothing else
(:data:`GRANTS`), an instance profile of the same name holding the role, and gives the hub that
instance profile. Policies attached to the role besides hubswarm's are the operator's, left alone.
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from fabric import task

from ..cli import inventory
from ..cli.invocation import hub_for, run_of
from ..core import HubswarmError, facts
from ..core.changes import recorded
from ..core.host import file_diff
from ..hub.certs import acme_challenge_name, letsencrypt_names
from ..hubswarm_hub.backups import ENCRYPTION, archives_prefix, bucket_and_prefix
from ..settings.table import SETTING
from . import route53
from .ec2 import in_one_line

POLICY_NAME = "hubswarm-hub"
EC2_SERVICE = "ec2.amazonaws.com"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": EC2_SERVICE}, "Action": "sts:AssumeRole"}],
}
INSTANCE_ID = facts.instance_metadata("instance-id")
# EC2 learns of a new instance profile seconds after IAM made it: until then it refuses to give
# it to an instance (InvalidParameterValue), so that is asked again, for up to a minute.
PROFILE_ATTEMPTS, PROFILE_DELAY = 12, 5
# IAM's role names: letters, digits and +=,.@_- only, at most 64.
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)


# --- the policy: the statements of every grant the settings turn on -------------------------


def statement(sid, actions, resource, **more):
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource, **more}


def route53_zone_id(config, client):
    """The id of the hosted zone HUBSWARM_ROUTE53_ZONE names (by id or by name)."""
    return {"zone_id": route53.hosted_zone(client("route53"), config.route53_zone)[0]}


def route53_statements(config, found):
    """What certbot's dns-route53 plugin does for the hub's certificate: find the zone, set and
    remove the TXT records of the ACME challenges of the certificate's names (the hub's, its
    wildcard's too, any other HUBSWARM_LETSENCRYPT_DOMAINS or HUBSWARM_STATIC_DOMAIN) in that zone
    only, and wait for Route53 to apply the change; the zone's records are readable."""
    zone = f"arn:aws:route53:::hostedzone/{found['zone_id']}"
    records = dict.fromkeys(acme_challenge_name(name).lower() for name in letsencrypt_names(config))
    challenge = {
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": list(records),
            "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
        }
    }
    return [
        statement("Route53FindZone", ["route53:ListHostedZones", "route53:ListHostedZonesByName"], "*"),
        statement("Route53WaitForChanges", ["route53:GetChange"], "arn:aws:route53:::change/*"),
        statement("Route53ReadZone", ["route53:ListResourceRecordSets"], zone),
        statement("Route53AcmeChallenge", ["route53:ChangeResourceRecordSets"], zone, Condition=challenge),
    ]


def backup_bucket_statements(config, found):
    """What the hub's backup tool does in HUBSWARM_BACKUP_BUCKET: put an archive, encrypted at
    rest, list the cluster's archives and delete the oldest; under the cluster's archives' prefix
    only. It never reads one back (this machine does, to restore)."""
    bucket, _ = bucket_and_prefix(config.backup_bucket)
    archives = archives_prefix(config.backup_bucket, config.cluster)
    objects = f"arn:aws:s3:::{bucket}/{archives}*"
    return [
        statement(
            "BackupBucketList",
            ["s3:ListBucket"],
            f"arn:aws:s3:::{bucket}",
            Condition={"StringLike": {"s3:prefix": [f"{archives}*"]}},
        ),
        statement(
            "BackupBucketPut",
            ["s3:PutObject"],
            objects,
            Condition={"StringEquals": {"s3:x-amz-server-side-encryption": ENCRYPTION}},
        ),
        statement("BackupBucketPrune", ["s3:DeleteObject"], objects),
    ]


def nothing_to_look_up(config, client):
    return {}


@dataclass(frozen=True)
class Grant:
    """What the hub may do in AWS while ``setting`` is set: ``statements(config, found)``, where
    ``found`` holds what ``look_up(config, client)`` finds in AWS first (``client(service)``: a
    boto3 client of the operator's)."""

    setting: str
    statements: Callable
    look_up: Callable


# One grant per feature that runs AWS clients on the hub. Its autoscaler adds its own here.
GRANTS = (
    Grant("HUBSWARM_ROUTE53_ZONE", route53_statements, route53_zone_id),
    Grant("HUBSWARM_BACKUP_BUCKET", backup_bucket_statements, nothing_to_look_up),
)


def turned_on(config, grant):
    value = config
    for key in SETTING[grant.setting].key:
        value = value[key]
    return bool(value)


def granted(config):
    """The grants the settings turn on."""
    return [grant for grant in GRANTS if turned_on(config, grant)]


def hub_policy(config, found):
    """The hub's inline policy document: the statements of every grant ``config`` turns on, naming
    what ``found`` holds ({"zone_id": ...}); None when no grant is on."""
    statements = [each for grant in granted(config) for each in grant.statements(config, found)]
    return {"Version": "2012-10-17", "Statement": statements} if statements else None


def role_name(config):
    """The hub's role's name, and its instance profile's."""
    return f"hubswarm-{config.cluster}-hub"


# --- the role, its policy, its instance profile, the hub's instance ---------------------------


def cluster_tags(config):
    return [{"Key": config.tags.cluster_key, "Value": config.cluster}]


def trusts_ec2(document):
    """Whether a trust policy lets EC2 take the role."""

    def listed(value):
        return value if isinstance(value, list) else [value]

    return any(
        each.get("Effect") == "Allow"
        and "sts:AssumeRole" in listed(each.get("Action", []))
        and EC2_SERVICE in listed(each.get("Principal", {}).get("Service", []))
        for each in listed(document.get("Statement", []))
    )


def shown(document):
    return json.dumps(document, indent=2) if document else ""


def inline_policy(iam, name):
    """The role's hubswarm policy document; None without the role or the policy."""
    try:
        return iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None


def ensure_role(iam, config, name, role):
    """The role, trusted by EC2; whether it existed."""
    try:
        trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        trust = None
    role.ensure(
        f"create role {name}, which only {EC2_SERVICE} may take",
        trust is None
        and partial(
            iam.create_role,
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(TRUST),
            Description=f"hubswarm cluster {config.cluster}: what its hub does in AWS",
            Tags=cluster_tags(config),
        ),
    )
    role.ensure(
        f"let {EC2_SERVICE} take role {name} (its trust policy does not)",
        trust is not None
        and not trusts_ec2(trust)
        and partial(iam.update_assume_role_policy, RoleName=name, PolicyDocument=json.dumps(TRUST)),
    )
    return trust is not None


def ensure_policy(iam, name, policy, role, existed):
    """The role's inline policy is ``policy``; in check mode, how it would change."""
    current = inline_policy(iam, name) if existed else None
    if current == policy:
        return
    if role.check:
        role.note(f"change policy {POLICY_NAME}:\n" + file_diff(f"policy {POLICY_NAME}", shown(current), shown(policy)))
    sids = ", ".join(each["Sid"] for each in policy["Statement"])
    role.ensure(
        f"set policy {POLICY_NAME} of role {name}: {sids}",
        partial(iam.put_role_policy, RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)),
    )


def ensure_profile(iam, config, name, role):
    """The instance profile ``name``, holding the role ``name`` and no other."""
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        profile = None
    role.ensure(
        f"create instance profile {name}",
        profile is None and partial(iam.create_instance_profile, InstanceProfileName=name, Tags=cluster_tags(config)),
    )
    held = [each["RoleName"] for each in profile["Roles"]] if profile else []
    for other in [each for each in held if each != name]:  # a profile holds one role
        role.ensure(
            f"take role {other} out of instance profile {name}",
            partial(iam.remove_role_from_instance_profile, InstanceProfileName=name, RoleName=other),
        )
    role.ensure(
        f"put role {name} in instance profile {name}",
        name not in held and partial(iam.add_role_to_instance_profile, InstanceProfileName=name, RoleName=name),
    )


def until_ec2_knows_it(call, **arguments):
    """``call(**arguments)``, asked again while EC2 does not know a new instance profile yet."""
    from botocore.exceptions import ClientError  # here, not at the top: botocore slows every fab start

    for attempt in range(1, PROFILE_ATTEMPTS + 1):
        try:
            return call(**arguments)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidParameterValue" or attempt == PROFILE_ATTEMPTS:
                raise
        time.sleep(PROFILE_DELAY)


def profile_of(association):
    """The name of the instance profile an association gives (the last part of its ARN)."""
    return association["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1]


def ensure_association(ec2, instance_id, name, instance):
    """The instance ``instance_id`` has the instance profile ``name``, in place of any other."""
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[
            {"Name": "instance-id", "Values": [instance_id]},
            {"Name": "state", "Values": ["associating", "associated"]},
        ]
    )["IamInstanceProfileAssociations"]
    if found and profile_of(found[0]) == name:
        return
    if found:
        line = f"give {instance_id} instance profile {name} in place of {profile_of(found[0])}"
        action = partial(
            until_ec2_knows_it,
            ec2.replace_iam_instance_profile_association,
            IamInstanceProfile={"Name": name},
            AssociationId=found[0]["AssociationId"],
        )
    else:
        line = f"give {instance_id} instance profile {name}"
        action = partial(
            until_ec2_knows_it,
            ec2.associate_iam_instance_profile,
            IamInstanceProfile={"Name": name},
            InstanceId=instance_id,
        )
    instance.ensure(line, action)


def hub_instance_id(hub):
    """The hub's EC2 instance id, as its instance metadata gives it."""
    instance_id = hub.fact(INSTANCE_ID)
    if not instance_id.startswith("i-"):
        raise HubswarmError(
            f"{hub.name} has no EC2 instance id in its instance metadata: its AWS permissions come from an "
            "instance role, which only an EC2 instance can have"
        )
    return instance_id


def no_grant_line(config):
    variables = " or ".join(grant.setting for grant in GRANTS)
    return f"hub-role: the hub has no AWS work of its own ({variables} gives it some): it needs no role"


def make_hub_role(run, client, hub):
    """The hub's role, its policy and instance profile, and the hub's instance given that profile
    (in check mode: which of them would change). ``client(service)``: a boto3 client; ``hub``: the
    hub's :class:`~tasks.core.Host` (None when no grant is on: then only a former policy goes)."""
    config = run.config
    name = role_name(config)
    iam = client("iam")
    grants = granted(config)
    if not grants:
        # A policy a former setting made goes: the hub keeps no permission it no longer uses.
        if ROLE_NAME.fullmatch(name) and inline_policy(iam, name) is not None:
            with recorded(run, name, "hub-role") as role:
                role.ensure(
                    f"remove policy {POLICY_NAME} from role {name}",
                    partial(iam.delete_role_policy, RoleName=name, PolicyName=POLICY_NAME),
                )
        run.recap.say(no_grant_line(config))
        return
    if not ROLE_NAME.fullmatch(name):
        raise HubswarmError(
            f"HUBSWARM_CLUSTER: {config.cluster!r} cannot name the hub's IAM role {name} (letters, digits and "
            "+=,.@_- only, at most 64 characters in all): name the cluster so"
        )
    found = {key: value for grant in grants for key, value in grant.look_up(config, client).items()}
    policy = hub_policy(config, found)
    instance_id = hub_instance_id(hub)
    with recorded(run, name, "hub-role") as role:
        existed = ensure_role(iam, config, name, role)
        ensure_policy(iam, name, policy, role, existed)
        ensure_profile(iam, config, name, role)
    with recorded(run, hub.name, "hub-role") as instance:
        ensure_association(client("ec2"), instance_id, name, instance)


def hub_role_if_granted(c):
    """With settings that give the hub AWS work, its role (once a run), before the hub's steps."""
    run = run_of(c)
    if granted(run.config) and "hub-role" not in run.done:
        run_hub_role(c)


def run_hub_role(c):
    run = run_of(c)
    hub = hub_for(c) if granted(run.config) else None
    in_one_line(make_hub_role, run, partial(inventory.aws_client, run.config), hub)
    run.done.add("hub-role")


@task
def hub_role(c):
    """Give the hub the AWS permissions its settings need, as its instance role.

    From this machine with its AWS credentials: the IAM role hubswarm-<cluster>-hub,
    which only EC2 may take, its inline policy hubswarm-hub, an instance profile of
    the same name holding it, and the hub's instance (its instance metadata names it)
    given that profile, in place of any other. The policy holds what the settings
    turn on and nothing more: with HUBSWARM_ROUTE53_ZONE, what certbot's dns-route53
    plugin needs for the hub's names in that zone; with HUBSWARM_BACKUP_BUCKET, putting
    (encrypted), listing and deleting the cluster's archives there (README: Security). With none of
    them, no role is made, and a policy made before is removed. setup-hub and deploy
    do this first whenever a setting needs it. Needs iam:GetRole, CreateRole,
    UpdateAssumeRolePolicy, GetRolePolicy, PutRolePolicy, DeleteRolePolicy,
    GetInstanceProfile, CreateInstanceProfile, AddRoleToInstanceProfile,
    RemoveRoleFromInstanceProfile, TagRole, TagInstanceProfile and PassRole,
    ec2:DescribeIamInstanceProfileAssociations, AssociateIamInstanceProfile and
    ReplaceIamInstanceProfileAssociation, and what dns-records needs to find the zone.
    Example: fab hub-role; fab check hub-role; fab -H HUB hub-role
    """
    run_hub_role(c)
