"""Lab only: the lab's DNS, answering for the lab's Route53 as Route53 would.

Every lab host asks it (Docker's resolver in each forwards to it), and so does the lab's ACME
server (pebble), for the TXT records of DNS-01 challenges. A name in a hosted zone that holds A
records is answered from those records (its own, else the closest wildcard's; none: no such name),
read from ZONES on every question: {zone: {"A": {record name: [addresses]}, "TXT": {record name:
[[strings of one value], ...]}}}, which the lab's EC2 API (moto, which holds the zones) rewrites,
whole, after each change. Where no such zone holds it, NAME and every name under it resolve to
ADDRESS for each NAME=ADDRESS argument (the hub's DNS name and its users' servers' names). A TXT
question is answered the same way from the zones' TXT records; a name without one has none. Any
other question goes to this container's own resolver, and its answer comes back unchanged. UDP
only, A and TXT records only (a name answered here has no other type).
"""

import json
import os
import socket
import struct
import sys
import threading

UPSTREAM = ("127.0.0.11", 53)
ZONES = os.environ.get("DNS_ZONES", "/srv/imds-data/zones.json")
A, TXT, IN = 1, 16, 1
NXDOMAIN = 3
TTL = 60


def question(packet):
    """(name, type, end offset of the question) of a query."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace").lower())
        offset += 1 + length
    kind, _ = struct.unpack("!HH", packet[offset + 1 : offset + 5])
    return ".".join(labels), kind, offset + 5


def under(name, apex):
    return name == apex or name.endswith("." + apex)


def zones():
    """The zones' records as the lab's EC2 API wrote them last (written in one step, so whole)."""
    try:
        with open(ZONES) as file:
            return json.load(file)
    except (FileNotFoundError, ValueError):
        return {}


def record_values(name, held, kind):
    """The values the KIND ("A", "TXT") records of the zone of HELD holding NAME give it ([]: none);
    None when no zone with KIND records holds NAME."""
    holding = [zone for zone, records in held.items() if records.get(kind) and under(name, zone)]
    if not holding:
        return None
    records = held[max(holding, key=len)][kind]
    labels = name.split(".")
    wildcards = ("*." + ".".join(labels[start:]) for start in range(1, len(labels)))
    return next((records[n] for n in (name, *wildcards) if n in records), [])


def record_addresses(name, held):
    """The addresses the A records of the zone of HELD holding NAME give it ([]: no such name);
    None when no zone with A records holds NAME."""
    return record_values(name, held, "A")


def addresses(name, fixed):
    """What the lab answers for NAME: the zones' records, else FIXED's ({name: address}, for every
    name under each too); None: a question for upstream."""
    found = record_addresses(name, zones())
    if found is not None:
        return found
    return next(([address] for apex, address in fixed.items() if under(name, apex)), None)


def texts(name):
    """The TXT values the zones give NAME (each a list of strings); None when no zone with TXT
    records holds it."""
    return record_values(name, zones(), "TXT")


def character_strings(strings):
    """A TXT record's data: each string as DNS's character-strings (at most 255 bytes each)."""
    data = b""
    for text in strings:
        raw = text.encode()
        for start in range(0, max(len(raw), 1), 255):
            chunk = raw[start : start + 255]
            data += bytes([len(chunk)]) + chunk
    return data


def answer(packet, end, kind, found, values=()):
    """The reply: the question and, when it asked for A records, one for each address FOUND, when
    it asked for TXT records, one for each of VALUES; no such name when both are empty."""
    ident, flags = struct.unpack("!HH", packet[:4])
    if kind == A:
        records = [(A, socket.inet_aton(address)) for address in found]
    elif kind == TXT:
        records = [(TXT, character_strings(strings)) for strings in values]
    else:
        records = []
    rcode = 0 if found or values else NXDOMAIN
    header = struct.pack("!HHHHHH", ident, 0x8480 | (flags & 0x0100) | rcode, 1, len(records), 0, 0)
    body = packet[12:end]
    for kind_, data in records:
        body += struct.pack("!HHHIH", 0xC00C, kind_, IN, TTL, len(data)) + data
    return header + body


def forward(server, packet, client):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
        upstream.settimeout(5)
        try:
            upstream.sendto(packet, UPSTREAM)
            server.sendto(upstream.recv(4096), client)
        except OSError:
            pass  # the client asks again


def main(fixed):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", 53))
    while True:
        packet, client = server.recvfrom(4096)
        try:
            name, kind, end = question(packet)
        except (IndexError, struct.error):
            continue
        found = addresses(name, fixed)
        values = texts(name) if kind == TXT else None
        if found is None and values is None:
            threading.Thread(target=forward, args=(server, packet, client), daemon=True).start()
            continue
        try:
            server.sendto(answer(packet, end, kind, found or [], values or []), client)
        except OSError:
            pass  # a record holding no IPv4 address, or the client gone: no answer


if __name__ == "__main__":
    main(dict(argument.lower().split("=", 1) for argument in sys.argv[1:]))
