"""Whole steps on a fake host: canned probe answers in, the exact commands out."""

import hashlib
import json

import pytest

from fakehost import (
    AMAZON_2023,
    DEBIAN_12,
    docker_settings_done,
    hub_config,
    swarm_info,
    unit_info,
    venv_info,
)
from tasks import pins
from tasks.core import HubswarmError
from tasks.core.secrets import MASK
from tasks.hub import auth, certs, nginx, proxy, python_env, users
from tasks.hub import jupyterhub as hub
from tasks.node import docker, packages, storage

APT_ENV = (
    "export DEBIAN_FRONTEND=noninteractive; if dpkg --audit 2>/dev/null | grep -q .; then dpkg --configure -a; fi && "
)


def pkg_key(names_by_family):
    return packages.installed_fact(names_by_family).key


# --- install-docker --------------------------------------------------------------------


APT_DOCKER = (
    APT_ENV
    + "apt-get -o DPkg::Lock::Timeout=600 update -q && apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends docker.io"
)


@pytest.mark.parametrize(
    "release, user, brings_command, installs",
    [
        (DEBIAN_12, "admin", True, [APT_DOCKER]),
        (DEBIAN_12, "admin", False, [APT_DOCKER, docker.CLI_SCRIPT]),  # Debian 13: the command is docker-cli's
        (AMAZON_2023, "ec2-user", True, ["dnf install -y -q docker"]),
    ],
)
def test_docker_from_scratch(make_host, release, user, brings_command, installs):
    """The log settings go in before the install: a fresh Docker's first start reads them."""
    host, runner = make_host(
        {"os-release": release, "unit:docker": unit_info("disabled", "inactive"), f"groups:{user}": f"{user} wheel"},
        user=user,
    )
    if brings_command:
        runner.after[installs[0]] = {docker.DOCKER_COMMAND.key: "/usr/bin/docker"}
    runner.after["systemctl start docker"] = {"unit:docker": unit_info("enabled", "active"), "inputs:docker": "fp\nfp"}
    docker.install_docker(host)
    assert pkg_key(docker.DOCKER_PACKAGES) in runner.probed
    assert runner.commands[0] == "install -d -m 755 -o root -g root /etc/docker"
    assert json.loads(runner.calls[1].stdin) == docker.LOG_SETTINGS
    assert runner.commands[2].endswith(f"> {docker.DAEMON_STAMP}")  # what Docker's first start reads: no restart
    assert runner.commands[3:] == [
        *installs,
        "systemctl enable docker && systemctl start docker",
        f"usermod -aG docker {user}",
    ]


DOCKER_DONE = {
    "os-release": DEBIAN_12,
    pkg_key(docker.DOCKER_PACKAGES): "docker.io",
    "unit:docker": unit_info("enabled", "active"),
    "groups:admin": "admin sudo docker",
    "command:docker": "/usr/bin/docker",
    **docker_settings_done(),
}


@pytest.mark.parametrize(
    "containers, restarts",
    [("", True), ("3f2a1c\n", False)],  # no container runs: restart now; a notebook runs: later
)
def test_new_log_settings_restart_a_quiet_docker_only(make_host, containers, restarts):
    """An operator's own daemon.json keeps its settings; the log settings are added to it."""
    own = '{"registry-mirrors": ["https://mirror.example"]}'
    host, runner = make_host(
        {
            **DOCKER_DONE,
            f"file:{docker.DAEMON_JSON}": "abc 644 root root",
            f"content:{docker.DAEMON_JSON}": own,
            docker.RUNNING_CONTAINERS.key: containers,
        }
    )
    runner.after[docker.DAEMON_JSON] = {docker.DAEMON_INPUTS.key: "new\nold"}
    docker.install_docker(host)
    assert json.loads(runner.calls[0].stdin) == {**json.loads(own), **docker.LOG_SETTINGS}
    assert runner.commands[-1].endswith("systemctl restart docker") is restarts
    assert host.record.changes[-1].startswith("restart docker") is restarts


# --- the other hub steps ----------------------------------------------------------------


def test_pip_install_fresh_and_done(make_host):
    site = "/opt/jupyterhub/lib/python3.11/site-packages"
    host, runner = make_host({"os-release": DEBIAN_12, "pythons": "python3 3 11\n"})
    runner.after[" -m venv "] = {"hub-package:/opt/jupyterhub": site}  # the venv now exists
    python_env.pip_install(host)
    command, package = runner.commands
    assert "python3 -m venv /opt/jupyterhub && " in command
    assert package == python_env.package_script(site)
    host, runner = make_host({"os-release": AMAZON_2023, "pythons": "python3 3 9\n"})
    runner.after[" -m venv "] = {"hub-package:/opt/jupyterhub": site}
    python_env.pip_install(host)
    assert runner.commands[0] == "dnf install -y -q python3.11 python3.11-pip"
    assert "python3.11 -m venv /opt/jupyterhub && " in runner.commands[1]

    installed = site + "\n" + python_env.package_archive()[0]
    host, runner = make_host(
        {
            "os-release": DEBIAN_12,
            "venv:/opt/jupyterhub": venv_info(pins.HUB_REQUIREMENTS),
            "hub-package:/opt/jupyterhub": installed,
        }
    )
    python_env.pip_install(host)
    assert runner.commands == []


def test_make_cert(make_host):
    host, runner = make_host({"dir:/srv/jupyterhub": "700 root root", "dir:/srv/jupyterhub/ssl": ""})
    certs.make_cert(host)
    assert runner.commands[0] == "install -d -m 700 -o root -g root /srv/jupyterhub/ssl"
    assert "-subj /CN=hub.example.com" in runner.commands[1]
    assert len(runner.commands) == 2


def test_nginx_debian_first_run(make_host):
    host, runner = make_host(
        {
            "os-release": DEBIAN_12,
            "link:/etc/nginx/sites-enabled/jupyterhub": None,
            "exists:/etc/nginx/sites-enabled/default": "",
            "unit:nginx": unit_info("enabled", "active"),
            f"dir:{nginx.ACME_ROOT}": "755 root root",
        }
    )
    nginx.nginx(host)
    site, link, default = nginx.site_paths("apt")
    assert len(runner.commands) == 4
    assert runner.commands[0].startswith(f"openssl dhparam -dsaparam -out {nginx.DHPARAM}")
    assert runner.calls[1].stdin == nginx.render_site(host.config, "hub.example.com")
    assert runner.commands[2] == f"ln -sfn {site} {link} && rm -f {default}"
    assert "nginx -t -q" in runner.commands[3] and "systemctl reload nginx" in runner.commands[3]


def test_nginx_amazon_in_place(make_host):
    host, _ = make_host({})
    text = nginx.render_site(host.config, "hub.example.com")
    sha = hashlib.sha256(text.encode()).hexdigest()
    host, runner = make_host(
        {
            "os-release": AMAZON_2023,
            "file:/etc/nginx/conf.d/jupyterhub.conf": f"{sha} 644 root root",
            f"file:{nginx.DHPARAM}": "abc 644 root root",
            "unit:nginx": unit_info("enabled", "active"),
            f"dir:{nginx.ACME_ROOT}": "755 root root",
        }
    )
    nginx.nginx(host)
    assert runner.commands == []


MARKED = {"file:/mnt/nfs/home/.hubswarm-homes": "0" * 64 + " 644 root root"}
FIRST_START = {
    **MARKED,
    "addresses": "10.0.0.5",
    "unit:jupyterhub": unit_info("disabled", "inactive"),
    "inputs:jupyterhub": "abc",
}


def test_start_hub_first_start_waits(make_host):
    host, runner = make_host(FIRST_START)
    hub.start_hub(host)
    [token, proxy_unit, hub_unit, reload, *starts, wait] = runner.commands
    assert "CONFIGPROXY_AUTH_TOKEN" in token and "proxy.env" in token
    assert "/etc/systemd/system/jupyterhub-proxy.service" in proxy_unit and hub.UNIT in hub_unit
    assert reload == "systemctl daemon-reload"
    assert [c.rsplit(" && ", 1)[-1] for c in starts] == [
        "systemctl start jupyterhub-proxy",
        "systemctl enable jupyterhub-proxy",
        "systemctl start jupyterhub",
        "systemctl enable jupyterhub",
    ]
    assert "/hub/login" in wait


def test_a_hub_that_ran_its_own_proxy_stops_once_for_the_proxy_service(make_host):
    before = {f"file:{proxy.UNIT}": "", f"unit:{proxy.SERVICE}": "", f"inputs:{proxy.SERVICE}": ""}
    host, runner = make_host({**converged_hub_answers(), **before})
    hub.start_hub(host)
    assert [c.rsplit(" && ", 1)[-1] for c in runner.commands if c.startswith(("systemctl", "{"))] == [
        "systemctl daemon-reload",
        "systemctl stop jupyterhub",
        "systemctl start jupyterhub-proxy",
        "systemctl enable jupyterhub-proxy",
        "systemctl start jupyterhub",
    ]


def test_start_hub_wait_timeout_is_one_line(make_host):
    host, runner = make_host(FIRST_START)
    runner.fail_on["seq 120"] = (1, "")
    with pytest.raises(
        HubswarmError, match=r"did not answer on /hub/login within 120 s: see 'journalctl -u jupyterhub'"
    ):
        hub.start_hub(host)


# --- write-env and check mode ------------------------------------------------------------

OLD_ENV = 'OAUTH_CLIENT_ID="old-client-id"\nOAUTH_CLIENT_SECRET="old-secret-value"\n'


def env_values():
    from tasks.hub import auth

    return auth.hub_secrets(
        type("C", (), {"authenticator": "google", "lab": False})(),
        {"OAUTH_CLIENT_ID": "new-client-id", "OAUTH_CLIENT_SECRET": "new-secret-value"},
    )


def test_write_env_apply(make_host):
    host, runner = make_host({"dir:/srv/jupyterhub": "700 root root"})
    auth.write_env(host, env_values())
    [call] = runner.calls
    assert call.stdin == (
        'OAUTH_CLIENT_ID="new-client-id"\nOAUTH_CLIENT_SECRET="new-secret-value"\n'
        'OAUTH_CALLBACK_URL="https://hub.example.com/hub/oauth_callback"\n'
    )
    assert "new-secret-value" not in call.command
    assert "chmod 600" in call.script


def test_write_env_callback_from_instance_metadata(make_host):
    host, runner = make_host(
        {
            "dir:/srv/jupyterhub": "700 root root",
            "imds:public-hostname": "ec2-54-1-2-3.us-west-2.compute.amazonaws.com",
        },
        domain="",
        single_origin=True,
    )
    auth.write_env(host, env_values())
    assert (
        'OAUTH_CALLBACK_URL="https://ec2-54-1-2-3.us-west-2.compute.amazonaws.com/hub/oauth_callback"'
        in runner.calls[0].stdin
    )


def test_write_env_no_callback_name(make_host):
    host, runner = make_host({"dir:/srv/jupyterhub": "700 root root"}, domain="", single_origin=True)
    with pytest.raises(HubswarmError, match="no public name for the OAuth callback on 10.0.0.5: set HUBSWARM_DOMAIN"):
        auth.write_env(host, env_values())
    assert runner.commands == []


def test_write_env_check_mode_masks_the_diff(make_host, recap_out):
    host, runner = make_host(
        {
            "dir:/srv/jupyterhub": "700 root root",
            "file:/srv/jupyterhub/env": "0" * 64 + " 600 root root",
            "content:/srv/jupyterhub/env": OLD_ENV,
        },
        check=True,
    )
    auth.write_env(host, env_values())
    assert runner.calls == []
    assert "content:/srv/jupyterhub/env" in runner.probed
    out = recap_out.getvalue()
    for value in ("old-client-id", "old-secret-value", "new-client-id", "new-secret-value", "hub.example.com"):
        assert value not in out
    assert f"+OAUTH_CALLBACK_URL={MASK}" in out
    assert out.startswith("[10.0.0.5] test-step: would change /srv/jupyterhub/env:\n")
    assert host.record.changes == ["write /srv/jupyterhub/env (600 root:root)"]


def test_check_mode_hub_setup_runs_only_probes(make_host):
    """Every hub step on a bare Debian host, in check mode: probes only, changes listed."""
    from tasks.ops import workflows

    host, runner = make_host(
        {"os-release": DEBIAN_12, "addresses": "10.0.0.5", "swarm-state": swarm_info()}, check=True
    )
    needed = {
        "write-env": env_values(),
        "userlist": users.parse_userlist("a@x.io admin\n"),
        "hub-config": ("google", ("", b"")),
        "sync-notebooks": ("abc  ./welcome.ipynb\n", b"tar"),
    }
    for step in workflows.HUB_SETUP:
        step(host, *([needed[step.name]] if step.name in needed else []))
    assert runner.calls == []
    changes = host.record.changes
    assert "install ca-certificates, curl, nginx, openssl, python3-venv, rsync" in changes
    assert "install docker.io" in changes
    assert "install unattended-upgrades" in changes
    assert f"install configurable-http-proxy {pins.CONFIGURABLE_HTTP_PROXY} from npm" in changes
    assert "make a self-signed certificate for hub.example.com and *.hub.example.com" in changes
    assert "write /srv/jupyterhub/env (600 root:root)" in changes
    assert "write /srv/jupyterhub/jupyterhub_config.py (600 root:root)" in changes
    assert "write /srv/jupyterhub/hubswarm.json (600 root:root)" in changes
    assert "initialise the swarm, advertising 10.0.0.5" in changes
    assert "upload starter notebooks to /srv/jupyterhub/notebooks" in changes
    assert "reload nginx (after nginx -t)" in changes


def converged_hub_answers():
    """A running hub whose unit is as wanted and whose inputs have not changed since its start."""

    def state(text):
        return f"{hashlib.sha256(text.encode()).hexdigest()} 644 root root"

    return {
        **MARKED,
        "addresses": "10.0.0.5",
        f"file:{hub.UNIT}": state(hub.render_unit(hub_config())),
        "unit:jupyterhub": unit_info("enabled", "active"),
        "inputs:jupyterhub": "abc\nabc",
        "hub-login-status": "200",
        f"file:{proxy.UNIT}": state(proxy.render_unit(hub_config(), "10.0.0.5")),
        "file:/srv/jupyterhub/proxy.env": "0" * 64 + " 600 root root",
        f"unit:{proxy.SERVICE}": unit_info("enabled", "active"),
        f"inputs:{proxy.SERVICE}": "def\ndef",
    }


@pytest.mark.parametrize("changed", [hub.config_path, hub.values_path])
def test_check_mode_predicts_the_restart_a_config_change_brings(make_host, recap_out, changed):
    host, runner = make_host(converged_hub_answers(), check=True)
    hub.start_hub(host)
    assert host.record.changes == []  # nothing changes: no restart predicted
    host.ensure_file(changed(host.config), "new config\n", mode="600")
    hub.start_hub(host)
    assert "restart jupyterhub (its inputs changed)" in host.record.changes
    assert runner.calls == []  # check mode ran probes only
    assert "would restart jupyterhub (its inputs changed)" in recap_out.getvalue()


def test_check_mode_does_not_predict_a_restart_for_other_files(make_host):
    host, runner = make_host(converged_hub_answers(), check=True)
    host.ensure_file("/etc/nginx/sites-available/jupyterhub", "site\n")
    hub.start_hub(host)
    assert host.record.changes == ["write /etc/nginx/sites-available/jupyterhub (644 root:root)"]


# --- pull-image: missing, or (HUBSWARM_IMAGE_PULL=always) moved in the registry ----------


def test_check_mode_predicts_a_fresh_docker_once_and_hides_daemon_json(make_host):
    """The start install-docker would make reads the settings: no second start predicted; and
    daemon.json (an operator's part may hold a proxy's password) is shown by size only."""
    host, runner = make_host({"os-release": DEBIAN_12}, check=True)
    docker.install_docker(host)
    changes = host.record.changes
    assert [c for c in changes if "start docker" in c] == ["enable and start docker"]
    assert "record the settings Docker starts with" in changes and runner.calls == []


def test_a_hub_set_up_before_the_homes_mark_gets_it_at_its_next_start(make_host):
    """Its new unit starts it only on the marked storage: start-hub marks a mounted one first,
    and stops before any change when it is not mounted."""
    unmarked = {**converged_hub_answers(), "file:/mnt/nfs/home/.hubswarm-homes": ""}
    host, runner = make_host({**unmarked, "mount:/mnt/nfs/home": "fs-1:/ nfs4"})
    hub.start_hub(host)
    assert runner.calls[0].stdin == storage.MARKER_TEXT and "/mnt/nfs/home/.hubswarm-homes" in runner.commands[0]
    host, runner = make_host(unmarked)
    with pytest.raises(
        HubswarmError, match=r"^/mnt/nfs/home is not mounted on 10\.0\.0\.5: mount it \(fab mount-efs\)$"
    ):
        hub.start_hub(host)
    assert runner.commands == []
