"""The lab's EC2 API: moto's server, wrapped so that the lab's hosts follow the instances.

`python -m tasks.lab.ec2_api --port P` serves moto on 127.0.0.1:P, as `python -m moto.server`
does, behind `Follower`. moto invents the private IP of an instance launched without one, and
the deployment then connects to that IP. So when a RunInstances without a PrivateIpAddress (what
`fab scale` and `fab launch` send; the lab's own seeding always names one) has launched workers of
cluster `lab`, the lab makes a lab host at each new IP before answering (tasks.lab.follow_launch);
when a TerminateInstances has terminated workers of cluster `lab`, it removes their hosts
(tasks.lab.follow_termination). A host it cannot make turns the answer into an error, and the
instances just launched are terminated: the deployment never finds one without its host.
"""

import argparse
import io
import json
import os
import sys
import threading
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlencode

from tasks import lab as lab_module

from . import ec2 as lab_ec2

FOLLOWED = ("RunInstances", "TerminateInstances")
CLUSTER_TAG, ROLE_TAG = "hubswarm:cluster", "hubswarm:role"


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


def _error(message):
    """An EC2 error answer. 400, not 500: botocore retries a 500, and each retry would launch again."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>LabHostFailed</Code>'
        f"<Message>{_escape(message)}</Message></Error></Errors><RequestID>lab</RequestID></Response>"
    ).encode()
    return "400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))], xml


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
        form = _form(environ)
        if form.get("Action") not in FOLLOWED:
            return self.app(environ, start_response)
        with self.lock:
            try:
                answer = (self._run if form["Action"] == "RunInstances" else self._terminate)(environ, form)
            except Exception as exc:  # noqa: BLE001 - any failure must reach the caller as an answer
                answer = _error(f"the lab could not follow {form['Action']}: {_reason(exc)}")
        status, headers, body = answer
        start_response(status, headers)
        return [body]

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
    args = parser.parse_args(argv)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = Follower(DomainDispatcherApplication(create_backend_app))
    print(f"lab EC2 API on 127.0.0.1:{args.port} (pid {os.getpid()})", file=sys.stderr, flush=True)
    make_server("127.0.0.1", args.port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
