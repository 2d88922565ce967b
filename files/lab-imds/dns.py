"""Lab only: the lab's DNS, answering for the lab's Route53 as Route53 would.

Every lab host asks it (Docker's resolver in each forwards to it). A name in a hosted zone that
holds A records is answered from those records (its own, else the closest wildcard's; none: no
such name), read from ZONES on every question: {zone: {record name: [addresses]}}, which the lab's
EC2 API (moto, which holds the zones) rewrites, whole, after each change. Where no such zone holds
it, NAME and every name under it resolve to ADDRESS for each NAME=ADDRESS argument (the hub's DNS
name and its users' servers' names). Any other question goes to this container's own resolver,
and its answer comes back unchanged. UDP only, A records only (a name answered here has no other
type).
"""

import json
import os
import socket
import struct
import sys
import threading

UPSTREAM = ("127.0.0.11", 53)
ZONES = os.environ.get("DNS_ZONES", "/srv/imds-data/zones.json")
A, IN = 1, 1
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
    """The zones' A records as the lab's EC2 API wrote them last (written in one step, so whole)."""
    try:
        with open(ZONES) as file:
            return json.load(file)
    except (FileNotFoundError, ValueError):
        return {}


def record_addresses(name, held):
    """The addresses the A records of the zone of HELD holding NAME give it ([]: no such name);
    None when no zone with A records holds NAME."""
    holding = [zone for zone, records in held.items() if records and under(name, zone)]
    if not holding:
        return None
    records = held[max(holding, key=len)]
    labels = name.split(".")
    wildcards = ("*." + ".".join(labels[start:]) for start in range(1, len(labels)))
    return next((records[n] for n in (name, *wildcards) if n in records), [])


def addresses(name, fixed):
    """What the lab answers for NAME: the zones' records, else FIXED's ({name: address}, for every
    name under each too); None: a question for upstream."""
    found = record_addresses(name, zones())
    if found is not None:
        return found
    return next(([address] for apex, address in fixed.items() if under(name, apex)), None)


def answer(packet, end, kind, found):
    """The reply: the question and, when it asked for A records, one for each address FOUND;
    no such name when FOUND is empty."""
    ident, flags = struct.unpack("!HH", packet[:4])
    records = found if kind == A else []
    rcode = 0 if found else NXDOMAIN
    header = struct.pack("!HHHHHH", ident, 0x8480 | (flags & 0x0100) | rcode, 1, len(records), 0, 0)
    body = packet[12:end]
    for address in records:
        body += struct.pack("!HHHIH", 0xC00C, A, IN, TTL, 4) + socket.inet_aton(address)
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
        if found is None:
            threading.Thread(target=forward, args=(server, packet, client), daemon=True).start()
            continue
        try:
            server.sendto(answer(packet, end, kind, found), client)
        except OSError:
            pass  # a record holding no IPv4 address, or the client gone: no answer


if __name__ == "__main__":
    main(dict(argument.lower().split("=", 1) for argument in sys.argv[1:]))
