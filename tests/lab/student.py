"""A student, as the lab tests play one: logs in through nginx, starts a server, runs
code in a kernel over its websocket (as JupyterLab does), with the hub's REST API."""

import json
import time
import uuid

import requests
import urllib3
import websocket

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

SPAWN_SECONDS = 180


class Refused(Exception):
    """The hub refused a login or a request."""


class Throttled(Refused):
    """The hub asked to try again later (429 with Retry-After): too many spawns pending."""

    def __init__(self, retry_after):
        super().__init__(f"too many spawns pending: try again in {retry_after} s")
        self.retry_after = retry_after


def log_in(session, hub_ip, name, password):
    """Post the hub's login form (through nginx) with ``session``; whether the hub let the user in."""
    # verify per request: a session's verify=False loses to REQUESTS_CA_BUNDLE.
    session.get(f"https://{hub_ip}/hub/login", timeout=10, verify=False)
    reply = session.post(
        f"https://{hub_ip}/hub/login",
        data={"username": name, "password": password, "_xsrf": session.cookies.get("_xsrf", "")},
        allow_redirects=False,
        timeout=30,
        verify=False,
    )
    return reply.status_code == 302 and "/hub/login" not in reply.headers.get("Location", "")


class Student:
    def __init__(self, hub_ip, name, password, subdomains=False):
        """``hub_ip``: the hub's address or name; ``subdomains``: the user's server answers on a
        name of its own under it."""
        self.hub, self.name = f"https://{hub_ip}", name
        self.server_url = f"https://{name}.{hub_ip}" if subdomains else self.hub
        self.session = requests.Session()
        if not log_in(self.session, hub_ip, name, password):
            raise Refused(f"{name} cannot log in")
        self.token = self.hub_api("POST", f"users/{name}/tokens", json={"note": "lab test"}).json()["token"]

    def hub_api(self, method, path, **kwargs):
        """A hub API request with the login cookie (and its XSRF token)."""
        reply = self.session.request(
            method,
            f"{self.hub}/hub/api/{path}",
            headers={"X-XSRFToken": self.session.cookies.get("_xsrf", path="/hub/") or ""},
            timeout=30,
            verify=False,
            **kwargs,
        )
        if reply.status_code == 429 and reply.headers.get("Retry-After", "").isdigit():
            raise Throttled(int(reply.headers["Retry-After"]))
        if reply.status_code >= 400:
            raise Refused(f"{method} {path}: {reply.status_code} {reply.text[:300]}")
        return reply

    def server_api(self, method, path, timeout=30, **kwargs):
        """A request to the student's own server, through nginx and the proxy, with their token."""
        return requests.request(
            method,
            f"{self.server_url}/user/{self.name}/api/{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=timeout,
            verify=False,
            allow_redirects=False,
            **kwargs,
        )

    def server(self):
        """The hub's record of the default server ({} when it has none)."""
        reply = requests.get(
            f"{self.hub}/hub/api/users/{self.name}",
            headers={"Authorization": f"token {self.token}"},
            timeout=30,
            verify=False,
        )
        if reply.status_code >= 400:
            raise Refused(f"GET users/{self.name}: {reply.status_code}")
        return reply.json().get("servers", {}).get("", {})

    def wait_for_the_hubs_check(self, seconds=SPAWN_SECONDS):
        """Wait while the hub starts (it answers 503) and then checks the server it knew before
        (it takes no start or stop meanwhile: 400 "pending check"), as a user waits on its spinner."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.server().get("pending") != "check":
                    return
            except Refused:  # the hub is still starting
                pass
            assert time.monotonic() < deadline, f"the hub still starts or checks {self.name}'s server after {seconds} s"
            time.sleep(0.5)

    def start_server(self, **options):
        """Start the default server (with the user ``options``: a profile...) and wait until the
        hub calls it ready and it answers."""
        self.wait_for_the_hubs_check()
        if not self.server().get("ready"):
            self.hub_api("POST", f"users/{self.name}/server", json=options or None)
        self.wait_for_server(SPAWN_SECONDS)

    def stop_server(self, seconds=120):
        """Stop the default server and wait until the hub shows none."""
        self.wait_for_the_hubs_check()
        if self.server():
            self.hub_api("DELETE", f"users/{self.name}/server")
        deadline = time.monotonic() + seconds
        while self.server():
            assert time.monotonic() < deadline, f"{self.name}'s server did not stop: {self.server()}"
            time.sleep(0.5)

    def ask_for_server(self):
        """Ask for the default server: None once the hub took the request, or the seconds its
        Retry-After asks to wait when too many spawns are already pending (429)."""
        try:
            self.hub_api("POST", f"users/{self.name}/server")
        except Throttled as throttled:
            return throttled.retry_after
        return None

    def spawn_outcome(self, seconds=SPAWN_SECONDS):
        """Ask for the default server and follow the hub's progress events (as the spawn
        page does) to the last one: {"ready": True, ...} or {"failed": True, "message": ...}."""
        self.hub_api("POST", f"users/{self.name}/server")
        return self.follow_spawn(seconds)

    def follow_spawn(self, seconds=SPAWN_SECONDS):
        """Follow the progress events of the spawn asked for to the last one."""
        with self.session.get(
            f"{self.hub}/hub/api/users/{self.name}/server/progress",
            stream=True,
            timeout=seconds,
            verify=False,
        ) as events:
            for line in events.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("ready") or event.get("failed"):
                        return event
        raise AssertionError(f"{self.name}'s spawn ended with no outcome")

    def answers(self):
        try:
            return self.server_api("GET", "status", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def wait_for_server(self, seconds):
        """Seconds until the server answered through the proxy; fails after ``seconds``."""
        started = time.monotonic()
        while not self.answers():
            if time.monotonic() - started > seconds:
                raise AssertionError(f"{self.name}'s server did not answer within {seconds} s: {self.server()}")
            time.sleep(0.5)
        return time.monotonic() - started

    def start_kernel(self):
        reply = self.server_api("POST", "kernels", json={"name": "python3"})
        assert reply.status_code == 201, reply.text
        return reply.json()["id"]

    def kernel_ids(self):
        return [k["id"] for k in self.server_api("GET", "kernels").json()]

    def execute(self, kernel, code, seconds=60):
        """Run ``code`` in ``kernel`` over its websocket; what it printed (stdout), stripped."""
        url = f"wss://{self.server_url.split('://', 1)[1]}/user/{self.name}/api/kernels/{kernel}/channels"
        ws = websocket.create_connection(
            url, header=[f"Authorization: token {self.token}"], sslopt={"cert_reqs": 0}, timeout=seconds
        )
        try:
            msg_id = uuid.uuid4().hex
            ws.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": self.name,
                            "session": uuid.uuid4().hex,
                            "msg_type": "execute_request",
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "content": {"code": code, "silent": False, "store_history": False},
                        "channel": "shell",
                    }
                )
            )
            printed = []
            while True:
                message = json.loads(ws.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = message["header"]["msg_type"]
                if kind == "stream":
                    printed.append(message["content"]["text"])
                elif kind == "error":
                    raise AssertionError(f"{code!r} failed: {message['content']['ename']}")
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    return "".join(printed).strip()
        finally:
            ws.close()
