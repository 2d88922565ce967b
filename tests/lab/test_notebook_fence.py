"""The notebook fence, tried from inside a real notebook: what a student's code can reach.

A fenced address answers "no route to host" (EHOSTUNREACH) at once; without the fence the
same connection would open or be refused, so every assertion fails when its rule is missing.
The lab's stand-in for "the internet" is a public test address (198.51.100.0/24) held by the
metadata stand-in, routed there from the notebook's worker for the test only.
"""

import ast
import shlex
import time

import pytest

from fabrun import fab
from student import Student
from tasks import lab as lab_module
from tasks.lab import imds

FENCED = "EHOSTUNREACH"
INTERNET = ("198.51.100.7", "198.51.100.8")
WEB_PORT = 8080
REACH = """
import errno, socket
def reach(host, port, family=socket.AF_INET):
    s = socket.socket(family)
    s.settimeout(5)
    try:
        s.connect((host, port))
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
"""


def shell(connection, command):
    return connection.sudo(f"bash -c {shlex.quote(command)}", hide=True).stdout.strip()


@pytest.fixture
def notebook(lab, deploy_run, lab_users, connect):
    """(student, kernel with ``reach`` defined, the worker's IP the notebook runs on)."""
    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    student.start_server()
    kernel = student.start_kernel()
    student.execute(kernel, REACH)
    node = shell(
        connect(lab.hub_ip),
        f"docker service ps -q --filter desired-state=running --format '{{{{.Node}}}}' jupyter-{student.name}",
    )
    return student, kernel, lab.hosts[node.split()[0]]


def reach(notebook, host, port, family="socket.AF_INET"):
    student, kernel, _ = notebook
    return student.execute(kernel, f"print(reach({host!r}, {port}, {family}))", seconds=30)


@pytest.fixture
def internet(lab, notebook, connect):
    """A web server at INTERNET's addresses, routed from the notebook's worker; gone afterwards."""
    standin = f"docker exec {imds.CONTAINER}"
    for address in INTERNET:
        lab_module.docker("exec", imds.CONTAINER, "ip", "addr", "replace", f"{address}/32", "dev", "lo")
    lab_module.docker("exec", "-d", imds.CONTAINER, "python3", "-m", "http.server", str(WEB_PORT), "--bind", "0.0.0.0")
    worker = connect(notebook[2])
    shell(worker, f"ip route replace 198.51.100.0/24 via {imds.STANDIN_IP}")
    deadline = time.monotonic() + 30
    while shell(worker, f"curl -s -o /dev/null -w '%{{http_code}}' http://{INTERNET[0]}:{WEB_PORT}/ || true") != "200":
        assert time.monotonic() < deadline, f"the stand-in's web server did not answer ({standin})"
        time.sleep(0.5)
    yield
    shell(worker, "ip route del 198.51.100.0/24 || true")
    lab_module.docker("exec", imds.CONTAINER, "pkill", "-f", "http.server", check=False)
    for address in INTERNET:
        lab_module.docker("exec", imds.CONTAINER, "ip", "addr", "del", f"{address}/32", "dev", "lo", check=False)


def test_a_notebook_reaches_the_hub_api_and_nothing_private(lab, notebook, connect):
    worker = notebook[2]
    other_worker = next(ip for ip in lab.worker_ips if ip != worker)
    assert reach(notebook, lab.hub_ip, 8081) == "open"  # the hub's API: the server needs it
    tried = {
        "instance metadata": (imds.METADATA_ADDRESS, 80),
        "the hub's SSH": (lab.hub_ip, 22),
        "the hub's swarm manager port": (lab.hub_ip, 2377),
        "the hub's swarm gossip port": (lab.hub_ip, 7946),
        "the hub's NFS": (lab.hub_ip, 2049),
        "the hub's front door by its private address": (lab.hub_ip, 443),
        "its own node's SSH": (worker, 22),
        "its own node's SSH on the bridge": ("172.17.0.1", 22),
        "its own node's Docker API": (worker, 2375),
        "the other worker's SSH": (other_worker, 22),
        "the other worker's swarm gossip port": (other_worker, 7946),
    }
    got = {what: reach(notebook, *where) for what, where in tried.items()}
    assert got == dict.fromkeys(tried, FENCED)
    assert reach(notebook, "fd00:ec2::254", 80, "socket.AF_INET6") != "open"  # IPv6 metadata: no IPv6
    # The node itself still reads its metadata (hubswarm's own probes do).
    token = shell(
        connect(worker),
        f"curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://{imds.METADATA_ADDRESS}/latest/api/token",
    )
    assert token


def test_a_notebook_flooding_the_hub_api_is_refused_then_reaches_it_again(lab, notebook):
    """Past 20 new connections a second (40 at once) a notebook's are refused, so one student's
    loop cannot take the hub from the class; its server's own few calls a minute are never."""
    student, kernel, _ = notebook
    code = f"tally = {{}}\nfor _ in range(300):\n    r = reach({lab.hub_ip!r}, 8081)\n    tally[r] = tally.get(r, 0) + 1\nprint(tally)"
    tally = ast.literal_eval(student.execute(kernel, code, seconds=60))
    assert tally.get(FENCED, 0) > 0 and tally.get("open", 0) >= 40, tally
    deadline = time.monotonic() + 30
    while reach(notebook, lab.hub_ip, 8081) != "open":
        assert time.monotonic() < deadline, "the hub's API stayed refused"
        time.sleep(0.2)


def test_a_notebook_holds_no_capability(notebook):
    """Not even in its bounding set: nothing a student runs can use one (Docker's default set
    otherwise: 00000000a80425fb)."""
    student, kernel, _ = notebook
    code = "print([line.split()[1] for line in open('/proc/self/status') if line.startswith(('CapBnd', 'CapPrm'))])"
    assert ast.literal_eval(student.execute(kernel, code)) == ["0000000000000000", "0000000000000000"]


def test_a_notebook_cannot_write_to_its_nodes_disk(notebook):
    """Its root is read-only and its /tmp is 512 MiB in memory (counted in its memory limit): what
    it writes outside its home cannot fill the disk the other notebooks of its node need."""
    student, kernel, _ = notebook
    code = """
import errno, os
try:
    open('/opt/notebook/fill', 'w').close()
    root = 'written'
except OSError as e:
    root = errno.errorcode[e.errno]
tmp = [line.split()[2] for line in open('/proc/mounts') if line.split()[1] == '/tmp']
size = os.statvfs('/tmp').f_blocks * os.statvfs('/tmp').f_frsize
print([root, tmp, size, os.access(os.path.expanduser('~'), os.W_OK)])
"""
    assert ast.literal_eval(student.execute(kernel, code)) == ["EROFS", ["tmpfs"], 512 * 2**20, True]


FILL = """
import errno, os
def fill(path):
    written = 0
    try:
        with open(path, 'wb') as f:
            while True:
                f.write(b'x' * 2**20)
                f.flush()
                written += 1
    except OSError as e:
        return errno.errorcode[e.errno], written
    finally:
        if os.path.exists(path):
            os.remove(path)
with open('/proc/1/fd/1', 'wb') as log:  # the container's output, which its node's Docker keeps
    for _ in range(LOG_MIB):
        log.write((b'y' * 1023 + b'\\n') * 1024)
print([fill('/tmp/fill'), fill('/opt/notebook/fill')])
"""
LOG_MIB = 100


def test_a_notebook_that_writes_all_it_can_leaves_its_nodes_disk_to_the_others(notebook, connect):
    """It fills its /tmp (in memory) and tries its root, and floods its server's output: what its
    container holds on its node's disk (its writable layer, its logs) stays under its logs' cap
    (3 files of 10 MB), and the notebook goes on answering."""
    student, kernel, node_ip = notebook
    filled = ast.literal_eval(student.execute(kernel, FILL.replace("LOG_MIB", str(LOG_MIB)), seconds=120))
    (tmp, tmp_mib), root = filled
    assert tmp == "ENOSPC" and 480 <= tmp_mib <= 512, filled  # (its server keeps a few files there)
    assert root == ("EROFS", 0)
    # (Measured on the container itself: the node's free space also moves with the other lab's work.)
    on_disk = shell(
        connect(node_ip),
        f"id=$(docker ps -q --no-trunc --filter label=com.docker.swarm.service.name=jupyter-{student.name}); "
        "echo $(( $(docker inspect --size -f '{{.SizeRw}}' $id) + $(du -sb /var/lib/docker/containers/$id | cut -f1) ))",
    )
    assert int(on_disk) < 30 * 2**20  # of the 100 MiB it wrote to its output, at most the logs' cap
    assert student.execute(kernel, "print(6 * 7)") == "42"


def test_a_notebook_cannot_reach_another_notebook(lab, notebook, lab_users, connect):
    other = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)
    other.start_server()
    hub = connect(lab.hub_ip)
    task = shell(hub, f"docker service ps -q --filter desired-state=running jupyter-{other.name} | head -1")
    node, port = shell(
        hub,
        f"docker inspect --format '{{{{.NodeID}}}} {{{{range .Status.PortStatus.Ports}}}}{{{{.PublishedPort}}}}{{{{end}}}}'"
        f" {task} | {{ read id port; echo $(docker node inspect --format '{{{{.Description.Hostname}}}}' $id) $port; }}",
    ).split()
    assert shell(hub, f"curl -s -o /dev/null -w '%{{http_code}}' http://{lab.hosts[node]}:{port}/ || true") != "000"
    assert reach(notebook, lab.hosts[node], int(port)) == FENCED


def fence_with(egress):
    run = fab("notebook-fence", env={"HUBSWARM_NOTEBOOK_EGRESS": egress})
    assert run.code == 0, run.output
    return run


def test_internet_egress_follows_the_setting(lab, notebook, internet):
    try:
        assert [reach(notebook, address, WEB_PORT) for address in INTERNET] == ["open", "open"]
        # DNS only to the node's resolvers: port 53 anywhere else would tunnel past the setting.
        assert reach(notebook, INTERNET[0], 53) == FENCED
        assert reach(notebook, INTERNET[0], 54) == "refused"  # the same address reached, nothing listens
        run = fence_with("none")
        assert "apply the notebook fence" in run.output
        assert [reach(notebook, address, WEB_PORT) for address in INTERNET] == [FENCED, FENCED]
        assert reach(notebook, lab.hub_ip, 8081) == "open"
        fence_with(f"{INTERNET[0]}/32")
        assert [reach(notebook, address, WEB_PORT) for address in INTERNET] == ["open", FENCED]
    finally:
        fence_with("internet")
    assert fence_with("internet").changed() == []


def fence_rules(connection):
    return shell(connection, "iptables -S HUBSWARM-NOTEBOOKS; iptables -S DOCKER-USER; iptables -S INPUT")


def test_the_fence_outlives_docker_restarts_and_reboots(lab, deploy_run, connect):
    worker = lab.worker_ips[-1]
    before = fence_rules(connect(worker))
    assert "-A DOCKER-USER -i docker0 -j HUBSWARM-NOTEBOOKS" in before
    shell(connect(worker), "systemctl restart docker")
    assert fence_rules(connect(worker)) == before
    lab_module.reboot_host(next(name for name, ip in lab.hosts.items() if ip == worker))
    deadline = time.monotonic() + 120
    while True:
        try:
            if shell(connect(worker), "systemctl is-active docker || true") == "active":
                break
        except Exception:  # noqa: BLE001 - still booting
            pass
        assert time.monotonic() < deadline, f"{worker} did not come back"
        time.sleep(1)
    after = fence_rules(connect(worker))
    assert "-A DOCKER-USER -i docker0 -j HUBSWARM-NOTEBOOKS" in after and after == before
    again = fab("notebook-fence")
    assert again.code == 0 and again.changed() == [], again.output
