"""``fab -H a,b,c TASK``: each task once, its steps on every -H host in parallel, one recap.

The real Fabric program parses the argv into hubswarm's executor, on hosts that
answer from canned facts (no SSH); then what -H names in deploy and join-workers.
"""

import threading
from types import SimpleNamespace

import fabric
import pytest
from fabric import Connection
from fabric.main import Fab
from invoke import Collection
from invoke.exceptions import Exit

from fakehost import FakeRunner, hub_config, invocation, run_fab
from tasks import settings
from tasks.aws import efs, iam, route53
from tasks.cli import inventory
from tasks.cli import invocation as task_invocation
from tasks.cluster import workers
from tasks.core import run as core_run
from tasks.core import step
from tasks.core.facts import dir_state
from tasks.core.host import Host
from tasks.hub import certs
from tasks.ops import workflows

FOLDER = "/srv/marker"


def folder_step(barrier, name="folder"):
    """A step making FOLDER that waits in it until every host is there: serial hosts break the barrier."""

    @step(name, probes=lambda h: [dir_state(FOLDER)])
    def folder(host):
        barrier.wait()
        host.ensure_dir(FOLDER)

    return folder


@pytest.fixture
def fake_hosts(monkeypatch):
    """{host name: FakeRunner}: every host a run makes answers from it, FOLDER present on "a" only."""
    runners = {}

    class FakeHost(Host):
        def __init__(self, connection, name, run):
            super().__init__(connection, name, run)
            answers = {f"dir:{FOLDER}": "755 root root"} if name == "a" else {}
            self._exec = runners.setdefault(name, FakeRunner(answers))
            self._probe = self._exec.probe

    monkeypatch.setattr(core_run, "Host", FakeHost)
    return runners


@pytest.fixture
def fab(monkeypatch):
    """``fab(*argv, tasks=[...])``: the Fabric program with hubswarm's executor, ``check``
    and ``tasks``, default settings; returns its config. The recap prints at its end."""
    exits = []
    monkeypatch.setattr(task_invocation, "atexit", SimpleNamespace(register=exits.append))

    def run(*argv, tasks):
        ns = Collection(workflows.check, *tasks)
        ns.configure(settings.defaults({"HUBSWARM_DOMAIN": "hub.example.com"}))
        program = Fab(namespace=ns, executor_class=task_invocation.Executor, config_class=fabric.Config)
        try:
            program.run(["fab", *argv])
        finally:
            for print_recap in exits:
                print_recap()
        return program.config

    return run


def recap(config):
    return [(r.host, r.task, r.status, r.check) for r in getattr(config, task_invocation.RUN_ATTRIBUTE).recap.records]


def test_each_task_runs_once_on_every_host_in_parallel_with_one_recap(fab, fake_hosts, capsys):
    first = task_invocation.host_task(folder_step(threading.Barrier(3, timeout=60), "first"))
    second = task_invocation.host_task(folder_step(threading.Barrier(3, timeout=60), "second"))
    config = fab("-H", "a,b,c", "check", "first", "second", tasks=[first, second])
    rows = recap(config)
    # "first" on the three hosts at once (the barrier held), then "second": in check mode.
    assert sorted(rows[:3]) == [
        ("a", "first", "ok", True),
        ("b", "first", "changed", True),
        ("c", "first", "changed", True),
    ]
    assert sorted(row[0] for row in rows[3:]) == ["a", "b", "c"] and {row[1] for row in rows[3:]} == {"second"}
    assert all(runner.calls == [] for runner in fake_hosts.values())
    out = capsys.readouterr().out
    assert out.count("RECAP (check mode: nothing was changed)") == 1
    assert "ok=2 would_change=4 failed=0" in out


def test_a_failing_host_does_not_stop_the_others_and_the_exit_is_1(fab, fake_hosts, capsys):
    fake_hosts["b"] = FakeRunner({}, fail_on={"install -d": (1, "No space left on device")})
    task = task_invocation.host_task(folder_step(threading.Barrier(3, timeout=60)))
    with pytest.raises(SystemExit) as stopped:
        fab("-H", "a,b,c", "folder", tasks=[task])
    assert stopped.value.code == 1
    assert fake_hosts["c"].commands == [f"install -d -m 755 -o root -g root {FOLDER}"]
    out, err = capsys.readouterr()
    assert out.count("RECAP") == 1 and "ok=1 changed=1 failed=1" in out
    message = "failed: b folder: make directory /srv/marker (755 root:root) failed (exit 1): No space left on device"
    assert message in out
    assert err.strip() == "1 host(s) failed; first: " + message.removeprefix("failed: ")


def test_a_host_named_twice_runs_once(fab, fake_hosts):
    task = task_invocation.host_task(folder_step(threading.Barrier(2, timeout=60)))
    config = fab("-H", "b,c,b", "folder", tasks=[task])
    assert sorted(recap(config)) == [("b", "folder", "changed", False), ("c", "folder", "changed", False)]
    assert fake_hosts["b"].commands == [f"install -d -m 755 -o root -g root {FOLDER}"]


def test_a_command_after_tasks_is_refused(fab, fake_hosts, capsys):
    task = task_invocation.host_task(folder_step(threading.Barrier(1)))
    with pytest.raises(SystemExit) as stopped:
        fab("-H", "a", "folder", "--", "uptime", tasks=[task])
    assert stopped.value.code == 1 and fake_hosts == {}
    assert capsys.readouterr().err == "fab -H HOSTS -- COMMAND runs the command alone: give it no task\n"


def test_real_fab_runs_the_h_hosts_in_parallel_with_one_recap():
    """The fabfile hands `fab` the executor: two unreachable hosts, one recap, exit 1."""
    ran = run_fab("-H", "127.0.0.1:9,127.0.0.2:9", "check", "install-nodejs")
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout.count("RECAP (check mode: nothing was changed)") == 1
    assert "ok=0 would_change=0 failed=2" in ran.stdout
    for host in ("127.0.0.1:9", "127.0.0.2:9"):
        assert f"failed: {host} install-nodejs: cannot reach {host}" in ran.stdout
    assert ran.stderr.startswith("2 host(s) failed; first: ")


# --- what -H names: deploy's hub, join-workers' workers ---------------------------------

HUB, W1, W2 = "10.0.0.5", "10.0.0.6", "10.0.0.7"


@pytest.fixture
def tagged(monkeypatch):
    """Discovery finds the hub HUB and workers W1, W2; ``tagged.roles`` lists the roles looked up."""
    roles = []

    def connections(run, role):
        roles.append(role)
        return [Connection(address) for address in {inventory.HUB: [HUB], inventory.WORKER: [W1, W2]}[role]]

    monkeypatch.setattr(inventory, "connections", connections)
    return SimpleNamespace(roles=roles)


def names(hosts):
    return [h.name for h in hosts]


@pytest.fixture
def deploy_done(monkeypatch, make_host):
    """What deploy does, in order, each step list as given (by name); nothing reaches a host.
    ``done.not_ready``: the workers whose setup fails."""
    make_host({})  # the run's config
    done = type("Done", (list,), {})()
    done.not_ready = []
    no_input = lambda run, steps: steps  # noqa: E731
    monkeypatch.setattr(workflows, "gather_needs", no_input)
    monkeypatch.setattr(task_invocation, "gather_needs", no_input)
    monkeypatch.setattr(workflows, "preflight", lambda hosts, steps: done.append(("preflight", names(hosts), steps)))
    monkeypatch.setattr(workflows, "hub_in_aws", lambda c: done.append(("hub-role, dns-records",)))
    monkeypatch.setattr(efs, "turn_on", lambda run, client: None)  # setup-hub's own, from this machine
    monkeypatch.setattr(
        task_invocation, "run_steps", lambda hosts, steps: done.append(("run", names(hosts), list(steps))) or []
    )
    monkeypatch.setattr(workflows, "image_step", lambda run: "push-image")
    monkeypatch.setattr(workflows, "run_on", lambda host, step: done.append((step.name, host.name)) or host.name)

    def get_ready(hosts, steps):
        done.append(("ready", names(hosts), [getattr(s, "name", s) for s in steps]))
        failed = [h for h in hosts if h.name in done.not_ready]
        for host in failed:
            host.run.recap.start(host.name, "install-docker", False).error = "no docker"
        return failed

    monkeypatch.setattr(workflows, "run_steps", get_ready)
    monkeypatch.setattr(
        workflows,
        "join",
        lambda run, hub_node, nodes, ready_with: done.append(("join", hub_node.name, names(nodes), ready_with)),
    )
    monkeypatch.setattr(certs, "hub_name", lambda host: f"{host.name}.example.com")
    return done


READY = [*(s.name for s in workers.WORKER_SETUP), "notebook-fence", "push-image"]


@pytest.mark.parametrize(
    "named, option, hub_address, worker_addresses, looked_up",
    [
        ((HUB,), None, HUB, [W1, W2], [inventory.WORKER]),
        (("10.0.0.9",), f"{W2},10.0.0.8", "10.0.0.9", [W2, "10.0.0.8"], []),
        ((), None, HUB, [W1, W2], [inventory.HUB, inventory.WORKER, inventory.HUB, inventory.HUB]),
    ],
    ids=["-H hub: workers by tags", "-H hub --workers", "all by tags"],
)
def test_deploy(deploy_done, tagged, test_run, capsys, named, option, hub_address, worker_addresses, looked_up):
    workflows.deploy.body(invocation(test_run, *named), workers=option)
    # The hub's check that its names resolve to it reads what dns-records made.
    assert deploy_done[:4] == [
        ("preflight", worker_addresses, workers.WORKER_SETUP),
        ("hub-role, dns-records",),
        ("preflight", [hub_address], [*workflows.HUB_SETUP, *workflows.HUB_START]),
        ("hub-address", hub_address),
    ]
    # The workers get ready while the hub is set up, then join.
    assert sorted(deploy_done[4:6]) == [
        ("ready", worker_addresses, READY),
        ("run", [hub_address], workflows.HUB_SETUP),
    ]
    assert deploy_done[6:] == [
        ("join", hub_address, worker_addresses, "push-image"),
        ("run", [hub_address], workflows.HUB_START),
    ]
    assert tagged.roles == looked_up
    assert f"The hub is up: https://{hub_address}.example.com/" in capsys.readouterr().out


def test_a_worker_that_fails_to_get_ready_is_not_joined_and_fails_the_deploy(deploy_done, tagged, test_run):
    deploy_done.not_ready.append(W1)
    with pytest.raises(Exit, match=f"1 host\\(s\\) failed; first: {W1} install-docker: no docker"):
        workflows.deploy.body(invocation(test_run, HUB))
    assert ("join", HUB, [W2], "push-image") in deploy_done
    assert deploy_done[-1] == ("run", [HUB], workflows.HUB_START)  # the hub starts for the others


def test_setup_hub_makes_the_hubs_role_and_points_its_records_after_its_input_is_checked_before_its_steps(
    deploy_done, tagged, test_run, aws, monkeypatch
):
    def point(run, client, hub_node):
        deploy_done.append(("dns-records", hub_node.name))
        run.dns_pointed = {}

    monkeypatch.setattr(iam, "make_hub_role", lambda run, client, hub: deploy_done.append(("hub-role", hub.name)))
    monkeypatch.setattr(route53, "point_records", point)
    monkeypatch.setattr(efs, "turn_on", lambda run, client: deploy_done.append(("efs-backups", run.config.efs)))
    monkeypatch.setattr(task_invocation, "gather_needs", lambda run, steps: deploy_done.append("needs") or steps)
    test_run.config = hub_config(route53_zone="example.com")
    workflows.setup_hub.body(invocation(test_run))
    assert deploy_done == [
        "needs",
        ("hub-role", HUB),
        ("dns-records", HUB),
        ("efs-backups", "fs-1.efs.us-west-2.amazonaws.com"),
        ("run", [HUB], workflows.HUB_SETUP),
    ]


def test_deploy_takes_one_hub(deploy_done, tagged, test_run):
    with pytest.raises(Exit, match="^-H names 2 hosts: this task takes one hub$"):
        workflows.deploy.body(invocation(test_run, HUB, "10.0.0.9"))
    assert deploy_done == [] and tagged.roles == []


@pytest.mark.parametrize(
    "named, hub_option, hub_address, worker_addresses, looked_up",
    [
        ((W1, W2), None, HUB, [W1, W2], [inventory.HUB]),
        ((W2,), "10.0.0.9", "10.0.0.9", [W2], []),
        ((), None, HUB, [W1, W2], [inventory.HUB, inventory.WORKER]),
    ],
    ids=["-H workers: the hub by tags", "-H workers --hub", "all by tags"],
)
def test_join_workers(
    monkeypatch, make_host, tagged, test_run, named, hub_option, hub_address, worker_addresses, looked_up
):
    make_host({})
    joined = []
    monkeypatch.setattr(
        workers, "join", lambda run, hub_node, nodes, rejoin: joined.append((hub_node.name, names(nodes), rejoin))
    )
    workers.join_workers.body(invocation(test_run, *named), rejoin=True, hub=hub_option)
    assert joined == [(hub_address, worker_addresses, True)]
    assert tagged.roles == looked_up
