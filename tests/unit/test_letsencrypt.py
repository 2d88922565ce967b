"""letsencrypt: settings checked locally (HTTP-01, DNS-01 or a refusal), DNS checked on the hub,
certbot's command, the renewal units, the step on a fake hub."""

import hashlib
import shlex

import pytest

from fakehost import cert_info, hub_config, parsed, unit_info, venv_info
from tasks import pins
from tasks.core import HubswarmError
from tasks.hub import aws_env, letsencrypt
from tasks.hub.certs import CERTBOT, CERTBOT_VENV


def test_request_needs_a_domain():
    with pytest.raises(HubswarmError, match="set HUBSWARM_DOMAIN"):
        letsencrypt.checked_request(hub_config(domain=""))


def test_request_lists_every_name_once(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    config = hub_config(
        letsencrypt_domains="www.example.com, hub.example.com",
        static_domain="example.com",
        acme_ca_bundle=str(ca),
        single_origin=True,
    )
    assert letsencrypt.checked_request(config) == (["hub.example.com", "www.example.com", "example.com"], "CA")


def test_request_with_a_missing_ca_file():
    with pytest.raises(HubswarmError, match="HUBSWARM_ACME_CA_BUNDLE: /nope not found"):
        letsencrypt.checked_request(hub_config(acme_ca_bundle="/nope", single_origin=True))


@pytest.mark.parametrize(
    "single_origin, zone, challenge, domains, refused",
    [
        (True, "", "http-01", ["hub.example.com"], ""),
        (True, "example.com", "http-01", ["hub.example.com"], ""),  # one origin: no wildcard to prove
        (False, "example.com", "dns-01", ["hub.example.com", "*.hub.example.com"], ""),
        (False, "Z0123456789", "dns-01", ["hub.example.com", "*.hub.example.com"], ""),
        (False, "", None, None, "certifies only through DNS: set HUBSWARM_ROUTE53_ZONE"),
    ],
)
def test_http_01_for_one_origin_dns_01_for_subdomains_with_a_zone_else_refused(
    single_origin, zone, challenge, domains, refused
):
    config = hub_config(single_origin=single_origin, route53_zone=zone)
    if refused:
        with pytest.raises(HubswarmError, match=refused) as caught:
            letsencrypt.checked_request(config)
        assert "\n" not in str(caught.value)
        return
    assert letsencrypt.challenge(config) == challenge
    assert letsencrypt.checked_request(config) == (domains, "")


def test_dns_01_certifies_the_other_names_too():
    config = hub_config(route53_zone="example.com", letsencrypt_domains="www.example.com", static_domain="example.com")
    assert letsencrypt.checked_request(config)[0] == [
        "hub.example.com",
        "*.hub.example.com",
        "www.example.com",
        "example.com",
    ]


@pytest.mark.parametrize(
    "answer, fine",
    [
        (cert_info("DNS:hub.example.com, DNS:example.com"), True),
        (cert_info("DNS:hub.example.com"), False),  # a name is missing: expand
        (cert_info("DNS:hub.example.com, DNS:example.com", lasts=False), False),  # expiring
        ((1, ""), False),  # absent
    ],
)
def test_certificate_is_fine(answer, fine):
    rc, out = answer
    current = parsed(letsencrypt.cert_fact("fullchain.pem"), out, rc)
    assert letsencrypt.certificate_is_fine(current, ["hub.example.com", "example.com"]) is fine


def test_certbot_command_uses_the_webroot_and_reload_hook():
    config = hub_config(letsencrypt_email="ops@example.com", acme_server="https://acme.test/dir", single_origin=True)
    command = letsencrypt.certbot_command(config, ["hub.example.com", "example.com"], "/srv/jupyterhub/acme-ca.pem")
    assert command.startswith(f"REQUESTS_CA_BUNDLE=/srv/jupyterhub/acme-ca.pem {CERTBOT} certonly --webroot -w ")
    for part in (
        "--cert-name hub.example.com",
        "-d hub.example.com -d example.com",
        "--email ops@example.com",
        "--server https://acme.test/dir",
        "--deploy-hook 'systemctl reload nginx'",
        "--non-interactive",
    ):
        assert part in command
    anonymous = letsencrypt.certbot_command(hub_config(single_origin=True), ["hub.example.com"], "")
    assert "--register-unsafely-without-email" in anonymous and "REQUESTS_CA_BUNDLE" not in anonymous


HOSTILE = "x'; touch /tmp/owned; echo '"


@pytest.mark.parametrize(
    "single_origin, ca_file, words",
    [
        (True, "", ["--webroot", "-w", "/var/lib/hubswarm/acme"]),
        (False, "", ["--dns-route53"]),
        (False, "/srv/jupyterhub/acme-ca.pem", ["--dns-route53"]),
    ],
)
def test_certbot_command_quotes_every_value_and_holds_no_secret(single_origin, ca_file, words):
    config = hub_config(
        single_origin=single_origin, route53_zone="example.com", letsencrypt_email=HOSTILE, acme_server=HOSTILE
    )
    domains = ["hub.example.com", "*.hub.example.com", HOSTILE]
    command = letsencrypt.certbot_command(config, domains, ca_file)
    # The region and endpoints from aws.env, exported, for DNS-01 only; then certbot, one command.
    prefix = f"set -a && . {aws_env.AWS_ENV} && set +a && "
    assert command.startswith(prefix) is (not single_origin)
    argv = shlex.split(command.removeprefix(prefix))
    if ca_file:
        assert argv.pop(0) == f"REQUESTS_CA_BUNDLE={ca_file}"
    assert argv[:2] == [CERTBOT, "certonly"]
    assert argv[2 : 2 + len(words)] == words
    assert ["-d", "*.hub.example.com"] == argv[
        argv.index("*.hub.example.com") - 1 : argv.index("*.hub.example.com") + 1
    ]
    assert sorted(argv[i - 1] for i, word in enumerate(argv) if word == HOSTILE) == ["--email", "--server", "-d"]
    assert argv.count(HOSTILE) == 3 and argv[argv.index("--cert-name") + 1] == "hub.example.com"
    assert "--deploy-hook" in argv and argv[argv.index("--deploy-hook") + 1] == "systemctl reload nginx"
    # Credentials: the instance role's, found by boto3 itself; none on the line.
    assert not any(secret in command for secret in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))


def test_the_renewal_runs_the_venvs_certbot_with_the_hubs_aws_environment():
    files = letsencrypt.renewal_files()
    service = files[f"/etc/systemd/system/{letsencrypt.RENEW_SERVICE}"][0]
    timer = files[f"/etc/systemd/system/{letsencrypt.RENEW_TIMER}"][0]
    assert f"EnvironmentFile=-{aws_env.AWS_ENV}\n" in service
    assert f"ExecStart={CERTBOT} renew -q\n" in service
    assert "Type=oneshot" in service and "AWS_ACCESS_KEY" not in service and "AWS_SECRET" not in service
    assert "OnCalendar=*-*-* 00,12:00:00" in timer and "Persistent=true" in timer
    assert "WantedBy=timers.target" in timer
    assert all(mode == "644" for _, mode in files.values())


# --- the step on a fake hub (nginx's own step is tested in its own files) ---------------------

FULLCHAIN = "/etc/letsencrypt/live/hub.example.com/fullchain.pem"
DNS_01 = {"route53_zone": "example.com", "single_origin": False}
DOMAINS = ["hub.example.com", "*.hub.example.com"]


def file_answer(text, mode="644"):
    return f"{hashlib.sha256(text.encode()).hexdigest()} {mode} root root"


def converged_hub(**more):
    """A Debian hub on which letsencrypt (DNS-01) has run: the wildcard certificate, the venv at
    its pins, the renewal timer on, aws.env written, the distribution's timer off."""
    config = hub_config(**DNS_01)
    answers = {
        "os-release": "ID=debian\nVERSION_ID=12\n",
        f"cert:{FULLCHAIN}": cert_info("DNS:hub.example.com, DNS:*.hub.example.com"),
        f"venv:{CERTBOT_VENV}": venv_info(pins.CERTBOT_REQUIREMENTS, f"{CERTBOT_VENV}/lib/python3.11/site-packages"),
        "pythons": "python3 3 11\n",
        f"unit:{letsencrypt.RENEW_TIMER}": unit_info("enabled", "active"),
        "unit:certbot.timer": unit_info("disabled", "inactive"),
        f"dir:{aws_env.CONFIG_DIR}": "700 root root",
        f"file:{aws_env.AWS_ENV}": file_answer(aws_env.aws_env_text(config)),
        **{f"file:{path}": file_answer(text) for path, (text, _) in letsencrypt.renewal_files().items()},
    }
    answers.update(more)
    return answers


@pytest.fixture
def run_step(make_host, monkeypatch):
    """``run_step(answers, check=False)`` -> the change scripts the step ran (nginx's step left out)."""
    monkeypatch.setattr(letsencrypt.nginx, "nginx", lambda host: None)

    def run(answers, check=False):
        host, runner = make_host(answers, check=check, **DNS_01)
        letsencrypt.letsencrypt(host, (DOMAINS, ""))
        return host, runner.commands

    return run


def test_a_wildcard_certificate_that_lasts_is_left_alone(run_step):
    host, commands = run_step(converged_hub())
    assert commands == []
    assert not host.record.changes


def test_a_certificate_without_the_wildcard_is_got_again_by_dns_01(run_step):
    _, commands = run_step(converged_hub(**{f"cert:{FULLCHAIN}": cert_info("DNS:hub.example.com")}))
    [certbot] = commands
    assert "--dns-route53" in certbot and "-d '*.hub.example.com'" in certbot and "--webroot" not in certbot
    assert certbot.startswith(f"set -a && . {aws_env.AWS_ENV} && set +a && ")


def test_a_pristine_hub_gets_the_venv_the_certificate_and_the_timer(run_step):
    answers = {"os-release": "ID=debian\nVERSION_ID=12\n", "pythons": "python3 3 11\n"}
    _, commands = run_step(answers)
    venv = next(c for c in commands if f"-m venv {CERTBOT_VENV}" in c)
    for name, version in pins.CERTBOT_REQUIREMENTS.items():
        assert f"{name}=={version}" in venv
    certbot = next(c for c in commands if "certonly" in c)
    assert commands.index(venv) < commands.index(certbot)
    assert any(f"systemctl enable {letsencrypt.RENEW_TIMER}" in c for c in commands)
    assert not any("certbot.timer" in c for c in commands)  # not there: nothing to stop


def test_the_distributions_timer_is_stopped_one_renewal_only(run_step):
    _, commands = run_step(converged_hub(**{"unit:certbot.timer": unit_info("enabled", "active")}))
    assert commands == ["systemctl disable --now certbot.timer"]


def test_check_mode_predicts_and_changes_nothing(run_step):
    host, commands = run_step(converged_hub(**{f"cert:{FULLCHAIN}": cert_info("DNS:hub.example.com")}), check=True)
    assert commands == []
    assert any("through Route53 (DNS-01)" in change for change in host.record.changes)
