"""Pure functions: probe output in, commands out."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakehost import (
    ALPINE,
    AMAZON_2,
    AMAZON_2023,
    DEBIAN_12,
    FEDORA_41,
    UBUNTU_2404,
    cert_info,
    chp_info,
    hub_config,
    make_venv,
    parsed,
    swarm_info,
    unit_info,
    venv_info,
)
from tasks import pins
from tasks.cluster import swarm
from tasks.core import HubswarmError, services
from tasks.core import facts as F
from tasks.core.facts import Answer
from tasks.hub import auth, certs, nginx, nodejs, proxy, python_env
from tasks.hub import jupyterhub as hub
from tasks.node import packages

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


@pytest.mark.parametrize(
    "tool, names_by_family, asked, installed",
    [
        ("dpkg-query", packages.HUB_PACKAGES, packages.HUB_PACKAGES["apt"], {"curl", "nginx"}),
        ("rpm", packages.HUB_PACKAGES, packages.HUB_PACKAGES["dnf"], {"nginx"}),
        ("dpkg-query", {"dnf": ["python3.11"]}, None, set()),  # nothing to ask a dpkg host
    ],
)
def test_packages_fact_asks_the_hosts_own_tool(tmp_path, tool, names_by_family, asked, installed):
    """Where dpkg is, the deb names; elsewhere, the rpm names: one fact for either family."""
    stubs, log = tmp_path / "bin", tmp_path / "asked"
    stubs.mkdir()
    answers = {
        "dpkg-query": 'shift 2; for p; do echo "$p install ok $([ $p = curl ] || [ $p = nginx ] && echo installed)"; done',
        "rpm": 'shift 3; for p; do [ $p = nginx ] && echo $p || echo "package $p is not installed"; done',
    }
    (stubs / tool).write_text(f'#!/bin/sh\necho "$@" > {log}\n{answers[tool]}\n')
    (stubs / tool).chmod(0o755)
    for name in ("awk", "grep"):
        (stubs / name).symlink_to(shutil.which(name))
    fact = packages.installed_fact(names_by_family)
    done = subprocess.run(
        [shutil.which("bash"), "-c", fact.command], capture_output=True, text=True, env={"PATH": str(stubs)}
    )
    assert parsed(fact, done.stdout) == installed
    if asked:
        assert log.read_text().split()[-len(asked) :] == sorted(asked)
    else:
        assert not log.exists()


# --- node ---------------------------------------------------------------------------


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


@pytest.mark.skipif(Path("/usr/local/bin", nodejs.CHP).exists(), reason="a proxy in /usr/local/bin is found first")
def test_chp_version_fact_in_real_bash(tmp_path):
    """The version in the package.json npm links the command from, without starting Node.js."""
    package = tmp_path / "lib" / "node_modules" / nodejs.CHP
    (package / "bin").mkdir(parents=True)
    (package / "package.json").write_text(chp_info("5.3.0"))
    (package / "bin" / nodejs.CHP).write_text("#!/bin/sh\nexit 1\n")
    (package / "bin" / nodejs.CHP).chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / nodejs.CHP).symlink_to(package / "bin" / nodejs.CHP)

    def probe():
        env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
        done = subprocess.run(["bash", "-c", nodejs.CHP_VERSION.command], capture_output=True, text=True, env=env)
        return parsed(nodejs.CHP_VERSION, done.stdout, done.returncode)

    assert probe() == "5.3.0"
    (tmp_path / "bin" / nodejs.CHP).unlink()
    assert probe() == ""


# --- python_env --------------------------------------------------------------------

REQS = " ".join(f"{n}=={v}" for n, v in sorted(pins.HUB_REQUIREMENTS.items()))


@pytest.mark.parametrize(
    "answer, installs",
    [
        (Answer(0, venv_info(pins.HUB_REQUIREMENTS)), False),
        (Answer(1, ""), True),  # no venv yet, or its interpreter is gone
        (Answer(0, venv_info({})), True),  # venv without the packages (or without pip: interrupted)
        (Answer(0, venv_info({**pins.HUB_REQUIREMENTS, "jupyterhub": "5.0.0"})), True),
        (Answer(0, venv_info({"jupyterhub": pins.JUPYTERHUB})), True),
    ],
)
def test_venv_commands(answer, installs):
    command = python_env.venv_commands("/opt/jupyterhub", python_env.installed_versions(answer), "python3.11")
    if not installs:
        assert command == ""
        return
    assert command.endswith(
        "python3.11 -m venv /opt/jupyterhub && "
        f"/opt/jupyterhub/bin/python -m pip install -q --disable-pip-version-check uv=={pins.UV} && "
        f"/opt/jupyterhub/bin/uv pip install -q --system-certs --python /opt/jupyterhub/bin/python {REQS}"
    )
    assert "PIP_CERT" in command


@pytest.mark.parametrize(
    "folders, versions",
    [
        (
            ["jupyterhub-6.1.1", "pip-23.0.1", "jupyterhub_idle_culler-2.0.0"],
            {"jupyterhub": "6.1.1", "jupyterhub-idle-culler": "2.0.0"},
        ),
        # Names as older tools wrote them: normalized as pip compares them.
        (
            ["JupyterHub-5.0.0", "Jupyterhub.Idle-Culler-1.4.0"],
            {"jupyterhub": "5.0.0", "jupyterhub-idle-culler": "1.4.0"},
        ),
        (["oauthenticator-17.4.0+local"], {"oauthenticator": "17.4.0+local"}),
        (["*"], {}),  # none at all (the glob matched nothing)
    ],
)
def test_installed_versions_read_the_dist_info_folders(folders, versions):
    site = "/opt/jupyterhub/lib/python3.11/site-packages"
    answer = Answer(0, "".join(f"{site}/{folder}.dist-info\n" for folder in folders))
    assert python_env.installed_versions(answer) == versions


def test_venv_facts_in_real_bash(tmp_path):
    """Read without starting Python; nothing once the venv's base interpreter is gone."""
    venv, site = make_venv(tmp_path, dists=pins.HUB_REQUIREMENTS)
    facts = (python_env.installed_fact(str(venv)), python_env.package_fact(str(venv)))

    def probe(fact):
        done = subprocess.run(["bash", "-c", fact.command], capture_output=True, text=True, timeout=120)
        return parsed(fact, done.stdout, done.returncode)

    assert [probe(f) for f in facts] == [pins.HUB_REQUIREMENTS, (str(site), "")]
    (tmp_path / "base" / "python3.11").unlink()  # an OS upgrade removed it
    assert [probe(f) for f in facts] == [None, ("", "")]


def test_a_venv_interpreter_whose_name_tells_no_version_is_asked(tmp_path):
    venv, _ = make_venv(tmp_path, interpreter="python3")
    (tmp_path / "base" / "python3").write_text("#!/bin/sh\necho 3.12\n")
    site = venv / "lib" / "python3.12" / "site-packages"
    (site / "jupyterhub-6.1.1.dist-info").mkdir(parents=True)
    fact = python_env.installed_fact(str(venv))
    done = subprocess.run(["bash", "-c", fact.command], capture_output=True, text=True, timeout=120)
    assert parsed(fact, done.stdout, done.returncode) == {"jupyterhub": "6.1.1"}


def test_venv_facts_find_what_python_finds(tmp_path):
    """In a real venv: the site-packages its Python uses, and the versions it reports."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = str(venv / "bin" / "python")

    def printed(code):
        return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    purelib = printed("import sysconfig; print(sysconfig.get_paths()['purelib'])")
    metadata = Path(purelib) / "jupyterhub-6.1.1.dist-info" / "METADATA"
    metadata.parent.mkdir()
    metadata.write_text("Metadata-Version: 2.1\nName: jupyterhub\nVersion: 6.1.1\n")
    seen = printed("import importlib.metadata as m; print(m.version('jupyterhub'))")
    for fact, wanted in [
        (python_env.installed_fact(str(venv)), {"jupyterhub": seen}),
        (python_env.package_fact(str(venv)), (purelib, "")),
    ]:
        done = subprocess.run(["bash", "-c", fact.command], capture_output=True, text=True, timeout=120)
        assert parsed(fact, done.stdout, done.returncode) == wanted


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


def test_pythons_fact_runs_only_what_its_name_does_not_tell(tmp_path):
    """python3.X by its name; python3 resolved (to python3.X), or else asked."""
    bin_dir, base = tmp_path / "bin", tmp_path / "base"
    bin_dir.mkdir()
    base.mkdir()
    for name in ("python3.12", "python3.10"):
        (base / name).write_text("#!/bin/sh\nexit 1\n")  # started, it would fail
        (base / name).chmod(0o755)
        (bin_dir / name).symlink_to(base / name)
    (bin_dir / "python3").symlink_to(base / "python3.12")
    (bin_dir / "readlink").symlink_to(shutil.which("readlink"))
    shell = [shutil.which("bash"), "-c", python_env.PYTHONS.command]
    out = subprocess.run(shell, capture_output=True, text=True, env={"PATH": str(bin_dir)}).stdout
    assert parsed(python_env.PYTHONS, out) == {"python3": (3, 12), "python3.12": (3, 12), "python3.10": (3, 10)}
    (bin_dir / "python3").unlink()
    (bin_dir / "python3").write_text("#!/bin/sh\necho 3.9\n")  # a name that tells nothing
    (bin_dir / "python3").chmod(0o755)
    out = subprocess.run(shell, capture_output=True, text=True, env={"PATH": str(bin_dir)}).stdout
    assert parsed(python_env.PYTHONS, out)["python3"] == (3, 9)


def test_venv_facts_quote_the_folder():
    fact = python_env.installed_fact("/opt/jupyter hub")
    assert fact.key == "venv:/opt/jupyter hub"
    assert fact.command.startswith("py=$(readlink -f '/opt/jupyter hub'/bin/python) && ")


# --- certs ---------------------------------------------------------------------------

CERT, KEY = "/srv/jupyterhub/ssl/hub.crt", "/srv/jupyterhub/ssl/hub.key"


@pytest.mark.parametrize(
    "name, san",
    [("hub.example.com", "DNS:hub.example.com"), ("10.0.0.5", "IP:10.0.0.5"), ("2001:db8::1", "IP:2001:db8::1")],
)
def test_subject_alt_name(name, san):
    assert certs.subject_alt_name(name) == san


@pytest.mark.parametrize(
    "answer, name, remake",
    [
        (cert_info("DNS:hub.example.com"), "hub.example.com", False),
        (cert_info("IP Address:10.0.0.5"), "10.0.0.5", False),
        (cert_info("DNS:a.example.com, DNS:hub.example.com"), "hub.example.com", False),
        (cert_info("DNS:old.example.com"), "hub.example.com", True),  # renamed
        (cert_info("DNS:hub.example.com", lasts=False), "hub.example.com", True),  # expiring
        ((1, ""), "hub.example.com", True),  # missing
        (cert_info(), "hub.example.com", True),  # no SAN at all
        (cert_info("IP Address:10.0.0.5"), "10.0.0.6", True),
    ],
)
def test_cert_commands(answer, name, remake):
    command = certs.cert_commands(certs.certificate(Answer(*answer)), name, CERT, KEY)
    if not remake:
        assert command == ""
        return
    assert command.startswith("umask 077; openssl req -x509 -nodes -newkey rsa:2048 -days 365 ")
    assert f"-subj /CN={name} " in command
    assert f"-addext subjectAltName={certs.subject_alt_name(name)} " in command
    assert command.endswith(f"chmod 600 {KEY} && chmod 644 {CERT}")


@pytest.mark.parametrize(
    "answer, names, valid",
    [
        (cert_info("DNS:hub.example.com, DNS:example.com"), {"DNS:hub.example.com", "DNS:example.com"}, True),
        (
            cert_info("IP Address:2001:DB8:0:0:0:0:0:1, IP Address:10.0.0.5"),
            {"IP:2001:db8::1", "IP:10.0.0.5"},
            True,
        ),
        (cert_info("DNS:hub.example.com", lasts=False), {"DNS:hub.example.com"}, False),  # expiring
        (cert_info(), set(), True),  # no SAN at all
        ((1, ""), set(), False),  # missing
    ],
)
def test_sans(answer, names, valid):
    assert certs.certificate(Answer(*answer)) == certs.Certificate(frozenset(names), valid)


def test_cert_commands_ipv6_is_idempotent():
    # This is what OpenSSL 3 prints for subjectAltName=IP:2001:db8::1 (see the next test).
    answer = Answer(*cert_info("IP Address:2001:DB8:0:0:0:0:0:1"))
    assert certs.cert_commands(certs.certificate(answer), "2001:db8::1", CERT, KEY) == ""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
@pytest.mark.parametrize("name", ["hub.example.com", "10.0.0.5"])
def test_cert_round_trip_with_real_openssl(tmp_path, name):
    """The command makes a cert the probe then finds fine: no remake on the next run."""
    cert, key = str(tmp_path / "hub.crt"), str(tmp_path / "hub.key")
    fact = certs.cert_fact(cert)

    def probe():
        done = subprocess.run(["bash", "-c", fact.command], capture_output=True, text=True, timeout=120)
        return parsed(fact, done.stdout, done.returncode)

    assert probe() == certs.Certificate(frozenset(), False)
    command = certs.cert_commands(probe(), name, cert, key)
    subprocess.run(["bash", "-c", command], check=True, timeout=120)
    assert oct((tmp_path / "hub.key").stat().st_mode & 0o777) == "0o600"
    current = probe()
    assert current == certs.Certificate(frozenset({certs.subject_alt_name(name)}), True)
    assert certs.cert_commands(current, name, cert, key) == ""
    assert certs.cert_commands(current, "other.example.com", cert, key)
    # One that expires within 30 days: its names still read, and remade.
    subprocess.run(["bash", "-c", command.replace(f"-days {certs.CERT_DAYS}", "-days 7")], check=True, timeout=120)
    assert probe() == certs.Certificate(frozenset({certs.subject_alt_name(name)}), False)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_a_certificate_for_users_servers_names_too_with_real_openssl(tmp_path):
    """With users' servers on names of their own, the one certificate holds the hub's name and
    every name under it; one for the hub's name alone is remade."""
    cert, key = str(tmp_path / "hub.crt"), str(tmp_path / "hub.key")
    fact = certs.cert_fact(cert)

    def probe():
        done = subprocess.run(["bash", "-c", fact.command], capture_output=True, text=True, timeout=120)
        return parsed(fact, done.stdout, done.returncode)

    subprocess.run(["bash", "-c", certs.cert_commands(probe(), "hub.example.com", cert, key)], check=True, timeout=120)
    assert certs.cert_commands(probe(), "hub.example.com", cert, key, subdomains=True)
    command = certs.cert_commands(probe(), "hub.example.com", cert, key, subdomains=True)
    subprocess.run(["bash", "-c", command], check=True, timeout=120)
    assert probe().names == {"DNS:hub.example.com", "DNS:*.hub.example.com"}
    assert certs.cert_commands(probe(), "hub.example.com", cert, key, subdomains=True) == ""


# --- swarm ---------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["curl", "docker"])
def test_swarm_state_fact_in_real_bash(tmp_path, tool):
    """From Docker's socket with curl; where there is no curl, from the docker command."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    answers = {
        "curl": '[ "$*" = "-sf --unix-socket /var/run/docker.sock http://localhost/info" ]',
        "docker": '[ "$*" = "info --format {{json .}}" ]',
    }
    body = f"{answers[tool]} && printf '%s' '{swarm_info('active', True, 'n1')}'"
    (stubs / tool).write_text(f"#!/bin/sh\n{body}\n")
    (stubs / tool).chmod(0o755)
    bash = shutil.which("bash")
    done = subprocess.run(
        [bash, "-c", swarm.SWARM_STATE.command], capture_output=True, text=True, env={"PATH": str(stubs)}
    )
    assert parsed(swarm.SWARM_STATE, done.stdout, done.returncode) == ("active", True, "n1")


@pytest.mark.parametrize(
    "text, command",
    [
        (swarm_info(), "docker swarm init --advertise-addr 10.0.0.5 >/dev/null"),
        ("", "docker swarm init --advertise-addr 10.0.0.5 >/dev/null"),
        (swarm_info("active", True, "abc"), ""),
    ],
)
def test_init_command(text, command):
    assert swarm.init_command(parsed(swarm.SWARM_STATE, text), "10.0.0.5", "hub") == command


@pytest.mark.parametrize(
    "text, words",
    [
        (swarm_info("active", False, "abc"), ["hub is a worker in another swarm", "docker swarm leave"]),
        (swarm_info("pending"), ["hub swarm state is 'pending'", "docker swarm leave --force", "never resets"]),
        (swarm_info("error"), ["'error'", "docker info"]),
        (swarm_info("locked"), ["'locked'"]),
    ],
)
def test_init_command_refuses(text, words):
    with pytest.raises(HubswarmError) as err:
        swarm.init_command(parsed(swarm.SWARM_STATE, text), "10.0.0.5", "hub")
    for word in words:
        assert word in str(err.value)


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
        (unit_info("enabled", "active"), "abc\nabc", "", ""),
        (
            unit_info("enabled", "active"),
            "abc\nold",
            "restart jupyterhub (its inputs changed)",
            f"{RECORD} && systemctl restart jupyterhub",
        ),
        (
            unit_info("enabled", "active"),
            "abc",
            "restart jupyterhub (its inputs changed)",
            f"{RECORD} && systemctl restart jupyterhub",
        ),
        (unit_info("enabled", "inactive"), "abc\nabc", "start jupyterhub", f"{RECORD} && systemctl start jupyterhub"),
        (unit_info("disabled", "failed"), "abc\nold", "start jupyterhub", f"{RECORD} && systemctl start jupyterhub"),
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
        "/srv/h/hubswarm.json",
        "/srv/h/env",
        "/srv/h/userlist",
        "/srv/h/proxy.env",
        hub.UNIT,
    ]
    sources = hub.sources(hub_config(srv="/srv/h"))
    assert "/opt/jupyterhub/lib/python3*/site-packages/hubswarm_hub/*.py " in sources  # the hub-side package
    assert " /srv/h/jupyterhub_config.d/*.py;" in sources  # the operator's own settings
    assert sources.endswith("; ls -d /opt/jupyterhub/lib/python3*/site-packages/*.dist-info")  # every pinned version


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


def test_a_unit_runs_when_active_only():
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


PACKAGE_JSON = """{
  "version": "5.3.0",
  "name": "configurable-http-proxy",
  "dependencies": {
    "commander": "~14"
  },
  "nested": {
    "version": "0.0.1"
  }
}
"""


def test_proxy_inputs_read_the_version_its_cli_prints(tmp_path, monkeypatch):
    """The proxy's restart fingerprint reads its version from package.json, byte for byte
    what `configurable-http-proxy --version` prints: a hub stamped by the CLI is not
    restarted for a new way of reading the same version."""
    package = tmp_path / "lib" / "node_modules" / "configurable-http-proxy"
    (package / "bin").mkdir(parents=True)
    (package / "package.json").write_text(PACKAGE_JSON)
    cli = package / "bin" / "configurable-http-proxy"
    cli.write_text('#!/bin/sh\n[ "$1" = --version ] && echo 5.3.0\n')
    cli.chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "configurable-http-proxy").symlink_to(cli)
    unit, token = tmp_path / "unit", tmp_path / "proxy.env"
    unit.write_text("[Service]\n")
    token.write_text("CONFIGPROXY_AUTH_TOKEN=t\n")
    monkeypatch.setattr(proxy, "PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setattr(proxy, "UNIT", str(unit))
    by_cli = f"cat {unit} {token}; PATH={proxy.PATH} configurable-http-proxy --version"
    printed = [
        subprocess.run(["bash", "-c", s], capture_output=True, text=True).stdout
        for s in (by_cli, proxy.sources(hub_config(srv=str(tmp_path))))
    ]
    assert printed[0] == printed[1] == "[Service]\nCONFIGPROXY_AUTH_TOKEN=t\n5.3.0\n"
