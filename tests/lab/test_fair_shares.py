"""Fair shares, tried with real notebooks: guarantees swarm places by, a clear answer when
no worker has room, a pids limit, and no way to gain privileges.

The lab's workers each have 2 CPUs: with 1.5 CPUs guaranteed to every notebook, each
worker holds exactly one, so the class's third notebook finds no room.
"""

import pytest

from fabrun import fab
from student import Student

SHARES = {"HUBSWARM_CPU_GUARANTEE": "1.5", "HUBSWARM_PIDS_LIMIT": "256"}
THREADS = """
import threading
done, started = threading.Event(), 0
try:
    for _ in range(400):
        threading.Thread(target=done.wait).start()
        started += 1
except RuntimeError:
    pass
done.set()
print(started)
"""


@pytest.fixture
def class_of_three(lab, deploy_run, lab_users):
    """Every lab user logged in with no server, the hub configured with SHARES; the lab's
    own settings again afterwards."""
    roster = [line.split()[0].split("@")[0] for line in lab_users.path.read_text().splitlines() if line.strip()]
    people = [
        Student(lab.hub_ip, name, lab_users.admin_password if name == lab_users.admin else lab_users.password)
        for name in roster
    ]
    for person in people:
        person.stop_server()  # servers of earlier tests guarantee nothing
    run = fab("setup-hub", "start-hub", env=SHARES)
    assert run.code == 0, run.output
    yield people
    for person in people:
        person.stop_server()
    restore = fab("setup-hub", "start-hub")
    assert restore.code == 0, restore.output


def test_a_class_gets_what_fits_and_the_rest_hear_why(lab, class_of_three, connect):
    first, second, third = sorted(class_of_three, key=lambda p: p.name != "student1")
    for person in (first, second):
        person.start_server()
    hub = connect(lab.hub_ip)
    nodes = {
        hub.sudo(
            f"docker service ps -q --filter desired-state=running --format '{{{{.Node}}}}' jupyter-{p.name}", hide=True
        ).stdout.strip()
        for p in (first, second)
    }
    assert len(nodes) == 2  # one notebook per worker: each guarantee holds

    outcome = third.spawn_outcome()
    assert outcome.get("failed"), outcome
    assert "no room on any worker: a server needs 1 GiB and 1.5 CPUs guaranteed" in outcome["message"]
    assert third.server() == {}
    reserved = hub.sudo(
        f"docker service inspect --format '{{{{.Spec.TaskTemplate.Resources.Reservations.NanoCPUs}}}}' jupyter-{first.name}",
        hide=True,
    ).stdout.strip()
    assert reserved == "1500000000"

    kernel = first.start_kernel()
    assert first.execute(kernel, "print(open('/proc/self/status').read().split('NoNewPrivs:')[1].split()[0])") == "1"
    assert int(first.execute(kernel, THREADS)) < 256  # the pids limit stops a runaway at 256 tasks

    second.stop_server()
    assert third.spawn_outcome().get("ready")  # room again once a server stopped
