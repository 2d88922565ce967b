"""letsencrypt by DNS-01 against a real ACME server (Debian's pebble), through the lab's Route53.

The hub has the lab's DNS name, users' servers on names of their own under it, and the lab's
zone (HUBSWARM_ROUTE53_ZONE): setup-hub makes its instance role (the lab's metadata stand-in
then hands it the role's credentials) and its A records. fab letsencrypt then runs certbot's
dns-route53 plugin on the hub, which writes the challenges' TXT records through the lab's moto
(the hub's own AWS endpoint, from /etc/hubswarm/aws.env); the lab's DNS answers them from the zone,
and pebble, asking the lab's DNS, checks them. The certificate holds the domain and its wildcard,
and nginx serves it for a user's server's name, verified against pebble's own root. A second run
changes nothing, and check mode then predicts nothing. The hub goes back to the lab's default
(one origin, self-signed) after.
"""

import shlex
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest
from test_hub_role import remove_hub_role
from test_zz_letsencrypt import ACME_DIRECTORY, GATEWAY, wait_for_pebble, write_pebble_config

from fabrun import fab, lab_aws
from tasks import lab as lab_module
from tasks.hub.letsencrypt import RENEW_TIMER
from tasks.lab import LAB_DOMAIN, LAB_ZONE
from tasks.lab import ec2 as lab_ec2
from tasks.lab import imds as lab_imds

WILDCARD = f"*.{LAB_DOMAIN}"
USERS_SERVER = f"someone.{LAB_DOMAIN}"
HUB = f"{lab_module.CONTAINER_PREFIX}hub"


def dns01_env(ca):
    return {
        "HUBSWARM_DOMAIN": LAB_DOMAIN,
        "HUBSWARM_SINGLE_ORIGIN": "0",
        "HUBSWARM_ROUTE53_ZONE": LAB_ZONE,
        "HUBSWARM_ACME_SERVER": ACME_DIRECTORY,
        "HUBSWARM_ACME_CA_BUNDLE": str(ca),
    }


def records(client, zone_id, kinds=("A", "TXT")):
    listed = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return [record for record in listed if record["Type"] in kinds]


def remove_records(client, zone_id):
    for record in records(client, zone_id):
        client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
        )


def in_hub(*argv, check=True):
    subprocess.run(["docker", "exec", HUB, *argv], check=check, capture_output=True)


class SimpleZone:
    def __init__(self, client, zone_id):
        self.client, self.id = client, zone_id


@pytest.fixture(scope="module")
def pebble_dns01(lab, hub_run, tmp_path_factory):
    """pebble on this machine, asking the lab's DNS; yields (listener CA file, pebble's root CA file).
    After: no certificate, no record, no role and no public address of the hub, the lab's default hub."""
    folder = tmp_path_factory.mktemp("pebble-dns01")
    zone = SimpleZone(lab_aws(lab.env, "route53"), lab_ec2.ensure_hosted_zone(LAB_ZONE))
    remove_records(zone.client, zone.id)
    # pebble forgets accounts and certificates when it stops: so must the hub.
    in_hub("rm", "-rf", "/etc/letsencrypt")
    # dns-records points the hub's names at its public address, as EC2 gives it.
    lab_imds.set_identity(lab.hub_ip, public_ipv4=lab.hub_ip)
    write_pebble_config(folder)
    server = subprocess.Popen(
        # The lab's DNS, which answers the challenges' TXT records from the lab's Route53.
        ["pebble", "-config", "pebble.json", "-dnsserver", f"{lab_imds.STANDIN_IP}:53"],
        cwd=folder,
        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"},
        stdout=open(folder / "pebble.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_pebble(folder)
        # The root pebble issues under (a new one at each start), from its management interface.
        listener = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        with urllib.request.urlopen(f"https://{GATEWAY}:15000/roots/0", context=listener, timeout=10) as answer:
            (folder / "root.pem").write_bytes(answer.read())
        yield folder / "ca.pem", folder / "root.pem", zone, folder / "pebble.log"
    finally:
        server.terminate()
        server.wait(10)
        in_hub("rm", "-rf", "/etc/letsencrypt")
        in_hub("systemctl", "disable", "--now", RENEW_TIMER, check=False)
        remove_records(zone.client, zone.id)
        remove_hub_role(lab.env, lab_ec2.lab_instances()["lab-hub"]["InstanceId"])
        lab_imds.set_identity(lab.hub_ip, public_ipv4=None)
        restored = fab("setup-hub", "start-hub")  # the hub as the other tests know it
        assert restored.code == 0, restored.output


def served(ip, name, root):
    """The certificate nginx serves for ``name``, verified (chain and name) against ``root``, once
    it serves one that verifies: nginx's reload returns before its new workers take connections."""
    context = ssl.create_default_context(cafile=str(root))
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection((ip, 443), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    return tls.getpeercert()
        except ssl.SSLCertVerificationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # (a poll's pace)


def test_the_wildcard_certificate_by_dns_01_through_route53(lab, pebble_dns01, connect):
    ca, root, zone, log = pebble_dns01
    env = dns01_env(ca)

    setup = fab("setup-hub", "start-hub", env=env)  # hub-role, dns-records, subdomains, self-signed
    assert setup.code == 0, setup.output
    first = fab("letsencrypt", env=env)
    assert first.code == 0, first.output + "\n" + log.read_text()[-3000:]
    assert (lab.hub_ip, "letsencrypt") in first.changed()

    certificate = served(lab.hub_ip, USERS_SERVER, root)  # a user's server's name, by SNI
    assert sorted(certificate["subjectAltName"]) == sorted([("DNS", LAB_DOMAIN), ("DNS", WILDCARD)])
    assert served(lab.hub_ip, LAB_DOMAIN, root)["subjectAltName"] == certificate["subjectAltName"]
    # certbot removed its challenges' records, and left the hub's A records alone.
    assert {(r["Name"].replace("\\052", "*"), r["Type"]) for r in records(zone.client, zone.id)} == {
        (f"{LAB_DOMAIN}.", "A"),
        (f"{WILDCARD}.", "A"),
    }
    # Renewal: hubswarm's timer, with the hub's AWS environment; no credentials anywhere on the hub.
    hub = connect(lab.hub_ip)
    state = hub.run(f"systemctl is-enabled {shlex.quote(RENEW_TIMER)}", hide=True, warn=True).stdout.strip()
    assert state == "enabled"
    leaked = hub.run(
        "sudo grep -rlE 'aws_secret_access_key|AWS_SECRET_ACCESS_KEY' /etc/hubswarm /etc/letsencrypt /etc/systemd/system",
        hide=True,
        warn=True,
    )
    assert leaked.stdout.strip() == ""

    again = fab("letsencrypt", env=env)
    assert again.code == 0, again.output
    assert again.changed() == [], again.output

    check = fab("check", "letsencrypt", env=env)
    assert check.code == 0, check.output
    assert check.changed() == [], check.output
