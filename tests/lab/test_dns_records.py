"""The hub's DNS records kept in Route53 (HUBSWARM_ROUTE53_ZONE): the lab's moto holds the zone
lab.example, and the lab's DNS answers its names from the records moto holds.

setup-hub with the zone first predicts (check mode) and then makes the A records hub.lab.example
and *.hub.lab.example, pointing at the hub's public IPv4 address (the lab gives the hub its lab
address there, as EC2 gives a hub its Elastic IP); the hub then resolves its users' servers' names
to itself, and a second run changes nothing. A record moved elsewhere is what the hub resolves,
until the next run points it back.
"""

import shlex
from types import SimpleNamespace

import pytest

from fabrun import fab, lab_aws
from tasks.lab import LAB_DOMAIN, LAB_ZONE
from tasks.lab import ec2 as lab_ec2
from tasks.lab import imds as lab_imds

WILDCARD = f"*.{LAB_DOMAIN}"
ZONE_KEPT = {"HUBSWARM_DOMAIN": LAB_DOMAIN, "HUBSWARM_SINGLE_ORIGIN": "0", "HUBSWARM_ROUTE53_ZONE": LAB_ZONE}


def listed_a_records(zone):
    listed = zone.client.list_resource_record_sets(HostedZoneId=zone.id)["ResourceRecordSets"]
    return [record for record in listed if record["Type"] == "A"]


def a_records(zone):
    """{name: addresses} of the zone's A records."""
    return {
        r["Name"].replace("\\052", "*").rstrip("."): [v["Value"] for v in r["ResourceRecords"]]
        for r in listed_a_records(zone)
    }


def change(zone, action, record):
    zone.client.change_resource_record_sets(
        HostedZoneId=zone.id, ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record}]}
    )


def remove_a_records(zone):
    for record in listed_a_records(zone):
        change(zone, "DELETE", record)


@pytest.fixture
def lab_zone(lab):
    """The lab's hosted zone with no A record, and the hub with a public IPv4 address (its lab
    address); both as they were, after the test."""
    zone = SimpleNamespace(client=lab_aws(lab.env, "route53"), id=lab_ec2.ensure_hosted_zone(LAB_ZONE))
    remove_a_records(zone)
    lab_imds.set_identity(lab.hub_ip, public_ipv4=lab.hub_ip)
    yield zone
    remove_a_records(zone)
    lab_imds.set_identity(lab.hub_ip, public_ipv4=None)


def resolved(connection, name):
    """The IPv4 addresses NAME resolves to on the lab host of CONNECTION."""
    command = f"getent ahostsv4 {shlex.quote(name)} | awk '{{print $1}}' | sort -u"
    return connection.run(command, hide=True, warn=True).stdout.split()


def test_the_hubs_records_are_made_in_route53_and_kept(lab, deploy_run, lab_users, lab_zone, connect):
    users_server = f"{lab_users.student}.{LAB_DOMAIN}"
    hub = connect(lab.hub_ip)
    try:
        check = fab("check", "setup-hub", env=ZONE_KEPT)
        assert check.code == 0, check.output
        assert [line for line in check.output.splitlines() if line.startswith(f"[{LAB_ZONE}] dns-records: ")] == [
            f"[{LAB_ZONE}] dns-records: would point {name} at {lab.hub_ip} (no record yet)"
            for name in (LAB_DOMAIN, WILDCARD)
        ]
        assert a_records(lab_zone) == {}  # check mode made none

        first = fab("setup-hub", "start-hub", env=ZONE_KEPT)
        assert first.code == 0, first.output
        assert (LAB_ZONE, "dns-records", "changed") in first.rows()
        assert a_records(lab_zone) == {LAB_DOMAIN: [lab.hub_ip], WILDCARD: [lab.hub_ip]}
        assert resolved(hub, LAB_DOMAIN) == [lab.hub_ip]
        assert resolved(hub, users_server) == [lab.hub_ip]

        again = fab("setup-hub", "start-hub", env=ZONE_KEPT)
        assert again.code == 0, again.output
        assert (LAB_ZONE, "dns-records", "ok") in again.rows()
        assert again.changed() == [], again.output

        # The lab's DNS answers from the records moto holds: one moved elsewhere is followed...
        worker = lab.worker_ips[0]
        change(lab_zone, "UPSERT", {"Name": WILDCARD, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": worker}]})
        assert resolved(hub, users_server) == [worker]
        # ...until the next run points it back, alone.
        fixed = fab("dns-records", env=ZONE_KEPT)
        assert fixed.code == 0, fixed.output
        assert f"[{LAB_ZONE}] dns-records: point {WILDCARD} at {lab.hub_ip} (was {worker})" in fixed.output
        assert fixed.changed() == [(LAB_ZONE, "dns-records")]
        assert resolved(hub, users_server) == [lab.hub_ip]
    finally:
        back = fab("setup-hub", "start-hub")
        assert back.code == 0, back.output
