"""Whatever the batched probes can tell stops the run before the first change on any host."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoke.exceptions import Exit

from fakehost import AMAZON_2, DEBIAN_12, with_input
from tasks.core.run import run_steps
from tasks.hub import auth, nodejs
from tasks.node import packages, storage
from tasks.node.packages import HUB_PACKAGES
from tasks.ops import workflows

HOMES = "/mnt/nfs/home"


def two_hosts(make_host, b_answers, **config):
    """Host a is fine; host b has ``b_answers`` on top of a's."""
    fine = {"os-release": DEBIAN_12, f"mount:{HOMES}": "fs:/ nfs4"}
    a, a_runner = make_host(fine, address="10.0.0.5", **config)
    b, b_runner = make_host({**fine, **b_answers}, address="10.0.0.6", **config)
    return (a, a_runner), (b, b_runner)


@pytest.mark.parametrize(
    "b_answers, config, words",
    [
        ({f"mount:{HOMES}": None}, {"efs": ""}, "is not mounted on 10.0.0.6 and no file system is configured"),
        ({"os-release": AMAZON_2}, {}, "Amazon Linux 2 has reached its end of life"),
        ({"nodejs-version": "v16.20.2"}, {}, "Node.js 16 on 10.0.0.6 is older than 18"),
        ({"pythons": "python3 3 9\n"}, {}, "Python 3.9 on 10.0.0.6 is older than 3.10"),
    ],
)
def test_one_bad_host_stops_every_host_before_any_change(make_host, recap_out, b_answers, config, words):
    (a, a_runner), (b, b_runner) = two_hosts(make_host, b_answers, **config)
    steps = [packages.install_hub_packages, nodejs.install_nodejs, workflows.python_env.pip_install, storage.mount_efs]
    with pytest.raises(Exit) as stop:
        run_steps([a, b], steps)
    assert a_runner.calls == [] and b_runner.calls == []  # probes only, on both hosts
    assert a_runner.probes and b_runner.probes
    assert words in stop.value.message
    assert "[10.0.0.6] " in recap_out.getvalue() and "FAILED before any change" in recap_out.getvalue()


def test_oauth_without_a_public_name_stops_before_the_installs(make_host):
    """A non-EC2 host with no domain: write-env cannot have a callback URL, found before
    the packages step installs anything (it used to take 46 s of installs)."""
    host, runner = make_host({"os-release": DEBIAN_12}, domain="", single_origin=True, authenticator="google")
    needed = {"write-env": {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret"}}
    with pytest.raises(Exit) as stop:
        run_steps([host], with_input([packages.install_hub_packages, auth.write_env], needed))
    assert runner.calls == []
    assert "no public name for the OAuth callback on 10.0.0.5: set HUBSWARM_DOMAIN" in stop.value.message


def test_public_host_name_from_metadata_makes_the_callback(make_host):
    host, runner = make_host(
        {"os-release": DEBIAN_12, "imds:public-hostname": "ec2-203-0-113-5.compute.amazonaws.com"},
        domain="",
        single_origin=True,
        authenticator="google",
    )
    values = auth.env_values(host, {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "s"})
    assert values["OAUTH_CALLBACK_URL"] == "https://ec2-203-0-113-5.compute.amazonaws.com/hub/oauth_callback"


def test_all_fine_runs_the_changes(make_host):
    (a, a_runner), (b, b_runner) = two_hosts(make_host, {})
    assert run_steps([a, b], [packages.install_hub_packages]) == []
    wanted = " ".join(sorted(HUB_PACKAGES["apt"]))
    assert [c for c in a_runner.commands if wanted in c] and [c for c in b_runner.commands if wanted in c]


@pytest.mark.parametrize(
    "name, why",
    [
        ("bad\nname.ipynb", "has a line break"),
        ("back\\slash.ipynb", "has a backslash"),
        ("tab\there.ipynb", "has a control character"),
    ],
)
def test_unsyncable_notebook_names_are_refused(tmp_path, name, why):
    from fakehost import hub_config
    from tasks.core import HubswarmError

    (tmp_path / "ok.ipynb").write_text("{}")
    (tmp_path / name).write_text("{}")
    with pytest.raises(HubswarmError) as err:
        storage.read_notebooks(hub_config(notebooks=str(tmp_path)))
    assert f"the file name {name!r} {why}, which cannot be synced: rename it" in str(err.value)


def test_a_public_host_name_that_is_no_dns_name_is_refused(make_host):
    from tasks.core import HubswarmError
    from tasks.hub import certs

    host, _ = make_host({"imds:public-hostname": "x.example;include /etc/passwd"}, domain="", single_origin=True)
    with pytest.raises(HubswarmError, match="gives the public host name .* which is not a DNS name"):
        certs.hub_name(host)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.text(max_size=60))
def test_any_public_host_name_answer_is_a_dns_name_or_refused(make_host, answer):
    """The metadata's public host name reaches nginx, the certificate and the env file."""
    from tasks.core import HubswarmError
    from tasks.core.names import dns_problem
    from tasks.hub import certs

    host, _ = make_host({"imds:public-hostname": answer}, domain="", single_origin=True)
    try:
        name = certs.hub_name(host)
    except HubswarmError:
        return
    assert name == "10.0.0.5" or dns_problem(name) == ""


def test_a_host_that_does_not_answer_does_not_stop_the_others(make_host, recap_out):
    """A lost worker is not a reason to leave the others unjoined."""
    from tasks.core.host import Unreachable

    (a, a_runner), (b, _) = two_hosts(make_host, {})

    def unreachable(command, stdin=None):
        raise Unreachable("cannot reach 10.0.0.6:22 (timed out): check the host is running and SSH is open")

    b._exec = unreachable
    assert run_steps([a, b], [packages.install_hub_packages]) == [b]
    assert a_runner.commands  # a got its packages
    assert "[10.0.0.6] install-packages: FAILED: cannot reach 10.0.0.6:22" in recap_out.getvalue()
