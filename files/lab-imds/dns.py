"""Lab only: the lab's DNS, as Route53 would answer for the hub's zone.

Every lab host asks it (Docker's resolver in each forwards to it): NAME and every name under
it resolve to ADDRESS for each NAME=ADDRESS argument (the hub's DNS name and its users'
servers' names); any other question goes to this container's own resolver, and its answer
comes back unchanged. UDP only, A records only (a zone name asked for another type has none).
"""

import socket
import struct
import sys
import threading

UPSTREAM = ("127.0.0.11", 53)
A, IN = 1, 1


def question(packet):
    """(name, type, end offset of the question) of a query."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace").lower())
        offset += 1 + length
    kind, _ = struct.unpack("!HH", packet[offset + 1 : offset + 5])
    return ".".join(labels), kind, offset + 5


def zone_address(name, zone):
    for apex, address in zone.items():
        if name == apex or name.endswith("." + apex):
            return address
    return None


def answer(packet, end, kind, address):
    """The reply: the question, and one A record when it asked for one."""
    ident, flags = struct.unpack("!HH", packet[:4])
    records = kind == A
    header = struct.pack("!HHHHHH", ident, 0x8480 | (flags & 0x0100), 1, int(records), 0, 0)
    body = packet[12:end]
    if records:
        body += struct.pack("!HHHIH", 0xC00C, A, IN, 60, 4) + socket.inet_aton(address)
    return header + body


def forward(server, packet, client):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
        upstream.settimeout(5)
        try:
            upstream.sendto(packet, UPSTREAM)
            server.sendto(upstream.recv(4096), client)
        except OSError:
            pass  # the client asks again


def main(zone):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", 53))
    while True:
        packet, client = server.recvfrom(4096)
        try:
            name, kind, end = question(packet)
        except (IndexError, struct.error):
            continue
        address = zone_address(name, zone)
        if address:
            server.sendto(answer(packet, end, kind, address), client)
        else:
            threading.Thread(target=forward, args=(server, packet, client), daemon=True).start()


if __name__ == "__main__":
    main(dict(argument.lower().split("=", 1) for argument in sys.argv[1:]))
