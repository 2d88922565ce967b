"""The hub's front door as a scanner sees it: testssl.sh against nginx on the lab hub.

No protocol below TLS 1.2, no weak, CBC or non forward secret suite, HSTS, and no
version in any banner. testssl (Debian's testssl.sh, installed by bin/setup) is
given the hub's address, so it looks nothing up and reaches nothing else.
"""

import json
import shutil
import socket
import ssl
import subprocess

import pytest
import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

LEGACY_PROTOCOLS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
WEAK_CATEGORIES = ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA")
# "Obsolete CBC ciphers": AVERAGE up to testssl 3.1, OBSOLETED from 3.2.
CBC_CATEGORIES = ("AVERAGE", "OBSOLETED")
FORWARD_SECRET = ("ECDH", "DH")
AEAD = ("AESGCM", "ChaCha20")


def scan(ip, folder):
    """testssl's findings for https://IP/ as {id: [(severity, finding)]}."""
    report = folder / "testssl.json"
    program = shutil.which("testssl")
    assert program, "testssl not found: bin/setup installs Debian's testssl.sh"
    command = [
        program,
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "off",
        "--nodns",
        "none",
        "--connect-timeout",
        "5",
        "--openssl-timeout",
        "5",
        "--jsonfile",
        str(report),
        "-p",  # protocols
        "-s",  # cipher categories
        "-f",  # forward secrecy
        "-E",  # each cipher, per protocol
        "-h",  # headers: HSTS, server and application banners
        f"https://{ip}/",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert report.is_file() and report.stat().st_size, f"testssl wrote no report (exit {run.returncode}):\n{run.stdout}"
    findings = {}
    for item in json.loads(report.read_text()):
        findings.setdefault(item["id"], []).append((item["severity"], item["finding"]))
    return findings


def offered_cipher(finding):
    """(name, key exchange, encryption) of an -E finding such as
    ``TLS 1.2   xc02f   ECDHE-RSA-AES128-GCM-SHA256   ECDH 253   AESGCM   128   TLS_ECDHE_...``."""
    words = finding.split()
    at = next(i for i, w in enumerate(words) if w.startswith("x"))
    name, kx, *rest = words[at + 1 :]
    return name, kx, next(w for w in rest if not w.isdigit())


def problems(findings):
    """What testssl found wrong, one line each."""
    found = []

    def only(jsonid):
        answers = findings.get(jsonid, [])
        return answers[0][1] if len(answers) == 1 else f"{len(answers)} findings"

    if only("service") != "HTTP":
        found.append(f"service: {only('service')} (no HTTP: headers not checked)")
    for protocol in LEGACY_PROTOCOLS:
        if "not offered" not in only(protocol):
            found.append(f"{protocol}: {only(protocol)}")
    for protocol in ("TLS1_2", "TLS1_3"):
        if not only(protocol).startswith("offered"):
            found.append(f"{protocol}: {only(protocol)}")
    for category in WEAK_CATEGORIES:
        if only(f"cipherlist_{category}") != "not offered":
            found.append(f"cipherlist_{category}: {only(f'cipherlist_{category}')}")
    cbc = [answer for c in CBC_CATEGORIES for _, answer in findings.get(f"cipherlist_{c}", [])]
    if cbc != ["not offered"]:
        found.append(f"obsolete CBC ciphers: {cbc}")
    if only("PFS") != "offered":
        found.append(f"forward secrecy: {only('PFS')}")
    ciphers = {jsonid: answers[0][1] for jsonid, answers in findings.items() if jsonid.startswith("cipher-")}
    if not any(jsonid.startswith("cipher-tls1_2_") for jsonid in ciphers):
        found.append("no TLS 1.2 cipher found per protocol (-E)")
    for jsonid, finding in ciphers.items():
        name, kx, enc = offered_cipher(finding)
        if not jsonid.startswith(("cipher-tls1_2_", "cipher-tls1_3_")) or kx not in FORWARD_SECRET or enc not in AEAD:
            found.append(f"{jsonid}: {finding}")
    if findings.get("HSTS_time", [("", "")])[0][0] != "OK" or "HSTS" in findings:
        found.append(f"HSTS: {findings.get('HSTS') or findings.get('HSTS_time')}")
    if only("banner_server") != "nginx":
        found.append(f"banner_server: {only('banner_server')}")
    if only("banner_application") != "No application banner found":
        found.append(f"banner_application: {only('banner_application')}")
    for jsonid, answers in findings.items():
        if any("x-jupyterhub-version" in answer.lower() for _, answer in answers):
            found.append(f"{jsonid}: {answers}")
    return found


def tls12_handshake(ip, ciphers):
    """The suite a TLS 1.2 client offering only ``ciphers`` gets (SSLError when none)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    with socket.create_connection((ip, 443), timeout=10) as raw, context.wrap_socket(raw) as tls:
        return tls.cipher()[0]


def test_testssl_finds_nothing_weak_and_no_version(lab, hub_run, tmp_path):
    assert hub_run.code == 0, hub_run.output
    found = problems(scan(lab.hub_ip, tmp_path))
    assert not found, "testssl against the hub:\n" + "\n".join(found)


def test_a_cbc_sha1_suite_is_refused(lab, hub_run):
    assert tls12_handshake(lab.hub_ip, "ECDHE-RSA-AES128-GCM-SHA256") == "ECDHE-RSA-AES128-GCM-SHA256"
    with pytest.raises(ssl.SSLError):
        tls12_handshake(lab.hub_ip, "AES128-SHA")


def test_answers_name_no_version(lab, hub_run, connect):
    # The hub itself does send its version: nginx must be what hides it.
    upstream = connect(lab.hub_ip).run("curl -s -o /dev/null -D - http://127.0.0.1:8000/hub/login", hide=True).stdout
    assert "x-jupyterhub-version:" in upstream.lower()
    for path in ("/", "/hub/login", "/hub/nowhere"):
        reply = requests.get(f"https://{lab.hub_ip}{path}", verify=False, allow_redirects=False, timeout=10)
        assert "X-JupyterHub-Version" not in reply.headers, path
        assert reply.headers["Server"] == "nginx", path
        assert reply.headers["Strict-Transport-Security"] == "max-age=63072000", path
