"""The lab's EC2 API: moto's server, wrapped so that the lab's hosts follow the instances.

`python -m tasks.lab.ec2_api --port P --also-on GATEWAY` serves moto on 127.0.0.1:P, as
`python -m moto.server` does, behind `Follower`, and on GATEWAY:P, this machine's address on the
lab network, where the lab's hosts reach it (the hub's own AWS clients: HUBSWARM_HUB_AWS_ENDPOINTS);
nowhere else (not on every address), as what answers here makes lab hosts.

moto invents the private IP of an instance launched without one, and the deployment then connects
to that IP. So when a RunInstances without a PrivateIpAddress (what `fab scale` and `fab launch`
send; the lab's own seeding always names one) has launched workers of cluster `lab`, the lab makes
a lab host at each new IP before answering (tasks.lab.follow_launch); when a TerminateInstances has
terminated workers of cluster `lab`, it removes their hosts (tasks.lab.follow_termination). A host
it cannot make turns the answer into an error, and the instances just launched are terminated: the
deployment never finds one without its host.

moto answers Route53 at the same address (AWS_ENDPOINT_URL_ROUTE_53): its dispatcher finds the
service in the request's signature. After each request that may change records (any Route53
request but a read, and moto's reset), the lab's DNS is given the A records of every hosted zone
moto then holds (tasks.lab.imds.write_zones); when it cannot be, the answer is an error.
"""

import argparse
import io
import json
import os
import sys
import threading
import xml.etree.ElementTree as ET
from functools import partial
from urllib.parse import parse_qsl, urlencode

from tasks import lab as lab_module
from tasks.aws.route53 import plain_name

from . import ec2 as lab_ec2

FOLLOWED = ("RunInstances", "TerminateInstances")
CLUSTER_TAG, ROLE_TAG = "hubswarm:cluster", "hubswarm:role"
ROUTE53_API = "/2013-04-01"
MOTO_RESET = "/moto-api/reset"
# moto finds a request's service in its signature, and checks nothing else of it: Route53's (us-east-1).
ROUTE53_SIGNATURE = (
    "AWS4-HMAC-SHA256 Credential=testing/20130401/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=lab"
)


def _form(environ):
    """The form-encoded (Query API) body of the request as a dict; the body is left readable."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def _call(app, environ):
    """(status, headers, body) of the WSGI APP's answer to ENVIRON."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, headers
        return chunks.append

    chunks = []
    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return answer["status"], answer["headers"], b"".join(chunks)


def _request(environ, params):
    """ENVIRON, its body replaced by the form PARAMS (same signer's headers: moto finds EC2 and
    the region in them, and checks no signature)."""
    body = urlencode(params).encode()
    return {
        **environ,
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }


def _instances(xml):
    """[{id, ip, tags}] of the instances in an EC2 answer (RunInstances, DescribeInstances)."""
    found = []
    for item in ET.fromstring(xml).iter():
        if item.tag.rpartition("}")[2] == "item" and item.find("{*}instanceId") is not None:
            tags = {tag.findtext("{*}key"): tag.findtext("{*}value") for tag in item.findall("{*}tagSet/{*}item")}
            found.append(
                {"id": item.findtext("{*}instanceId"), "ip": item.findtext("{*}privateIpAddress"), "tags": tags}
            )
    return found


def _lab_workers(instances):
    return [
        i for i in instances if i["tags"].get(CLUSTER_TAG) == lab_ec2.CLUSTER and i["tags"].get(ROLE_TAG) == "worker"
    ]


def _error(message, route53=False):
    """An EC2 error answer (Route53's, with ROUTE53). 400, not 500: botocore retries a 500, and each
    retry would launch again."""
    code = "LabDnsFailed" if route53 else "LabHostFailed"
    error = f"<Error><Code>{code}</Code><Message>{_escape(message)}</Message></Error>"
    document = (
        f"<ErrorResponse>{error}<RequestId>lab</RequestId></ErrorResponse>"
        if route53
        else f"<Response><Errors>{error}</Errors><RequestID>lab</RequestID></Response>"
    )
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n{document}'.encode()
    return "400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))], xml


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _changes_records(environ):
    """Whether the request may change Route53's records: any but a read, and moto's reset."""
    path = environ.get("PATH_INFO", "")
    return environ.get("REQUEST_METHOD") != "GET" and (path.startswith(f"{ROUTE53_API}/") or path == MOTO_RESET)


def _route53_read(path):
    """A WSGI request for moto's Route53: GET PATH of its API."""
    from werkzeug.test import EnvironBuilder  # moto's server brings werkzeug

    return EnvironBuilder(path=f"{ROUTE53_API}{path}", headers={"Authorization": ROUTE53_SIGNATURE}).get_environ()


def _reason(exc):
    return " ".join(str(getattr(exc, "message", None) or exc or type(exc).__name__).split())


class Follower:
    """WSGI middleware around moto's app: LAB (tasks.lab) follows RunInstances and TerminateInstances,
    one request at a time."""

    def __init__(self, app, lab=lab_module):
        self.app = app
        self.lab = lab
        self.lock = threading.Lock()
        # Taken now: the code it runs is the code at its start, whatever the files say later.
        self.identity = json.dumps({**lab_ec2.api_code(), "pid": os.getpid()}).encode()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == lab_ec2.API_PATH:
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(self.identity)))]
            )
            return [self.identity]
        route53 = _changes_records(environ)
        if route53:
            follow, what = self._records, "Route53's records"
        else:
            form = _form(environ)
            if form.get("Action") not in FOLLOWED:
                return self.app(environ, start_response)
            follow = partial(self._run if form["Action"] == "RunInstances" else self._terminate, form=form)
            what = form["Action"]
        with self.lock:
            try:
                status, headers, body = follow(environ)
            except Exception as exc:  # noqa: BLE001 - any failure must reach the caller as an answer
                status, headers, body = _error(f"the lab could not follow {what}: {_reason(exc)}", route53)
        start_response(status, headers)
        return [body]

    def _records(self, environ):
        """moto's answer to a request that may change records, once the lab's DNS has them."""
        answer = _call(self.app, environ)
        if answer[0].startswith("2"):
            self.follow_records()
        return answer

    def follow_records(self):
        """Give the lab's DNS the A records of every hosted zone moto holds."""
        zones = {}
        for zone in self._route53_get("/hostedzone").iterfind(".//{*}HostedZone"):
            listed = self._route53_get(f"/hostedzone/{zone.findtext('{*}Id').rsplit('/', 1)[-1]}/rrset")
            zones[plain_name(zone.findtext("{*}Name"))] = {
                plain_name(record.findtext("{*}Name")): [
                    value.text for value in record.iterfind("{*}ResourceRecords/{*}ResourceRecord/{*}Value")
                ]
                for record in listed.iterfind(".//{*}ResourceRecordSet")
                if record.findtext("{*}Type") == "A"
            }
        self.lab.lab_imds.write_zones(zones)

    def _route53_get(self, path):
        """moto's Route53 answer to GET PATH, parsed."""
        status, _, body = _call(self.app, _route53_read(path))
        if not status.startswith("2"):
            raise RuntimeError(f"moto's Route53 answered {status} to GET {path}")
        return ET.fromstring(body)

    def _inner(self, environ, form, action, ids):
        """moto's answer to ACTION on the instance IDS, asked as the request ENVIRON (FORM) was."""
        params = {"Action": action, **{f"InstanceId.{n}": i for n, i in enumerate(ids, start=1)}}
        if form.get("Version"):
            params["Version"] = form["Version"]
        return _call(self.app, _request(environ, params))

    def _run(self, environ, form):
        status, headers, body = _call(self.app, environ)
        named = any(key.rpartition(".")[2] == "PrivateIpAddress" for key in form)
        if not status.startswith("2") or named:
            return status, headers, body
        launched = _lab_workers(_instances(body))
        made = []
        try:
            for instance in launched:
                host = (instance["tags"].get("Name") or "").removeprefix(f"{lab_ec2.CLUSTER}-")
                self.lab.follow_launch(host, instance["ip"], instance["id"])
                made.append(instance)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the caller as an answer
            failed = launched[len(made)]
            message = (
                f"the lab could not make a host for {failed['tags'].get('Name') or failed['id']} at {failed['ip']} "
                f"({_reason(exc)}); terminated {' '.join(i['id'] for i in launched)}"
            )
            print(f"lab EC2 API: {message}", file=sys.stderr, flush=True)
            # No instance without its host: the deployment would connect to its IP.
            self._inner(environ, form, "TerminateInstances", [i["id"] for i in launched])
            for instance in made:
                self.lab.follow_termination(instance["ip"])
            return _error(message)
        return status, headers, body

    def _terminate(self, environ, form):
        ids = [value for key, value in form.items() if key.startswith("InstanceId.")]
        described = self._inner(environ, form, "DescribeInstances", ids)  # before: for their IPs and tags
        status, headers, body = _call(self.app, environ)
        if not (status.startswith("2") and described[0].startswith("2")):
            return status, headers, body
        for instance in _lab_workers(_instances(described[2])):
            self.lab.follow_termination(instance["ip"])
        return status, headers, body


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=lab_ec2.moto_port())
    parser.add_argument(
        "--also-on", action="append", default=[], metavar="ADDRESS", help="another address to listen on"
    )
    args = parser.parse_args(argv)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = Follower(DomainDispatcherApplication(create_backend_app))
    app.follow_records()  # none yet: the lab's DNS forgets the last server's
    addresses = ["127.0.0.1", *args.also_on]
    # Every address bound before any answers: one it cannot take ends the server, which never answered.
    servers = [make_server(address, args.port, app, threaded=True) for address in addresses]
    print(f"lab EC2 API on {', '.join(addresses)} port {args.port} (pid {os.getpid()})", file=sys.stderr, flush=True)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
