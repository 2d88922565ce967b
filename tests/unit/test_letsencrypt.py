"""letsencrypt: settings checked locally, DNS checked on the hub, certbot's command."""

import pytest

from fakehost import cert_info, hub_config, parsed
from tasks.core import HubswarmError
from tasks.hub import letsencrypt


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


def test_users_servers_names_are_not_certified_over_http():
    with pytest.raises(HubswarmError, match="certifies only through DNS"):
        letsencrypt.checked_request(hub_config())


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
    config = hub_config(letsencrypt_email="ops@example.com", acme_server="https://acme.test/dir")
    command = letsencrypt.certbot_command(config, ["hub.example.com", "example.com"], "/srv/jupyterhub/acme-ca.pem")
    assert command.startswith("REQUESTS_CA_BUNDLE=/srv/jupyterhub/acme-ca.pem certbot certonly --webroot -w ")
    for part in (
        "--cert-name hub.example.com",
        "-d hub.example.com -d example.com",
        "--email ops@example.com",
        "--server https://acme.test/dir",
        "--deploy-hook 'systemctl reload nginx'",
        "--non-interactive",
    ):
        assert part in command
    anonymous = letsencrypt.certbot_command(hub_config(), ["hub.example.com"], "")
    assert "--register-unsafely-without-email" in anonymous and "REQUESTS_CA_BUNDLE" not in anonymous
