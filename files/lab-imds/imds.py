"""The lab's stand-in for the EC2 instance metadata service (IMDSv2), stdlib only.

Runs in the container hubswarm-lab-imds (see tasks/lab/imds.py), which holds 169.254.169.254 as a
local address; every lab host routes that address here. Each caller gets the identity of its
source IP (a container inside a lab host is NATed by the host's Docker, so it gets the host's, as
on EC2), read from IDENTITIES on every request: {"<ip>": {"instance-id": ..., "placement/region":
...}}. An item the caller has no value for answers 404. The items of an instance role (iam/info,
iam/security-credentials/ROLE) are JSON documents the lab wrote without their times: they are
served with LastUpdated now and, for credentials, an Expiration 6 hours on, as EC2 rotates them.

Like EC2 with http-tokens=required: PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds
(1-21600) gives a token, bound to the caller's IP; every GET needs it in X-aws-ec2-metadata-token
(401 without, or when expired or issued to another IP). A token request carrying X-Forwarded-For is
refused (403). The token's reply leaves with an IP TTL of PUT_HOP_LIMIT (EC2's
http-put-response-hop-limit): 2 lets containers one hop behind a host get a token.
"""

import json
import os
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADDRESS = os.environ.get("IMDS_ADDRESS", "169.254.169.254")
PORT = int(os.environ.get("IMDS_PORT", "80"))
IDENTITIES = os.environ.get("IMDS_IDENTITIES", "/srv/imds-data/identities.json")
PUT_HOP_LIMIT = int(os.environ.get("IMDS_PUT_HOP_LIMIT", "2"))
MAX_TTL = 21600
META_DATA = "/latest/meta-data"
IDENTITY_DOCUMENT = "/latest/dynamic/instance-identity/document"
IAM, CREDENTIALS = "iam/", "iam/security-credentials/"
CREDENTIALS_LIFETIME = 6 * 3600

_tokens = {}  # token -> (caller IP, expiry on the monotonic clock)
_lock = threading.Lock()


def identities():
    """IP -> {item: value}, as the lab wrote it last (written atomically, so always whole)."""
    try:
        with open(IDENTITIES) as file:
            return json.load(file)
    except FileNotFoundError:
        return {}


def new_token(ip, ttl):
    token = secrets.token_urlsafe(42)
    now = time.monotonic()
    with _lock:
        for old in [t for t, (_, expiry) in _tokens.items() if expiry <= now]:
            del _tokens[old]
        _tokens[token] = (ip, now + ttl)
    return token


def token_valid(token, ip):
    with _lock:
        owner, expiry = _tokens.get(token, (None, 0))
    return owner == ip and expiry > time.monotonic()


def listing(items, prefix):
    """The entries under PREFIX ('' or 'placement/'), sub-folders with a trailing slash."""
    entries = set()
    for key in items:
        if key.startswith(prefix) and key != prefix:
            head, slash, _ = key[len(prefix) :].partition("/")
            entries.add(head + slash)
    return "\n".join(sorted(entries))


def timestamp(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def served(item, value):
    """ITEM's VALUE as EC2 serves it: a document of the instance's role with its times."""
    if not item.startswith(IAM):
        return value
    now = time.time()
    document = {**json.loads(value), "LastUpdated": timestamp(now)}
    if item.startswith(CREDENTIALS):
        document["Expiration"] = timestamp(now + CREDENTIALS_LIFETIME)
    return json.dumps(document, indent=2)


def identity_document(items):
    keys = {
        "accountId": "account-id",
        "architecture": "architecture",
        "availabilityZone": "placement/availability-zone",
        "imageId": "ami-id",
        "instanceId": "instance-id",
        "instanceType": "instance-type",
        "privateIp": "local-ipv4",
        "region": "placement/region",
    }
    return json.dumps({name: items[key] for name, key in keys.items() if key in items}, indent=2)


class Handler(BaseHTTPRequestHandler):
    server_version = "EC2ws"
    sys_version = ""

    def reply(self, code, body=""):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.reply(404)
        if self.headers.get("X-Forwarded-For"):
            return self.reply(403)
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
            return self.reply(400)
        token = new_token(self.client_address[0], int(ttl))
        self.connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, PUT_HOP_LIMIT)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(token)))
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", ttl)
        self.end_headers()
        self.wfile.write(token.encode())

    def do_GET(self):
        if not token_valid(self.headers.get("X-aws-ec2-metadata-token", ""), self.client_address[0]):
            return self.reply(401)
        items = identities().get(self.client_address[0], {})
        path = self.path.split("?", 1)[0]
        if path == IDENTITY_DOCUMENT and items:
            return self.reply(200, identity_document(items))
        if path == META_DATA or path.startswith(META_DATA + "/"):
            item = path[len(META_DATA) + 1 :]
            if item in items:
                return self.reply(200, served(item, str(items[item])))
            if item == "" or item.endswith("/"):
                entries = listing(items, item)
                if entries:
                    return self.reply(200, entries)
        self.reply(404)

    def do_POST(self):
        self.reply(405)

    do_DELETE = do_PATCH = do_POST

    def log_message(self, format, *args):  # one line per request on stderr (docker logs); never headers
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")


def main():
    server = ThreadingHTTPServer((ADDRESS, PORT), Handler)
    server.daemon_threads = True
    print(f"lab IMDS stand-in on {ADDRESS}:{PORT}, identities from {IDENTITIES}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
