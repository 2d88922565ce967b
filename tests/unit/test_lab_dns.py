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
    "lab.example": {"A": {"hub.lab.example": [WORKER], "*.hub.lab.example": [HUB], "*.deep.hub.lab.example": [WORKER]}},
    "empty.example": {},
}
CHALLENGE = "_acme-challenge.hub.lab.example"


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
    zones = {"example": {"A": {"*.example": [WORKER]}}, "lab.example": {"A": {"*.lab.example": [HUB]}}}
    assert dns.record_addresses("x.lab.example", zones) == [HUB]


@pytest.mark.parametrize(
    "zones, name, found",
    [
        ({}, "student1.hub.lab.example", [HUB]),  # no zone: the fixed rule
        ({"lab.example": {}}, "student1.hub.lab.example", [HUB]),  # a zone with no record yet: the same
        ({"lab.example": {}}, "lab.example", None),  # upstream
        (ZONES, "student1.hub.lab.example", [HUB]),
        (ZONES, "hub.lab.example", [WORKER]),  # the records win over the fixed rule
        ({"lab.example": {"A": {"*.hub.lab.example": [HUB]}}}, "hub.lab.example", []),
        # A zone holding only a challenge's TXT record: A questions keep the fixed rule.
        ({"lab.example": {"TXT": {CHALLENGE: [["t"]]}}}, "student1.hub.lab.example", [HUB]),
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
    path.write_text(json.dumps({"lab.example": {"A": {"hub.lab.example": [HUB]}}}))
    assert dns.addresses("hub.lab.example", FIXED) == [HUB]


def query(name, kind=dns.A, ident=0x1234):
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", kind, dns.IN)


def reply(name, kind, found, values=()):
    """(id, rcode, the addresses answered) of the lab's reply, as a resolver reads it."""
    packet = query(name, kind)
    asked, asked_kind, end = dns.question(packet)
    assert (asked, asked_kind) == (name, kind)
    answer = dns.answer(packet, end, kind, found, values)
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


# --- TXT: the DNS-01 challenges certbot writes through the lab's Route53 ----------------------


def txt_records(answer, end):
    """[(type, TTL, [strings])] of a reply's answers, read as a resolver reads them."""
    count = struct.unpack("!H", answer[6:8])[0]
    found, offset = [], end
    for _ in range(count):
        pointer, kind, klass, ttl, length = struct.unpack("!HHHIH", answer[offset : offset + 12])
        assert pointer == 0xC00C and klass == dns.IN
        data, offset = answer[offset + 12 : offset + 12 + length], offset + 12 + length
        strings, at = [], 0
        while at < len(data):
            strings.append(data[at + 1 : at + 1 + data[at]].decode())
            at += 1 + data[at]
        found.append((kind, ttl, strings))
    assert offset == len(answer)
    return found


@pytest.mark.parametrize(
    "values",
    [
        [["token-for-the-name"]],
        [["token-for-the-name"], ["token-for-the-wildcard"]],  # one name, both challenges
        [["two", "strings"]],
        [[""]],
        [["x" * 300]],  # longer than one character-string: split
    ],
)
def test_a_txt_reply_holds_every_value(values):
    packet = query(CHALLENGE, dns.TXT)
    _, _, end = dns.question(packet)
    answer = dns.answer(packet, end, dns.TXT, [HUB], values)
    ident, flags = struct.unpack("!HH", answer[:4])
    assert ident == 0x1234 and flags & 0xF == 0
    got = txt_records(answer, end)
    assert [kind for kind, _, _ in got] == [dns.TXT] * len(values)
    assert ["".join(strings) for _, _, strings in got] == ["".join(v) for v in values]
    if values == [["x" * 300]]:
        assert [len(s) for s in got[0][2]] == [255, 45]


@pytest.mark.parametrize(
    "kind, found, values, rcode, count",
    [
        (dns.TXT, [HUB], [], 0, 0),  # the name is there (A), with no TXT record
        (dns.TXT, [], [], dns.NXDOMAIN, 0),
        (dns.TXT, [], [["t"]], 0, 1),  # only the TXT record: the name is there
        (dns.A, [HUB], [["t"]], 0, 1),  # an A question gets the address only
    ],
)
def test_txt_and_a_replies_keep_to_their_type(kind, found, values, rcode, count):
    packet = query(CHALLENGE, kind)
    _, _, end = dns.question(packet)
    answer = dns.answer(packet, end, kind, found, values)
    assert struct.unpack("!H", answer[2:4])[0] & 0xF == rcode
    assert struct.unpack("!H", answer[6:8])[0] == count


@pytest.mark.parametrize(
    "zones, name, texts",
    [
        ({"lab.example": {"TXT": {CHALLENGE: [["t1"], ["t2"]]}}}, CHALLENGE, [["t1"], ["t2"]]),
        ({"lab.example": {"TXT": {CHALLENGE: [["t1"]]}}}, "_acme-challenge.other.lab.example", []),
        (ZONES, CHALLENGE, None),  # no zone with TXT records: the A rules answer
        ({}, CHALLENGE, None),
    ],
)
def test_txt_questions_are_answered_from_the_zones(tmp_path, monkeypatch, zones, name, texts):
    path = tmp_path / "zones.json"
    path.write_text(json.dumps(zones))
    monkeypatch.setattr(dns, "ZONES", str(path))
    assert dns.texts(name) == texts


def test_the_lab_dns_answers_a_challenge_over_udp(tmp_path, monkeypatch):
    """The server loop itself, on a spare port: what pebble's resolver gets for the challenge."""
    import threading

    path = tmp_path / "zones.json"
    path.write_text(json.dumps({"lab.example": {"TXT": {CHALLENGE: [["t1"], ["t2"]]}}}))
    monkeypatch.setattr(dns, "ZONES", str(path))
    real_socket = socket.socket
    bound = {}

    class Server(real_socket):
        def bind(self, address):
            super().bind(("127.0.0.1", 0))
            bound["port"] = self.getsockname()[1]

    monkeypatch.setattr(dns.socket, "socket", Server)
    threading.Thread(target=dns.main, args=(FIXED,), daemon=True).start()
    for _ in range(100):
        if "port" in bound:
            break
        threading.Event().wait(0.02)
    with real_socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        packet = query(CHALLENGE, dns.TXT)
        client.sendto(packet, ("127.0.0.1", bound["port"]))
        answer = client.recv(4096)
    _, _, end = dns.question(packet)
    assert [strings for _, _, strings in txt_records(answer, end)] == [["t1"], ["t2"]]
