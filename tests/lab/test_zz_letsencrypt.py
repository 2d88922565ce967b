"""letsencrypt against a real ACME server: Debian's pebble, validating HTTP-01 on the hub.

Runs after the other hub tests (it gives the hub a domain) and puts the hub
back as it was. pebble listens on the lab network's gateway address, its
mock DNS answers every name with the hub's address, and its own TLS listener
uses a throwaway CA that only this test (and the hub, via a setting) trusts.
"""

import json
import socket
import ssl
import subprocess
import time

import pytest

from fabrun import fab
from tasks import lab as lab_module
from tasks.lab import LAB_DOMAIN

GATEWAY = f"{lab_module.IP_PREFIX}1"  # this machine, on the lab network
ACME_DIRECTORY = f"https://{GATEWAY}:14000/dir"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_listener_ca(folder):
    """A CA and a certificate for pebble's own HTTPS listener on the gateway address."""
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=lab ACME listener CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=folder,
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={GATEWAY}",
        "-keyout",
        "listener.key",
        "-out",
        "listener.csr",
        cwd=folder,
    )
    (folder / "san.ext").write_text(f"subjectAltName=IP:{GATEWAY}\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "listener.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "listener.pem",
        cwd=folder,
    )


def write_pebble_config(folder):
    """pebble.json in ``folder``: pebble on the lab's gateway, its listener's certificate beside it."""
    make_listener_ca(folder)
    pebble = {
        "listenAddress": f"{GATEWAY}:14000",
        "managementListenAddress": f"{GATEWAY}:15000",
        "certificate": "listener.pem",
        "privateKey": "listener.key",
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    (folder / "pebble.json").write_text(json.dumps({"pebble": pebble}))


def wait_for_pebble(folder):
    """Until pebble (its log in ``folder``) takes connections."""
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection((GATEWAY, 14000), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, (folder / "pebble.log").read_text()
            time.sleep(0.3)


@pytest.fixture(scope="module")
def pebble(lab, hub_run, tmp_path_factory):
    """pebble + its mock DNS on this machine; yields the listener CA file."""
    folder = tmp_path_factory.mktemp("pebble")
    # pebble forgets accounts and certificates when it stops: so must the hub.
    subprocess.run(["docker", "exec", f"{lab_module.CONTAINER_PREFIX}hub", "rm", "-rf", "/etc/letsencrypt"], check=True)
    write_pebble_config(folder)
    dns = subprocess.Popen(
        [
            "pebble-challtestsrv",
            "-defaultIPv4",
            lab.hub_ip,
            "-defaultIPv6",
            "",
            "-dns01",
            "127.0.0.1:8053",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            "127.0.0.1:8055",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        ["pebble", "-config", "pebble.json", "-dnsserver", "127.0.0.1:8053"],
        cwd=folder,
        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"},
        stdout=open(folder / "pebble.log", "w"),
        stderr=subprocess.STDOUT,
    )
    wait_for_pebble(folder)
    yield folder / "ca.pem"
    server.terminate()
    dns.terminate()
    restored = fab("setup-hub", "start-hub")  # the hub as the other tests know it
    assert restored.code == 0, restored.output


def acme_env(ca, domain=LAB_DOMAIN):
    return {"HUBSWARM_DOMAIN": domain, "HUBSWARM_ACME_SERVER": ACME_DIRECTORY, "HUBSWARM_ACME_CA_BUNDLE": str(ca)}


def served_issuer(ip, name):
    """The issuer organisation/common name of the certificate nginx serves for ``name``."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    text = subprocess.run(
        ["openssl", "x509", "-inform", "der", "-noout", "-issuer"], input=der, capture_output=True, check=True
    ).stdout.decode()
    return text.strip()


def test_domain_that_does_not_point_at_the_hub_is_refused(lab, pebble):
    run = fab("letsencrypt", env=acme_env(pebble, "nowhere.lab.example"))
    assert run.code != 0
    assert "nowhere.lab.example does not resolve: point its A record at the hub" in run.output


def test_certificate_from_pebble_served_by_nginx(lab, pebble):
    first = fab("setup-hub", "letsencrypt", "start-hub", env=acme_env(pebble))
    assert first.code == 0, first.output
    assert (lab.hub_ip, "letsencrypt") in first.changed()
    assert "Pebble" in served_issuer(lab.hub_ip, LAB_DOMAIN)

    again = fab("setup-hub", "letsencrypt", "start-hub", env=acme_env(pebble))
    assert again.code == 0, again.output
    assert again.changed() == []
