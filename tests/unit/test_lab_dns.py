"""The lab's DNS (files/lab-imds/dns.py): the lab's Route53 records where a zone holds A records,
else its fixed rule for the hub's lab name, else upstream; the replies as a resolver reads them."""

import importlib.util
import json
import socket
import struct

import pytest

from fakehost import ROOT

spec = importlib.util.spec_from_file_location("lab_dns", ROOT / "files" / "lab-imds" / "dns.py")
dns = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dns)

HUB, WORKER = "10.213.0.10", "10.213.0.11"
FIXED = {"hub.lab.example": HUB}
ZONES = {
    "lab.example": {"hub.lab.example": [WORKER], "*.hub.lab.example": [HUB], "*.deep.hub.lab.example": [WORKER]},
    "empty.example": {},
}


@pytest.mark.parametrize(
    "name, found",
    [
        ("hub.lab.example", [WORKER]),  # its own record
        ("student1.hub.lab.example", [HUB]),  # the wildcard
        ("a.b.hub.lab.example", [HUB]),
        ("x.deep.hub.lab.example", [WORKER]),  # the closest wildcard
        ("other.lab.example", []),  # in the zone, no record: no such name
        ("lab.example", []),
        ("hub.empty.example", None),  # a zone without A records: not answered from it
        ("example.com", None),
    ],
)
def test_a_zone_with_records_answers_from_them(name, found):
    assert dns.record_addresses(name, ZONES) == found


def test_the_most_specific_zone_answers():
    zones = {"example": {"*.example": [WORKER]}, "lab.example": {"*.lab.example": [HUB]}}
    assert dns.record_addresses("x.lab.example", zones) == [HUB]


@pytest.mark.parametrize(
    "zones, name, found",
    [
        ({}, "student1.hub.lab.example", [HUB]),  # no zone: the fixed rule
        ({"lab.example": {}}, "student1.hub.lab.example", [HUB]),  # a zone with no record yet: the same
        ({"lab.example": {}}, "lab.example", None),  # upstream
        (ZONES, "student1.hub.lab.example", [HUB]),
        (ZONES, "hub.lab.example", [WORKER]),  # the records win over the fixed rule
        ({"lab.example": {"*.hub.lab.example": [HUB]}}, "hub.lab.example", []),
        ({}, "pypi.org", None),
    ],
)
def test_records_else_the_fixed_rule_else_upstream(tmp_path, monkeypatch, zones, name, found):
    path = tmp_path / "zones.json"
    path.write_text(json.dumps(zones))
    monkeypatch.setattr(dns, "ZONES", str(path))
    assert dns.addresses(name, FIXED) == found


def test_the_zones_are_read_again_for_every_question(tmp_path, monkeypatch):
    path = tmp_path / "zones.json"
    monkeypatch.setattr(dns, "ZONES", str(path))
    assert dns.zones() == {}  # none written yet
    path.write_text(json.dumps(ZONES))
    assert dns.addresses("hub.lab.example", FIXED) == [WORKER]
    path.write_text(json.dumps({"lab.example": {"hub.lab.example": [HUB]}}))
    assert dns.addresses("hub.lab.example", FIXED) == [HUB]


def query(name, kind=dns.A, ident=0x1234):
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", kind, dns.IN)


def reply(name, kind, found):
    """(id, rcode, the addresses answered) of the lab's reply, as a resolver reads it."""
    packet = query(name, kind)
    asked, asked_kind, end = dns.question(packet)
    assert (asked, asked_kind) == (name, kind)
    answer = dns.answer(packet, end, kind, found)
    ident, flags, questions, count = struct.unpack("!HHHH", answer[:8])
    assert questions == 1 and flags & 0x8400 == 0x8400 and flags & 0x0100  # an authoritative reply, RD kept
    records = answer[end:]
    addresses = [socket.inet_ntoa(records[i * 16 + 12 : i * 16 + 16]) for i in range(count)]
    return ident, flags & 0xF, addresses


@pytest.mark.parametrize(
    "kind, found, answered",
    [
        (dns.A, [HUB], (0x1234, 0, [HUB])),
        (dns.A, [HUB, WORKER], (0x1234, 0, [HUB, WORKER])),
        (28, [HUB], (0x1234, 0, [])),  # AAAA: the name is there, with no such record
        (dns.A, [], (0x1234, dns.NXDOMAIN, [])),
    ],
)
def test_the_reply(kind, found, answered):
    assert reply("student1.hub.lab.example", kind, found) == answered
