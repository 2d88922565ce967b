"""The hub's DNS names in Route53 (boto3): the A records HUBSWARM_DOMAIN and *.HUBSWARM_DOMAIN.

With HUBSWARM_ROUTE53_ZONE, each of the two records that is missing, or points elsewhere, is
set to the hub's public IPv4 address, from this machine with its AWS credentials (as
security-groups is), before the hub's steps check on the hub that both names resolve to it.
The address is the one the hub's instance metadata gives (its Elastic IP, when it has one):
it holds whether ``-H`` names the hub or its tags find it.
"""

import ipaddress
from functools import partial

from fabric import task

from ..cli import inventory
from ..cli.invocation import hub_for, run_of
from ..core import HubswarmError, fail
from ..core.changes import recorded
from ..core.names import in_zone
from ..hub.records import PUBLIC_IPV4
from ..settings.kinds import zone_by_name
from .ec2 import in_one_line

# Seconds a resolver keeps an answer: a hub made again elsewhere is found within minutes.
TTL = 300
# Route53 lists a "*" of a name as this escape.
ESCAPED_WILDCARD = "\\052"
# Route53 applies a change everywhere within about a minute: waited for up to three.
CHANGE_WAIT = {"Delay": 10, "MaxAttempts": 18}


def wanted_records(domain, address):
    """{record name: address}: the hub's name, and every name under it (its users' servers')."""
    return {domain: address, f"*.{domain}": address}


def plain_name(listed):
    """A name as Route53 lists it, as hubswarm writes it: lower case, "*" as is, no final dot."""
    return listed.replace(ESCAPED_WILDCARD, "*").lower().removesuffix(".")


def current_addresses(client, zone_id, name):
    """What the A record ``name`` of the zone points at: its addresses, or the name its alias
    targets ([] when the zone has no such record)."""
    listed = client.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=name, StartRecordType="A", MaxItems="1"
    )["ResourceRecordSets"]
    for record in listed:
        if plain_name(record["Name"]) == name and record["Type"] == "A":
            if "AliasTarget" in record:
                return [f"alias {plain_name(record['AliasTarget']['DNSName'])}"]
            return sorted(value["Value"] for value in record.get("ResourceRecords", []))
    return []


def record_changes(current, wanted):
    """(line, record set to UPSERT) for each record of ``wanted`` ({name: address}) that
    ``current`` ({name: what it points at}) lacks or points elsewhere."""
    changes = []
    for name, address in wanted.items():
        was = current.get(name, [])
        if was == [address]:
            continue
        before = f"was {', '.join(was)}" if was else "no record yet"
        record = {"Name": name, "Type": "A", "TTL": TTL, "ResourceRecords": [{"Value": address}]}
        changes.append((f"point {name} at {address} ({before})", record))
    return changes


def hosted_zone(client, zone):
    """(id, name) of the hosted zone HUBSWARM_ROUTE53_ZONE names: by its id, or by its name (the
    one public zone of that name)."""
    if not zone_by_name(zone):
        try:
            return zone, plain_name(client.get_hosted_zone(Id=zone)["HostedZone"]["Name"])
        except client.exceptions.NoSuchHostedZone:
            raise HubswarmError(
                f"HUBSWARM_ROUTE53_ZONE: no hosted zone {zone} in this AWS account: "
                "set the id or the name of the zone that holds HUBSWARM_DOMAIN"
            ) from None
    listed = client.list_hosted_zones_by_name(DNSName=zone, MaxItems="100")["HostedZones"]
    public = [z for z in listed if plain_name(z["Name"]) == zone and not z.get("Config", {}).get("PrivateZone")]
    if len(public) != 1:
        found = "no public hosted zone" if not public else f"{len(public)} public hosted zones"
        raise HubswarmError(
            f"HUBSWARM_ROUTE53_ZONE: {found} named {zone} in this AWS account: "
            "set the id of the zone that holds HUBSWARM_DOMAIN (Route53 console: Hosted zone ID)"
        )
    return public[0]["Id"].rsplit("/", 1)[-1], zone


def public_address(hub):
    """The hub's public IPv4 address, as its instance metadata gives it."""
    address = hub.fact(PUBLIC_IPV4)
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError:
        raise HubswarmError(
            f"{hub.name} has no public IPv4 address in its instance metadata (public-ipv4) for its DNS "
            "records: give the hub one (an Elastic IP), or unset HUBSWARM_ROUTE53_ZONE and make the records "
            "yourself (README: Security)"
        ) from None


def upsert(client, zone_id, records):
    """Set ``records`` in the zone, in one change, and wait until Route53 has applied it."""
    from botocore.exceptions import WaiterError  # here, not at the top: botocore slows every fab start

    change = client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": "hubswarm: the hub's names",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": record} for record in records],
        },
    )["ChangeInfo"]["Id"]
    try:
        client.get_waiter("resource_record_sets_changed").wait(Id=change, WaiterConfig=CHANGE_WAIT)
    except WaiterError:
        minutes = CHANGE_WAIT["Delay"] * CHANGE_WAIT["MaxAttempts"] // 60
        raise HubswarmError(
            f"Route53 has not applied change {change} within {minutes} minutes: see it in the Route53 console, "
            "then run again"
        ) from None


def point_records(run, client, hub):
    """Make or fix the hub's A records in HUBSWARM_ROUTE53_ZONE (in check mode: say which), and
    remember on the run the ones it pointed."""
    config = run.config
    address = public_address(hub)
    zone_id, zone_name = hosted_zone(client, config.route53_zone)
    if not in_zone(config.domain, zone_name):
        raise HubswarmError(
            f"HUBSWARM_ROUTE53_ZONE: the hosted zone {config.route53_zone} is {zone_name}, which does not hold "
            f"HUBSWARM_DOMAIN ({config.domain}): set the zone that holds it"
        )
    wanted = wanted_records(config.domain, address)
    with recorded(run, zone_name, "dns-records") as zone:
        current = {name: current_addresses(client, zone_id, name) for name in wanted}
        changes = record_changes(current, wanted)
        records = [record for _, record in changes]
        zone.ensure([line for line, _ in changes], records and partial(upsert, client, zone_id, records))
    run.dns_pointed = {record["Name"]: address for record in records}


def hub_records(c):
    """With HUBSWARM_ROUTE53_ZONE, the hub's DNS records (once a run), before the hub's steps check
    that its names resolve to it."""
    run = run_of(c)
    if run.config.route53_zone and run.dns_pointed is None:
        hub = hub_for(c)
        in_one_line(lambda: point_records(run, inventory.aws_client(run.config, "route53"), hub))


@task
def dns_records(c):
    """Point the hub's DNS names at it in Route53: the A records HUBSWARM_DOMAIN and *.HUBSWARM_DOMAIN.

    In the hosted zone HUBSWARM_ROUTE53_ZONE (its id, or its name), from this
    machine with its AWS credentials: a record that is missing or points
    elsewhere is set (UPSERT, TTL 300 s) to the hub's public IPv4 address, as
    the hub's instance metadata gives it, and the run waits until Route53 has
    applied it; a record already right is left alone. setup-hub and deploy do
    this first whenever HUBSWARM_ROUTE53_ZONE is set. Needs route53:GetHostedZone
    (zone by id) or ListHostedZonesByName (by name), ListResourceRecordSets,
    ChangeResourceRecordSets and GetChange.
    Example: fab dns-records; fab check dns-records; fab -H HUB dns-records
    """
    if not run_of(c).config.route53_zone:
        fail(
            "dns-records: HUBSWARM_ROUTE53_ZONE is not set: set it to the hosted zone that holds HUBSWARM_DOMAIN, "
            "or make the two records yourself (README: Security)"
        )
    hub_records(c)
