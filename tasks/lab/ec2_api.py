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
request but a read, and moto's reset), the lab's DNS is given the A and TXT records of every
hosted zone moto then holds (tasks.lab.imds.write_zones): the hosts' names, and the TXT records of
the DNS-01 challenges certbot writes there, which the lab's ACME server asks the lab's DNS for;
when it cannot be, the answer is an error.

IAM too (AWS_ENDPOINT_URL_IAM). After each request that may change which role an instance's
instance profile gives it (EC2's associations of instance profiles, IAM's roles in instance
profiles), the lab's metadata stand-in is given the role of every instance that has one
(tasks.lab.imds.write_roles), whose credentials it then hands that instance's host, as EC2 does;
when it cannot be, the answer is an error. (An instance launched with an instance profile is not
followed yet: hubswarm launches none.)
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
# The records the lab's DNS answers from (files/lab-imds/dns.py).
FOLLOWED_RECORDS = ("A", "TXT")
# Requests after which an instance's instance profile may give it another role, or none.
EC2_ROLE_ACTIONS = (
    "AssociateIamInstanceProfile",
    "ReplaceIamInstanceProfileAssociation",
    "DisassociateIamInstanceProfile",
)
IAM_ROLE_ACTIONS = ("AddRoleToInstanceProfile", "RemoveRoleFromInstanceProfile", "DeleteInstanceProfile")
CLUSTER_TAG, ROLE_TAG = "hubswarm:cluster", "hubswarm:role"
ROUTE53_API = "/2013-04-01"
MOTO_RESET = "/moto-api/reset"
# Route53's and IAM's region; their API versions, and EC2's.
GLOBAL_REGION = "us-east-1"
EC2_VERSION, IAM_VERSION = "2016-11-15", "2010-05-08"
FORM_TYPE = "application/x-www-form-urlencoded"


def txt_strings(value):
    """The strings of a TXT record's value as Route53 holds it: quoted, separated by spaces,
    ``\\"``, ``\\\\`` and ``\\ddd`` (octal) escaped (``"a" "b\\"c"`` -> ``["a", 'b"c']``)."""
    strings, current, quoted, index = [], None, False, 0
    while index < len(value):
        char = value[index]
        if not quoted:
            if char == '"':
                quoted, current = True, bytearray()
            index += 1
            continue
        if char == "\\":
            octal = value[index + 1 : index + 4]
            if len(octal) == 3 and all(c in "01234567" for c in octal):
                current.append(int(octal, 8))
                index += 4
                continue
            current += value[index + 1 : index + 2].encode()
            index += 2
            continue
        if char == '"':
            strings.append(current.decode(errors="replace"))
            quoted = False
        else:
            current += char.encode()
        index += 1
    return strings


def _form(environ):
    """The form-encoded (Query API) body of the request as a dict; the body is left readable."""
    if not environ.get("CONTENT_TYPE", "").startswith(FORM_TYPE):
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
        "CONTENT_TYPE": f"{FORM_TYPE}; charset=utf-8",
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


def _error(code, message, ec2=True):
    """An EC2 error answer (without EC2: Route53's and IAM's). 400, not 500: botocore retries a 500,
    and each retry would launch again."""
    error = f"<Error><Code>{code}</Code><Message>{_escape(message)}</Message></Error>"
    document = (
        f"<Response><Errors>{error}</Errors><RequestID>lab</RequestID></Response>"
        if ec2
        else f"<ErrorResponse>{error}<RequestId>lab</RequestId></ErrorResponse>"
    )
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n{document}'.encode()
    return "400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))], xml


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _changes_records(environ):
    """Whether the request may change Route53's records: any but a read, and moto's reset."""
    path = environ.get("PATH_INFO", "")
    return environ.get("REQUEST_METHOD") != "GET" and (path.startswith(f"{ROUTE53_API}/") or path == MOTO_RESET)


def _moto_request(service, region, path="/", form=None):
    """A WSGI request for moto's SERVICE in REGION: GET PATH, or POST the Query API's FORM."""
    from werkzeug.test import EnvironBuilder  # moto's server brings werkzeug

    # moto finds a request's service and region in its signature, and checks nothing else of it.
    credential = f"testing/20130401/{region}/{service}/aws4_request"
    headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=lab"}
    posted = {} if form is None else {"method": "POST", "data": urlencode(form), "content_type": FORM_TYPE}
    return EnvironBuilder(path=path, headers=headers, **posted).get_environ()


def _reason(exc):
    return " ".join(str(getattr(exc, "message", None) or exc or type(exc).__name__).split())


class Follower:
    """WSGI middleware around moto's app: LAB (tasks.lab) follows RunInstances and TerminateInstances,
    Route53's records and instances' roles, one request at a time."""

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
        if _changes_records(environ):
            follow, what, failed = self._records, "Route53's records", partial(_error, "LabDnsFailed", ec2=False)
        else:
            form = _form(environ)
            what = form.get("Action")
            if what in FOLLOWED:
                follow = partial(self._run if what == "RunInstances" else self._terminate, form=form)
                failed = partial(_error, "LabHostFailed")
            elif what in EC2_ROLE_ACTIONS + IAM_ROLE_ACTIONS:
                follow = self._roles
                failed = partial(_error, "LabRolesFailed", ec2=what in EC2_ROLE_ACTIONS)
            else:
                return self.app(environ, start_response)
        with self.lock:
            try:
                status, headers, body = follow(environ)
            except Exception as exc:  # noqa: BLE001 - any failure must reach the caller as an answer
                status, headers, body = failed(f"the lab could not follow {what}: {_reason(exc)}")
        start_response(status, headers)
        return [body]

    def _records(self, environ):
        """moto's answer to a request that may change records, once the lab's DNS has them."""
        answer = _call(self.app, environ)
        if answer[0].startswith("2"):
            self.follow_records()
        return answer

    def follow_records(self):
        """Give the lab's DNS the A and TXT records of every hosted zone moto holds."""
        zones = {}
        for zone in self._route53_get("/hostedzone").iterfind(".//{*}HostedZone"):
            listed = self._route53_get(f"/hostedzone/{zone.findtext('{*}Id').rsplit('/', 1)[-1]}/rrset")
            held = zones.setdefault(plain_name(zone.findtext("{*}Name")), {})
            for record in listed.iterfind(".//{*}ResourceRecordSet"):
                kind = record.findtext("{*}Type")
                if kind not in FOLLOWED_RECORDS:
                    continue
                values = [value.text for value in record.iterfind("{*}ResourceRecords/{*}ResourceRecord/{*}Value")]
                name = plain_name(record.findtext("{*}Name"))
                held.setdefault(kind, {})[name] = [txt_strings(v) for v in values] if kind == "TXT" else values
        self.lab.lab_imds.write_zones(zones)

    def _route53_get(self, path):
        """moto's Route53 answer to GET PATH, parsed."""
        return self._parsed(_moto_request("route53", GLOBAL_REGION, f"{ROUTE53_API}{path}"), f"Route53's GET {path}")

    def _roles(self, environ):
        """moto's answer to a request that may change an instance's role, once the metadata stand-in has it."""
        answer = _call(self.app, environ)
        if answer[0].startswith("2"):
            self.follow_roles()
        return answer

    def follow_roles(self):
        """Give the lab's metadata stand-in the role of every instance whose instance profile holds one."""
        form = {"Action": "DescribeIamInstanceProfileAssociations", "Version": EC2_VERSION}
        associations = self._parsed(_moto_request("ec2", lab_ec2.REGION, form=form), form["Action"])
        roles = {}
        for association in associations.iterfind(".//{*}iamInstanceProfileAssociationSet/{*}item"):
            if association.findtext("{*}state") not in ("associating", "associated"):
                continue
            arn = association.findtext("{*}iamInstanceProfile/{*}arn")
            form = {
                "Action": "GetInstanceProfile",
                "InstanceProfileName": arn.rsplit("/", 1)[-1],
                "Version": IAM_VERSION,
            }
            profile = self._parsed(_moto_request("iam", GLOBAL_REGION, form=form), form["Action"])
            role = profile.findtext(".//{*}Roles/{*}member/{*}RoleName")
            if role:
                roles[association.findtext("{*}instanceId")] = {
                    "InstanceProfileArn": arn,
                    "InstanceProfileId": profile.findtext(".//{*}InstanceProfile/{*}InstanceProfileId"),
                    "RoleName": role,
                }
        self.lab.lab_imds.write_roles(roles)

    def _parsed(self, environ, what):
        """moto's answer to the request ENVIRON (WHAT it asks), parsed."""
        status, _, body = _call(self.app, environ)
        if not status.startswith("2"):
            raise RuntimeError(f"moto answered {status} to {what}")
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
            return _error("LabHostFailed", message)
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
