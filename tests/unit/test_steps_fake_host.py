"""Whole steps on a fake host: canned probe answers in, the exact commands out."""

import hashlib
import json

import pytest

from fakehost import (
    ALPINE,
    AMAZON_2023,
    DEBIAN_12,
    FEDORA_41,
    UBUNTU_2404,
    cert_info,
    chp_info,
    docker_settings_done,
    hub_config,
    parsed,
    swarm_info,
    unit_info,
    venv_info,
)
from tasks import pins
from tasks.cluster import swarm
from tasks.core import HubswarmError, services
from tasks.core import facts as F
from tasks.core.secrets import MASK
from tasks.hub import auth, certs, nginx, nodejs, proxy, python_env, users
from tasks.hub import jupyterhub as hub
from tasks.node import docker, images, packages

APT_ENV = (
    "export DEBIAN_FRONTEND=noninteractive; if dpkg --audit 2>/dev/null | grep -q .; then dpkg --configure -a; fi && "
)


def pkg_key(names_by_family):
    return packages.installed_fact(names_by_family).key


HUB_PKGS = pkg_key(packages.HUB_PACKAGES)

# --- install-packages ------------------------------------------------------------------


def test_packages_debian_missing_nginx_stale_lists(make_host):
    installed = "\n".join(n for n in packages.HUB_PACKAGES["apt"] if n != "nginx")
    host, runner = make_host({"os-release": DEBIAN_12, HUB_PKGS: installed, "apt-lists-fresh": ""})
    packages.install_hub_packages(host)
    assert runner.probes == [["os-release"], [HUB_PKGS, "apt-lists-fresh"]]
    assert runner.commands == [
        APT_ENV
        + "apt-get -o DPkg::Lock::Timeout=600 update -q && apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nginx"
    ]
    assert host.record.changes == ["install nginx"]


def test_packages_ubuntu_fresh_lists_skip_update(make_host):
    fresh = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
    host, runner = make_host({"os-release": UBUNTU_2404, HUB_PKGS: "curl\nrsync", "apt-lists-fresh": fresh})
    packages.install_hub_packages(host)
    assert runner.commands == [
        APT_ENV
        + "apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends ca-certificates nginx openssl python3-venv"
    ]


@pytest.mark.parametrize("release", [DEBIAN_12, AMAZON_2023])
def test_packages_all_present_no_command(make_host, release):
    family = packages.os_family(parsed(F.os_release(), release))
    host, runner = make_host({"os-release": release, HUB_PKGS: "\n".join(packages.HUB_PACKAGES[family])})
    packages.install_hub_packages(host)
    assert runner.commands == []
    assert host.record.changes == []


@pytest.mark.parametrize(
    "release, command",
    [
        (AMAZON_2023, "dnf install -y -q ca-certificates nginx openssl python3 rsync"),
        (FEDORA_41, "dnf install -y -q ca-certificates nginx openssl python3 rsync"),
    ],
)
def test_packages_rpm_families(make_host, release, command):
    host, runner = make_host({"os-release": release, HUB_PKGS: ""})
    packages.install_hub_packages(host)
    assert runner.commands == [command]


def test_worker_packages(make_host):
    host, runner = make_host({"os-release": AMAZON_2023, pkg_key(packages.WORKER_PACKAGES): "curl"})
    packages.install_worker_packages(host)
    assert runner.commands == ["dnf install -y -q ca-certificates rsync"]


def test_packages_unsupported_os(make_host):
    host, runner = make_host({"os-release": ALPINE})
    with pytest.raises(HubswarmError, match="unsupported OS Alpine Linux v3.20: use Debian"):
        packages.install_hub_packages(host)
    assert runner.commands == []


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


def test_docker_command_missing_beside_the_engine_is_installed(make_host):
    host, runner = make_host({**DOCKER_DONE, "command:docker": None})
    docker.install_docker(host)
    assert runner.commands == [docker.CLI_SCRIPT]


def test_docker_in_place(make_host):
    host, runner = make_host(DOCKER_DONE)
    docker.install_docker(host)
    assert runner.commands == []


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


def test_a_daemon_json_that_is_no_object_is_one_line(make_host):
    host, runner = make_host(
        {**DOCKER_DONE, f"file:{docker.DAEMON_JSON}": "abc 644 root root", f"content:{docker.DAEMON_JSON}": "[1"}
    )
    with pytest.raises(HubswarmError, match=f"^{docker.DAEMON_JSON} is not a JSON object: fix it"):
        docker.install_docker(host)
    assert runner.commands == []


@pytest.mark.parametrize(
    "state, command",
    [
        (unit_info("enabled", "inactive"), "systemctl start docker"),
        (unit_info("disabled", "active"), "systemctl enable docker"),
        ("", "systemctl enable docker && systemctl start docker"),
    ],
)
def test_ensure_service(make_host, state, command):
    host, runner = make_host({"unit:docker": state})
    assert services.ensure_service(host, "docker") is True
    assert runner.commands == [command]


# --- install-nodejs ------------------------------------------------------------------------

CHP_INSTALL = f"npm install --global --no-fund --no-audit configurable-http-proxy@{pins.CONFIGURABLE_HTTP_PROXY}"
PINNED_CHP_INSTALL = f"{nodejs.PINNED_NPM} {CHP_INSTALL.removeprefix('npm ')}"


@pytest.mark.parametrize(
    "release, installed, install",
    [
        (
            DEBIAN_12,
            {},
            [
                APT_ENV + "apt-get -o DPkg::Lock::Timeout=600 update -q && "
                "apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nodejs",
                nodejs.pinned_npm_script(),
                PINNED_CHP_INSTALL,
            ],
        ),
        (
            AMAZON_2023,
            {"npm-path": "/usr/bin/npm"},
            ["dnf install -y -q nodejs nodejs-npm", CHP_INSTALL],
        ),
    ],
)
def test_node_from_scratch(make_host, release, installed, install):
    """Debian's npm package brings hundreds of others: npm's own release installs the proxy there."""
    host, runner = make_host({"os-release": release})
    runner.after[" install -y -q "] = {"nodejs-version": "v20.11.1", **installed}
    nodejs.install_nodejs(host)
    assert runner.commands == install


def test_node_present_chp_pinned_no_command(make_host):
    host, runner = make_host({"nodejs-version": "v20.11.1", "chp-version": chp_info(pins.CONFIGURABLE_HTTP_PROXY)})
    nodejs.install_nodejs(host)
    assert runner.commands == []
    assert runner.probes == [["nodejs-version", "npm-path", "pinned-npm-version", "chp-version"]]


@pytest.mark.parametrize(
    "npm, install",
    [
        ({"npm-path": "/usr/bin/npm"}, [CHP_INSTALL]),  # the distribution's npm, installed before
        ({"pinned-npm-version": json.dumps({"name": "npm", "version": pins.NPM})}, [PINNED_CHP_INSTALL]),
        (
            {"pinned-npm-version": json.dumps({"name": "npm", "version": "10.0.0"})},
            [nodejs.pinned_npm_script(), PINNED_CHP_INSTALL],
        ),
    ],
)
def test_node_present_chp_outdated(make_host, npm, install):
    host, runner = make_host(
        {
            "os-release": DEBIAN_12,
            "nodejs-version": "v18.19.0",
            pkg_key(nodejs.NODEJS_PACKAGES): "nodejs",
            "chp-version": chp_info("4.5.0"),
            **npm,
        }
    )
    nodejs.install_nodejs(host)
    assert runner.commands == install


@pytest.mark.parametrize("release, family", [(DEBIAN_12, "apt"), (AMAZON_2023, "dnf")])
def test_node_too_old_after_install(make_host, release, family):
    host, runner = make_host({"os-release": release})
    runner.after[" install -y -q "] = {"nodejs-version": "v12.22.12"}
    with pytest.raises(HubswarmError) as err:
        nodejs.install_nodejs(host)
    message = str(err.value)
    assert message.startswith(f"Node.js 12 on 10.0.0.5 is older than {pins.NODEJS_MIN_MAJOR}")
    assert message.endswith(f"(the {family} package is too old)")
    assert "NodeSource" in message and "\n" not in message
    assert CHP_INSTALL not in runner.commands


def test_node_too_old_already_installed(make_host):
    host, runner = make_host({"os-release": DEBIAN_12, "nodejs-version": "v16.20.2", "chp-version": ""})
    with pytest.raises(HubswarmError, match="Node.js 16 .* older than 18"):
        nodejs.install_nodejs.check_first(host)
    assert runner.commands == []


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


def test_make_cert_uses_the_address_without_domain(make_host):
    host, runner = make_host(
        {
            "dir:/srv/jupyterhub": "700 root root",
            "dir:/srv/jupyterhub/ssl": "700 root root",
            "cert:/srv/jupyterhub/ssl/hub.crt": cert_info("IP Address:10.0.0.5"),
        },
        domain="",
    )
    certs.make_cert(host)
    assert runner.commands == []


@pytest.mark.parametrize(
    "state, commands",
    [
        # Reached by name: it advertises the first of its own addresses.
        (swarm_info(), ["docker swarm init --advertise-addr 54.1.2.3 >/dev/null"]),
        (swarm_info("active", True, "c1"), []),
    ],
)
def test_swarm_init(make_host, state, commands):
    host, runner = make_host({"addresses": "54.1.2.3 10.0.0.5", "swarm-state": state}, address="hub.example.com")
    swarm.swarm_init(host)
    assert runner.commands == commands


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


FIRST_START = {
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
    )
    auth.write_env(host, env_values())
    assert (
        'OAUTH_CALLBACK_URL="https://ec2-54-1-2-3.us-west-2.compute.amazonaws.com/hub/oauth_callback"'
        in runner.calls[0].stdin
    )


def test_write_env_no_callback_name(make_host):
    host, runner = make_host({"dir:/srv/jupyterhub": "700 root root"}, domain="")
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
    assert "make a self-signed certificate for hub.example.com" in changes
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

IMAGE = "example.org/class/notebook:fall"
OLD_ID, NEW_ID = "sha256:" + "a" * 64, "sha256:" + "b" * 64
PULL = f"docker pull -q {IMAGE} >/dev/null"


@pytest.mark.parametrize(
    "policy, had, now, commands, changes",
    [
        ("missing", "", NEW_ID, [PULL], [f"pull {IMAGE}"]),
        ("always", "", NEW_ID, [PULL], [f"pull {IMAGE}"]),
        ("missing", OLD_ID, NEW_ID, [], []),  # a moved tag is not asked about
        ("always", OLD_ID, OLD_ID, [f"{PULL} && {images.image_id_fact(IMAGE).command}"], []),
        (
            "always",
            OLD_ID,
            NEW_ID,
            [f"{PULL} && {images.image_id_fact(IMAGE).command}"],
            [f"pull {IMAGE}: its tag moved (aaaaaaaaaaaa -> bbbbbbbbbbbb)"],
        ),
    ],
)
def test_pull_image(make_host, policy, had, now, commands, changes):
    host, runner = make_host({images.image_id_fact(IMAGE).key: had}, image=IMAGE, image_pull=policy)
    runner.prints[PULL] = now + "\n"
    images.pull_image(host)
    assert runner.commands == commands
    assert host.record.changes == changes


def test_pull_image_always_in_check_mode_asks_nobody(make_host, recap_out):
    host, runner = make_host({images.image_id_fact(IMAGE).key: OLD_ID}, check=True, image=IMAGE, image_pull="always")
    images.pull_image(host)
    assert runner.commands == [] and host.record.changes == []
    assert f"would pull {IMAGE} if its tag moved (HUBSWARM_IMAGE_PULL=always)" in recap_out.getvalue()


def test_check_mode_predicts_a_fresh_docker_once_and_hides_daemon_json(make_host):
    """The start install-docker would make reads the settings: no second start predicted; and
    daemon.json (an operator's part may hold a proxy's password) is shown by size only."""
    host, runner = make_host({"os-release": DEBIAN_12}, check=True)
    docker.install_docker(host)
    changes = host.record.changes
    assert [c for c in changes if "start docker" in c] == ["enable and start docker"]
    assert "record the settings Docker starts with" in changes and runner.calls == []
