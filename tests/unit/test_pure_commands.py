"""Pure functions: probe output in, commands out."""

import json
import shutil
import subprocess

import pytest

from fakehost import ALPINE, AMAZON_2, AMAZON_2023, DEBIAN_12, FEDORA_41, UBUNTU_2404, hub_config, parsed
from tasks import auth, certs, hub, nginx, nodejs, packages, pins, proxy, python_env, swarm
from tasks.core import HubswarmError, services
from tasks.core import facts as F
from tasks.core.facts import Answer

# --- packages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "release, family",
    [
        (DEBIAN_12, "apt"),
        (UBUNTU_2404, "apt"),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "apt"),
        ("ID=raspbian\nID_LIKE=debian\n", "apt"),
        (AMAZON_2023, "dnf"),
        (FEDORA_41, "dnf"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n', "dnf"),
        ('ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n', "dnf"),
    ],
)
def test_os_family(release, family):
    assert packages.os_family(parsed(F.os_release(), release)) == family


def test_amazon_linux_2_is_refused_with_the_way_out():
    with pytest.raises(HubswarmError) as err:
        packages.os_family(parsed(F.os_release(), AMAZON_2))
    assert "Amazon Linux 2 has reached its end of life" in str(err.value)
    assert "Amazon Linux 2023" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "release, named",
    [
        (ALPINE, "Alpine Linux v3.20"),
        ("ID=arch\n", "arch"),
        ("", "unknown"),
        ("garbage without equals\n", "unknown"),
    ],
)
def test_os_family_unsupported(release, named):
    with pytest.raises(HubswarmError) as err:
        packages.os_family(parsed(F.os_release(), release))
    message = str(err.value)
    assert f"unsupported OS {named}" in message
    assert "Debian, Ubuntu, Amazon Linux 2023 or Fedora" in message
    assert "\n" not in message


def test_parse_os_release_strips_quotes_and_space():
    assert parsed(F.os_release(), 'ID="amzn"\n VERSION_ID = "2"\n# c\n') == {
        "ID": "amzn",
        "VERSION_ID": "2",
    }


@pytest.mark.parametrize(
    "family, missing, fresh, command",
    [
        ("apt", set(), False, ""),
        ("dnf", [], True, ""),
        (
            "apt",
            {"nginx", "curl"},
            True,
            "export DEBIAN_FRONTEND=noninteractive; "
            "if dpkg --audit 2>/dev/null | grep -q .; then dpkg --configure -a; fi && "
            "apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends curl nginx",
        ),
        (
            "apt",
            {"nginx"},
            False,
            "export DEBIAN_FRONTEND=noninteractive; "
            "if dpkg --audit 2>/dev/null | grep -q .; then dpkg --configure -a; fi && "
            "apt-get -o DPkg::Lock::Timeout=600 update -q && "
            "apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nginx",
        ),
        ("dnf", {"nginx", "curl"}, False, "dnf install -y -q curl nginx"),
    ],
)
def test_install_commands(family, missing, fresh, command):
    assert packages.install_commands(family, missing, fresh) == command


def test_install_commands_quote_names():
    assert packages.install_commands("dnf", {"a;rm -rf /"}) == "dnf install -y -q 'a;rm -rf /'"


# --- node ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, major",
    [
        ("v18.19.0", 18),
        ("v20.11.1\n", 20),
        ("22.3.0", 22),
        ("  v12.22.12 ", 12),
        ("", None),
        ("bash: node: command not found", None),
        ("v20", None),
    ],
)
def test_nodejs_major(text, major):
    assert parsed(nodejs.NODEJS_MAJOR, text) == major


@pytest.mark.parametrize(
    "installed, command",
    [
        (pins.CONFIGURABLE_HTTP_PROXY, ""),
        (pins.CONFIGURABLE_HTTP_PROXY + "\n", ""),
        ("", f"npm install --global --no-fund --no-audit configurable-http-proxy@{pins.CONFIGURABLE_HTTP_PROXY}"),
        ("4.6.1", f"npm install --global --no-fund --no-audit configurable-http-proxy@{pins.CONFIGURABLE_HTTP_PROXY}"),
    ],
)
def test_chp_command(installed, command):
    assert nodejs.chp_command(installed) == command


# --- python_env --------------------------------------------------------------------

REQS = " ".join(f"{n}=={v}" for n, v in sorted(pins.HUB_REQUIREMENTS.items()))


@pytest.mark.parametrize(
    "answer, installs",
    [
        (Answer(0, json.dumps(pins.HUB_REQUIREMENTS)), False),
        (Answer(127, ""), True),  # no venv yet
        (Answer(0, ""), True),
        (Answer(0, "{}"), True),  # venv without the packages (or without pip: interrupted)
        (Answer(0, json.dumps({**pins.HUB_REQUIREMENTS, "jupyterhub": "5.0.0"})), True),
        (Answer(0, json.dumps({"jupyterhub": pins.JUPYTERHUB})), True),
    ],
)
def test_venv_commands(answer, installs):
    command = python_env.venv_commands("/opt/jupyterhub", python_env.installed_versions(answer), "python3.11")
    if not installs:
        assert command == ""
        return
    assert command.endswith(
        "python3.11 -m venv /opt/jupyterhub && "
        f"/opt/jupyterhub/bin/python -m pip install -q --disable-pip-version-check {REQS}"
    )
    assert "PIP_CERT" in command


@pytest.mark.parametrize(
    "answer, family, choice",
    [
        ("python3 3 11\n", "apt", ("python3", [])),  # Debian 12
        ("python3 3 12\npython3.12 3 12\n", "apt", ("python3", [])),  # Ubuntu 24.04
        ("", "apt", ("python3", [])),  # none yet: python3-venv brings it
        ("python3 3 9\n", "dnf", ("python3.11", ["python3.11", "python3.11-pip"])),  # Amazon Linux 2023
        ("python3 3 9\npython3.11 3 11\n", "dnf", ("python3.11", [])),
        ("python3 3 9\npython3.11 3 11\npython3.12 3 12\n", "dnf", ("python3.12", [])),
        ("", "dnf", ("python3.11", ["python3.11", "python3.11-pip"])),
        ("python3 3 13\n", "dnf", ("python3", [])),  # Fedora
    ],
)
def test_choose_python(answer, family, choice):
    assert python_env.choose_python(parsed(python_env.PYTHONS, answer), family, "h") == choice


def test_choose_python_refuses_an_old_apt_python():
    with pytest.raises(HubswarmError) as err:
        python_env.choose_python(parsed(python_env.PYTHONS, "python3 3 9\n"), "apt", "10.0.0.5")
    assert str(err.value).startswith("Python 3.9 on 10.0.0.5 is older than 3.10")
    assert "Debian 12" in str(err.value)


def test_pythons_fact_in_real_bash():
    out = subprocess.run(["bash", "-c", python_env.PYTHONS.command], capture_output=True, text=True).stdout
    found = parsed(python_env.PYTHONS, out)
    assert found["python3"] >= (3, 0)


def test_venv_fact_asks_for_every_pin():
    fact = python_env.installed_fact("/opt/jupyter hub")
    assert fact.key == "venv:/opt/jupyter hub"
    assert fact.command.startswith("'/opt/jupyter hub'/bin/python -c ")
    for name in pins.HUB_REQUIREMENTS:
        assert name in fact.command


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3")
def test_venv_probe_script_runs():
    """The probe's Python prints JSON of the pinned distributions it finds."""
    out = subprocess.run(
        ["python3", "-c", python_env.INSTALLED_SCRIPT, "pytest", "no-such-dist-hubswarm"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert list(json.loads(out)) == ["pytest"]


# --- certs ---------------------------------------------------------------------------

CERT, KEY = "/srv/jupyterhub/ssl/hub.crt", "/srv/jupyterhub/ssl/hub.key"


@pytest.mark.parametrize(
    "name, san",
    [("hub.example.com", "DNS:hub.example.com"), ("10.0.0.5", "IP:10.0.0.5"), ("2001:db8::1", "IP:2001:db8::1")],
)
def test_subject_alt_name(name, san):
    assert certs.subject_alt_name(name) == san


@pytest.mark.parametrize(
    "out, name, remake",
    [
        ("valid\n    DNS:hub.example.com", "hub.example.com", False),
        ("valid\n    IP Address:10.0.0.5", "10.0.0.5", False),
        ("valid\n    DNS:a.example.com, DNS:hub.example.com", "hub.example.com", False),
        ("valid\n    DNS:old.example.com", "hub.example.com", True),  # renamed
        ("    DNS:hub.example.com", "hub.example.com", True),  # expiring
        ("", "hub.example.com", True),  # missing
        ("valid", "hub.example.com", True),  # no SAN at all
        ("valid\n    IP Address:10.0.0.5", "10.0.0.6", True),
    ],
)
def test_cert_commands(out, name, remake):
    command = certs.cert_commands(parsed(certs.cert_fact(CERT), out), name, CERT, KEY)
    if not remake:
        assert command == ""
        return
    assert command.startswith("umask 077; openssl req -x509 -nodes -newkey rsa:2048 -days 365 ")
    assert f"-subj /CN={name} " in command
    assert f"-addext subjectAltName={certs.subject_alt_name(name)} " in command
    assert command.endswith(f"chmod 600 {KEY} && chmod 644 {CERT}")


@pytest.mark.parametrize(
    "out, names, valid",
    [
        ("valid\n    DNS:hub.example.com, DNS:example.com", {"DNS:hub.example.com", "DNS:example.com"}, True),
        ("valid\n    IP Address:2001:DB8:0:0:0:0:0:1, IP Address:10.0.0.5", {"IP:2001:db8::1", "IP:10.0.0.5"}, True),
        ("    DNS:hub.example.com", set(), False),  # expiring: no "valid" line, names not read (remade anyway)
        ("valid", set(), True),  # no SAN at all
        ("", set(), False),  # missing
    ],
)
def test_sans(out, names, valid):
    assert parsed(certs.cert_fact(CERT), out) == certs.Certificate(frozenset(names), valid)


def test_cert_commands_ipv6_is_idempotent():
    # This is what OpenSSL 3 prints for subjectAltName=IP:2001:db8::1 (see the next test).
    answer = Answer(0, "valid\n    IP Address:2001:DB8:0:0:0:0:0:1")
    assert certs.cert_commands(certs.certificate(answer), "2001:db8::1", CERT, KEY) == ""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
@pytest.mark.parametrize("name", ["hub.example.com", "10.0.0.5"])
def test_cert_round_trip_with_real_openssl(tmp_path, name):
    """The command makes a cert the probe then finds fine: no remake on the next run."""
    cert, key = str(tmp_path / "hub.crt"), str(tmp_path / "hub.key")
    probe = certs.cert_fact(cert).command
    missing = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout
    command = certs.cert_commands(parsed(certs.cert_fact(cert), missing.rstrip("\n")), name, cert, key)
    assert command
    subprocess.run(["bash", "-c", command], check=True, timeout=30)
    assert oct((tmp_path / "hub.key").stat().st_mode & 0o777) == "0o600"
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout
    current = parsed(certs.cert_fact(cert), out.rstrip("\n"))
    assert certs.cert_commands(current, name, cert, key) == ""
    assert certs.cert_commands(current, "other.example.com", cert, key)


# --- swarm ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, state",
    [
        ("inactive false ", ("inactive", False, "")),
        ("active true node1", ("active", True, "node1")),
        ("active false node2", ("active", False, "node2")),
        ("", ("inactive", False, "")),
        ("pending false ", ("pending", False, "")),
    ],
)
def test_parse_swarm_state(text, state):
    assert parsed(swarm.SWARM_STATE, text) == state


@pytest.mark.parametrize(
    "text, command",
    [
        ("inactive false", "docker swarm init --advertise-addr 10.0.0.5 >/dev/null"),
        ("", "docker swarm init --advertise-addr 10.0.0.5 >/dev/null"),
        ("active true abc node1", ""),
    ],
)
def test_init_command(text, command):
    assert swarm.init_command(parsed(swarm.SWARM_STATE, text), "10.0.0.5", "hub") == command


@pytest.mark.parametrize(
    "text, words",
    [
        ("active false abc node2", ["hub is a worker in another swarm", "docker swarm leave"]),
        ("pending false", ["hub swarm state is 'pending'", "docker swarm leave --force", "never resets"]),
        ("error false", ["'error'", "docker info"]),
        ("locked false", ["'locked'"]),
    ],
)
def test_init_command_refuses(text, words):
    with pytest.raises(HubswarmError) as err:
        swarm.init_command(parsed(swarm.SWARM_STATE, text), "10.0.0.5", "hub")
    for word in words:
        assert word in str(err.value)


def test_swarm_state_fact_keeps_go_template_braces():
    assert "'{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}" in swarm.SWARM_STATE.command


# --- nginx ---------------------------------------------------------------------------

SITE, LINK, DEFAULT = nginx.site_paths("apt")


def test_site_paths():
    assert (SITE, LINK, DEFAULT) == (
        "/etc/nginx/sites-available/jupyterhub",
        "/etc/nginx/sites-enabled/jupyterhub",
        "/etc/nginx/sites-enabled/default",
    )
    assert nginx.site_paths("dnf") == ("/etc/nginx/conf.d/jupyterhub.conf", None, None)


@pytest.mark.parametrize(
    "link_answer, default_answer, command",
    [
        (Answer(0, SITE), Answer(1, ""), ""),
        (Answer(1, ""), Answer(1, ""), f"ln -sfn {SITE} {LINK}"),
        (Answer(0, "/elsewhere"), Answer(1, ""), f"ln -sfn {SITE} {LINK}"),
        (Answer(0, SITE), Answer(0, ""), f"rm -f {DEFAULT}"),
        (Answer(1, ""), Answer(0, ""), f"ln -sfn {SITE} {LINK} && rm -f {DEFAULT}"),
    ],
)
def test_link_commands(link_answer, default_answer, command):
    link_f, default_f = nginx.link_facts(LINK, DEFAULT)
    target, default_exists = link_f.parse(link_answer), default_f.parse(default_answer)
    assert nginx.link_commands(target, SITE, LINK, DEFAULT, default_exists) == command


def test_link_commands_nothing_for_conf_d():
    assert nginx.link_commands("", "/etc/nginx/conf.d/jupyterhub.conf", None, None, False) == ""


@pytest.mark.parametrize(
    "ready, files",
    [
        (False, ("/srv/jupyterhub/ssl/hub.crt", "/srv/jupyterhub/ssl/hub.key")),
        (
            True,
            (
                "/etc/letsencrypt/live/hub.example.com/fullchain.pem",
                "/etc/letsencrypt/live/hub.example.com/privkey.pem",
            ),
        ),
    ],
)
def test_tls_files(ready, files):
    assert certs.tls_files(hub_config(), ready) == files


# --- hub and proxy services: started, restarted when their inputs changed ------------

SOURCES = "cat /srv/a /srv/b"
RECORD = "{ cat /srv/a /srv/b; } 2>/dev/null | sha256sum | cut -d' ' -f1 > /srv/.running"


@pytest.mark.parametrize(
    "unit, fingerprint, what, command",
    [
        ("enabled\nactive", "abc\nabc", "", ""),
        (
            "enabled\nactive",
            "abc\nold",
            "restart jupyterhub (its inputs changed)",
            f"{RECORD} && systemctl restart jupyterhub",
        ),
        (
            "enabled\nactive",
            "abc",
            "restart jupyterhub (its inputs changed)",
            f"{RECORD} && systemctl restart jupyterhub",
        ),
        ("enabled\ninactive", "abc\nabc", "start jupyterhub", f"{RECORD} && systemctl start jupyterhub"),
        ("disabled\nfailed", "abc\nold", "start jupyterhub", f"{RECORD} && systemctl start jupyterhub"),
        ("", "", "start jupyterhub", f"{RECORD} && systemctl start jupyterhub"),
    ],
)
def test_restart_plan(unit, fingerprint, what, command):
    state = parsed(F.systemd_unit("jupyterhub"), unit)
    fingerprints = parsed(services.inputs_fact("jupyterhub", SOURCES, "/srv/.running"), fingerprint)
    assert services.restart_plan("jupyterhub", state, fingerprints, SOURCES, "/srv/.running") == (what, command)


def test_restart_plan_predicts_a_restart_in_check_mode():
    running, same = F.UnitState("enabled", "active"), ["abc", "abc"]
    plan = services.restart_plan("jupyterhub", running, same, SOURCES, "/srv/.running", inputs_change=True)
    assert plan[0] == "restart jupyterhub (its inputs changed)"


def test_inputs_cover_everything_the_hub_reads():
    assert hub.inputs(hub_config(srv="/srv/h")) == [
        "/srv/h/jupyterhub_config.py",
        "/srv/h/env",
        "/srv/h/userlist",
        "/srv/h/proxy.env",
        hub.UNIT,
    ]
    sources = hub.sources(hub_config(srv="/srv/h"))
    assert "/opt/jupyterhub/lib/python3*/site-packages/hubswarm_hub/*.py " in sources  # the hub-side package
    assert " /srv/h/jupyterhub_config.d/*.py;" in sources  # the operator's own settings
    assert sources.endswith("; ls -d /opt/jupyterhub/lib/python3*/site-packages/*.dist-info")  # every pinned version


def test_the_proxy_restarts_for_its_unit_its_token_and_its_version():
    assert proxy.sources(hub_config(srv="/srv/h")) == (
        f"cat {proxy.UNIT} /srv/h/proxy.env; PATH=/usr/local/bin:/usr/bin:/bin configurable-http-proxy --version"
    )


@pytest.mark.parametrize("service, sources", [(hub.hub_inputs, hub.sources), (proxy.proxy_inputs, proxy.sources)])
def test_recorded_fingerprint_is_the_probed_one(service, sources):
    """start-hub records exactly what the probe computes, or it would restart forever."""
    config = hub_config()
    probe = service(config).command
    record = services.restart_plan("x", F.UnitState("", ""), [], sources(config), "/stamp")[1]
    assert probe.startswith(services.fingerprint_command(sources(config)) + "; cat ")
    assert record.startswith(services.fingerprint_command(sources(config)) + " > ")


def test_the_proxy_token_is_made_once_on_the_hub(tmp_path):
    """In real bash: a token appears 0600, and a second run keeps it."""
    script = proxy.token_script(hub_config(srv=str(tmp_path)))
    subprocess.run(["bash", "-c", script], check=True)
    token = (tmp_path / "proxy.env").read_text()
    assert token.startswith("CONFIGPROXY_AUTH_TOKEN=") and len(token.strip()) == len("CONFIGPROXY_AUTH_TOKEN=") + 64
    assert oct((tmp_path / "proxy.env").stat().st_mode & 0o777) == "0o600"
    subprocess.run(["bash", "-c", script], check=True)
    assert (tmp_path / "proxy.env").read_text() == token
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proxy.env"]  # no temp file left


# --- auth.render_env ---------------------------------------------------------------


@pytest.mark.parametrize(
    "values, text",
    [
        ({}, ""),
        ({"A": "1"}, 'A="1"\n'),
        ({"A": "x y", "B": ""}, 'A="x y"\nB=""\n'),
        ({"S": 'q"uo\\te'}, 'S="q\\"uo\\\\te"\n'),
        ({"U": "https://hub.example.com/hub/oauth_callback"}, 'U="https://hub.example.com/hub/oauth_callback"\n'),
    ],
)
def test_render_env(values, text):
    assert auth.render_env(values) == text


# --- the core's facts: raw output in, the value a step reads out ------------------


@pytest.mark.parametrize(
    "fact, out, rc, value",
    [
        (F.systemd_unit("docker"), "enabled\nactive\n", 0, F.UnitState("enabled", "active")),
        (F.systemd_unit("docker"), "disabled\ninactive\n", 0, F.UnitState("disabled", "inactive")),
        (F.systemd_unit("docker"), "", 0, F.UnitState("", "")),  # no such unit
        (F.packages_installed(["curl", "nginx"]), "curl\n", 0, frozenset({"curl"})),
        (F.addresses(), "10.0.0.5 172.17.0.1 \n", 0, ["10.0.0.5", "172.17.0.1"]),
        (F.file_state("/x"), "", 1, ""),
        (F.dir_state("/x"), "755 root root\n", 0, "755 root root"),
        (F.file_content("/x"), "a=1\n\n", 0, "a=1\n\n"),  # exactly as it is
        (F.instance_metadata("public-hostname"), "", 22, ""),  # a private host has none
    ],
)
def test_core_facts_parse_their_answers(fact, out, rc, value):
    assert parsed(fact, out, rc) == value
    assert F.UnitState("enabled", "active").running and not F.UnitState("enabled", "failed").running


# --- the operator's jupyterhub_config.d ----------------------------------------------------


def test_config_d_is_read_and_compiled_here(tmp_path):
    assert hub.read_config_d(hub_config(config_d=str(tmp_path / "none")))[0] == ""  # no folder: no files
    (tmp_path / "10-a.py").write_text("c.JupyterHub.active_server_limit = 7\n")
    (tmp_path / "notes.txt").write_text("not a setting\n")
    manifest, _ = hub.read_config_d(hub_config(config_d=str(tmp_path)))
    assert manifest.endswith("  ./10-a.py\n") and manifest.count("\n") == 1
    (tmp_path / "20-b.py").write_text("c.JupyterHub.x = (\n")
    with pytest.raises(HubswarmError, match=r"20-b.py line 1: '\(' was never closed: fix it \(HUBSWARM_CONFIG_D\)"):
        hub.read_config_d(hub_config(config_d=str(tmp_path)))
