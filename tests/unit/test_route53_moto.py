"""dns-records: the hub's A records in Route53, against moto's in-process Route53; then how the
check that the hub's names resolve to it reads what the run pointed."""

import io
from types import SimpleNamespace

import pytest
from invoke.exceptions import Exit

from fakehost import FakeRunner, hub_config, invocation, run_fab
from tasks.aws import route53 as dns
from tasks.cli import inventory
from tasks.core import HubswarmError, Run
from tasks.core.host import Host
from tasks.core.recap import Recap
from tasks.hub import records

DOMAIN = "hub.example.com"
HUB_IP = "54.1.2.3"
WILDCARD = f"*.{DOMAIN}"


@pytest.fixture
def zone(route53):
    """The public hosted zone example.com, and a private one of the same name (never the one by name): its id."""
    route53.create_hosted_zone(
        Name="example.com.",
        CallerReference="private",
        HostedZoneConfig={"PrivateZone": True},
        VPC={"VPCRegion": "us-west-2", "VPCId": "vpc-12345678"},
    )
    made = route53.create_hosted_zone(Name="example.com.", CallerReference="public")
    return made["HostedZone"]["Id"].rsplit("/", 1)[-1]


def a_records(route53, zone_id):
    """{name: addresses} of the zone's A records, as Route53 lists them."""
    listed = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        dns.plain_name(r["Name"]): sorted(v["Value"] for v in r["ResourceRecords"]) for r in listed if r["Type"] == "A"
    }


def set_records(route53, zone_id, **addresses):
    """UPSERT A records: ``apex=`` the domain, ``wildcard=`` every name under it."""
    names = {"apex": DOMAIN, "wildcard": WILDCARD}
    changes = [
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {"Name": names[key], "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": ip}]},
        }
        for key, ip in addresses.items()
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})


def the_hub(run, public_ipv4=HUB_IP):
    """The run's hub, whose instance metadata gives ``public_ipv4``."""
    hub = Host(SimpleNamespace(host="10.0.0.5", user="admin", port=22), "10.0.0.5", run)
    runner = FakeRunner({"imds:public-ipv4": public_ipv4, "addresses": "10.0.0.5"})
    hub._exec, hub._probe = runner, runner.probe
    return hub


def dns_records(route53, zone, check=False, public_ipv4=HUB_IP, domain=DOMAIN):
    """One ``fab dns-records`` (HUBSWARM_ROUTE53_ZONE=``zone``) against moto: its run."""
    run = Run(hub_config(domain=domain, route53_zone=zone), check=check, recap=Recap(stream=io.StringIO()))
    dns.in_one_line(dns.point_records, run, route53, the_hub(run, public_ipv4))
    return run


def changes(run):
    [record] = [r for r in run.recap.records if r.task == "dns-records"]
    return record.host, record.status, record.changes


@pytest.fixture(params=["by name", "by id"])
def zone_setting(request, zone):
    """HUBSWARM_ROUTE53_ZONE naming the public zone, as the operator may write it (normalised)."""
    return "example.com" if request.param == "by name" else zone


def test_records_absent_are_predicted_then_made_then_left_alone(route53, zone, zone_setting):
    made = [f"point {DOMAIN} at {HUB_IP} (no record yet)", f"point {WILDCARD} at {HUB_IP} (no record yet)"]

    check = dns_records(route53, zone_setting, check=True)
    assert changes(check) == ("example.com", "changed", made)
    assert f"[example.com] dns-records: would point {WILDCARD} at {HUB_IP}" in check.recap.stream.getvalue()
    assert check.dns_pointed == {DOMAIN: HUB_IP, WILDCARD: HUB_IP}
    assert a_records(route53, zone) == {}

    first = dns_records(route53, zone_setting)
    assert changes(first) == ("example.com", "changed", made)
    assert a_records(route53, zone) == {DOMAIN: [HUB_IP], WILDCARD: [HUB_IP]}

    second = dns_records(route53, zone_setting)
    assert changes(second) == ("example.com", "ok", [])
    assert second.dns_pointed == {}
    assert "[example.com] dns-records: ok" in second.recap.stream.getvalue()


@pytest.mark.parametrize(
    "before, fixed",
    [
        (
            {"apex": "9.9.9.9"},
            [f"point {DOMAIN} at {HUB_IP} (was 9.9.9.9)", f"point {WILDCARD} at {HUB_IP} (no record yet)"],
        ),
        ({"apex": HUB_IP, "wildcard": "9.9.9.9"}, [f"point {WILDCARD} at {HUB_IP} (was 9.9.9.9)"]),
        ({"apex": HUB_IP, "wildcard": HUB_IP}, []),
    ],
    ids=["apex elsewhere, no wildcard", "wildcard elsewhere", "both right"],
)
def test_a_record_pointing_elsewhere_is_fixed_alone(route53, zone, before, fixed):
    set_records(route53, zone, **before)
    run = dns_records(route53, "example.com")
    assert changes(run)[2] == fixed
    assert a_records(route53, zone) == {DOMAIN: [HUB_IP], WILDCARD: [HUB_IP]}


def test_the_hubs_other_records_are_not_ours(route53, zone):
    set_records(route53, zone, apex=HUB_IP, wildcard=HUB_IP)
    other = {"Name": f"www.{DOMAIN}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "9.9.9.9"}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": other}]}
    )
    assert changes(dns_records(route53, "example.com"))[1] == "ok"
    assert a_records(route53, zone)[f"www.{DOMAIN}"] == ["9.9.9.9"]


@pytest.mark.parametrize(
    "listed, current",
    [
        ([], []),
        ([{"Name": "hub.example.com.", "Type": "A", "ResourceRecords": [{"Value": "1.1.1.1"}]}], ["1.1.1.1"]),
        ([{"Name": "\\052.hub.example.com.", "Type": "A", "ResourceRecords": [{"Value": "2.2.2.2"}]}], ["2.2.2.2"]),
        ([{"Name": "hub.example.com.", "Type": "AAAA", "ResourceRecords": [{"Value": "::1"}]}], []),
        ([{"Name": "a.hub.example.com.", "Type": "A", "ResourceRecords": [{"Value": "3.3.3.3"}]}], []),  # the next
        (
            [{"Name": "Hub.Example.com.", "Type": "A", "AliasTarget": {"DNSName": "lb-1.elb.amazonaws.com."}}],
            ["alias lb-1.elb.amazonaws.com"],
        ),
    ],
    ids=["none", "the record", "the wildcard as Route53 writes it", "another type", "the next name", "an alias"],
)
def test_what_a_record_points_at(listed, current):
    name = "*.hub.example.com" if "052" in str(listed) else "hub.example.com"

    class Listing:
        def list_resource_record_sets(self, **asked):
            assert asked == {"HostedZoneId": "Z1", "StartRecordName": name, "StartRecordType": "A", "MaxItems": "1"}
            return {"ResourceRecordSets": listed}

    assert dns.current_addresses(Listing(), "Z1", name) == current


def test_an_alias_is_replaced_by_the_hubs_address():
    current = {DOMAIN: ["alias lb-1.elb.amazonaws.com"], WILDCARD: [HUB_IP]}
    [(line, record)] = dns.record_changes(current, dns.wanted_records(DOMAIN, HUB_IP))
    assert line == f"point {DOMAIN} at {HUB_IP} (was alias lb-1.elb.amazonaws.com)"
    assert record == {"Name": DOMAIN, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": HUB_IP}]}


# --- one line, before any change ------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, domain, public_ipv4, problem",
    [
        ("example.org", "hub.example.org", HUB_IP, "no public hosted zone named example.org in this AWS account"),
        ("ZNOSUCHZONE", DOMAIN, HUB_IP, "no hosted zone ZNOSUCHZONE in this AWS account"),
        ("{zone}", "hub.example.org", HUB_IP, "the hosted zone {zone} is example.com, which does not hold"),
        ("example.com", DOMAIN, "", "10.0.0.5 has no public IPv4 address in its instance metadata"),
    ],
    ids=["no zone of that name", "no zone of that id", "the domain outside the zone", "no public address"],
)
def test_a_problem_is_one_line_and_changes_nothing(route53, zone, setting, domain, public_ipv4, problem):
    with pytest.raises(Exit) as stopped:
        dns_records(route53, setting.format(zone=zone), public_ipv4=public_ipv4, domain=domain)
    message = str(stopped.value.message)
    assert problem.format(zone=zone) in message and "\n" not in message
    assert message.startswith(("HUBSWARM_ROUTE53_ZONE: ", "10.0.0.5 "))
    assert a_records(route53, zone) == {}


def test_two_public_zones_of_the_name_need_the_id(route53, zone):
    route53.create_hosted_zone(Name="example.com.", CallerReference="another")
    with pytest.raises(Exit, match="2 public hosted zones named example.com .*: set the id of the zone"):
        dns_records(route53, "example.com")


def test_a_route53_refusal_is_one_line_of_the_zone(route53, zone, monkeypatch):
    def refused(**change):
        raise route53.exceptions.InvalidChangeBatch({"Error": {"Code": "InvalidChangeBatch", "Message": "no"}}, "x")

    monkeypatch.setattr(route53, "change_resource_record_sets", refused)
    with pytest.raises(Exit, match="^example.com dns-records: InvalidChangeBatch: .*no$"):
        dns_records(route53, "example.com")


def test_a_change_route53_does_not_apply_in_time_is_one_line(monkeypatch):
    from botocore.exceptions import WaiterError

    class Slow:
        def change_resource_record_sets(self, **change):
            return {"ChangeInfo": {"Id": "/change/C1"}}

        def get_waiter(self, name):
            class Waiter:
                def wait(self, **kwargs):
                    raise WaiterError(name=name, reason="Max attempts exceeded", last_response={})

            return Waiter()

    with pytest.raises(HubswarmError) as err:
        dns.upsert(Slow(), "Z1", [])
    assert str(err.value) == (
        "Route53 has not applied change /change/C1 within 3 minutes: see it in the Route53 console, then run again"
    )


# --- the task, and the run's steps after it -------------------------------------------------


def test_without_the_setting_nothing_is_asked(monkeypatch):
    monkeypatch.setattr(dns, "point_records", lambda *args: pytest.fail("Route53 asked"))
    run = Run(hub_config(route53_zone=""), recap=Recap(stream=io.StringIO()))
    dns.hub_records(invocation(run, "10.0.0.5"))
    assert run.dns_pointed is None
    with pytest.raises(Exit, match="^dns-records: HUBSWARM_ROUTE53_ZONE is not set: set it"):
        dns.dns_records.body(invocation(run, "10.0.0.5"))


def test_the_records_are_pointed_once_a_run(aws, monkeypatch):
    pointed = []

    def point(run, client, hub):
        pointed.append(hub.name)
        run.dns_pointed = {}

    monkeypatch.setattr(dns, "point_records", point)
    run = Run(hub_config(route53_zone="example.com"), recap=Recap(stream=io.StringIO()))
    for _ in range(2):  # fab dns-records setup-hub
        dns.hub_records(invocation(run, "10.0.0.5"))
    assert pointed == ["10.0.0.5"]


RESOLVED = {"resolve:hub.example.com": HUB_IP, f"resolve:{records.UNDER_THE_HUB}.hub.example.com": HUB_IP}


@pytest.mark.parametrize(
    "check, pointed, resolved, problem",
    [
        (True, {DOMAIN: HUB_IP, WILDCARD: HUB_IP}, {}, ""),  # not made in check mode: nothing to resolve
        (True, {WILDCARD: HUB_IP}, {}, "hub.example.com does not resolve: point its A record at the hub"),
        (True, {}, RESOLVED, ""),
        (False, {}, RESOLVED, ""),
        (False, {DOMAIN: HUB_IP, WILDCARD: HUB_IP}, RESOLVED, ""),
        (
            False,
            {DOMAIN: HUB_IP, WILDCARD: HUB_IP},
            {},
            f"hub.example.com does not resolve to the hub yet, though this run pointed its A record at {HUB_IP} "
            "in Route53: an older answer may still be cached: run again in a few minutes",
        ),
    ],
    ids=["check: both would be made", "check: one would", "check: none", "none", "both made", "both made, not seen"],
)
def test_the_names_resolve_check_reads_what_the_run_pointed(make_host, check, pointed, resolved, problem):
    host, _ = make_host({"addresses": "10.0.0.5", "imds:public-ipv4": HUB_IP, **resolved}, check=check)
    host.run.dns_pointed = pointed
    if problem:
        with pytest.raises(HubswarmError) as err:
            records.subdomains_point_at_the_hub(host)
        assert str(err.value).startswith(problem)
    else:
        records.subdomains_point_at_the_hub(host)


def test_fab_dns_records_without_the_zone_is_one_line():
    run = run_fab("-H", "203.0.113.5", "dns-records")
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "dns-records: HUBSWARM_ROUTE53_ZONE is not set: set it to the hosted zone that holds HUBSWARM_DOMAIN, "
        "or make the two records yourself (README: Security)"
    ]


def test_the_route53_endpoint_is_boto3s_own_setting(aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_ROUTE_53", "http://127.0.0.1:5055")
    client = inventory.aws_client(hub_config(), "route53")
    assert client.meta.endpoint_url == "http://127.0.0.1:5055"
