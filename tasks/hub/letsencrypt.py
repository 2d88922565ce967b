"""Certificates from Let's Encrypt (or any ACME server) for the hub, by HTTP-01 through nginx.

nginx keeps running: it already answers /.well-known/acme-challenge/ on port
80 from a webroot, so certbot only writes the challenge file there. Renewal is
certbot's own timer; a deploy hook reloads nginx.
"""

import shlex
from pathlib import Path

from ..core import HubswarmError, step
from ..core.services import ensure_service
from ..node.packages import APT, DNF, ensure_packages, family_of
from . import nginx
from .certs import cert_fact, letsencrypt_files
from .records import dns_problem, hub_addresses, resolve_fact

CERTBOT_PACKAGES = {APT: ["certbot"], DNF: ["certbot"]}
RENEW_TIMER = {APT: "certbot.timer", DNF: "certbot-renew.timer"}


def checked_request(config):
    """(domains, CA text or "") for the certificate; one-line errors on bad settings."""
    domains = [config.domain] if config.domain else []
    domains += [d.strip() for d in config.letsencrypt_domains.split(",") if d.strip()]
    if config.static_domain:
        domains.append(config.static_domain)
    if not domains:
        raise HubswarmError("no domain to certify: set HUBSWARM_DOMAIN to the hub's DNS name")
    if not config.single_origin:
        raise HubswarmError(
            f"users' servers answer on names under {config.domain}, which Let's Encrypt certifies only "
            "through DNS (not asked for by hubswarm): keep the self-signed certificate, "
            "or set HUBSWARM_SINGLE_ORIGIN=1"
        )
    ca = ""
    if config.acme_ca_bundle:
        path = Path(config.acme_ca_bundle)
        if not path.is_file():
            raise HubswarmError(f"HUBSWARM_ACME_CA_BUNDLE: {path} not found: point it at the ACME server's CA file")
        ca = path.read_text()
    return list(dict.fromkeys(domains)), ca


def certificate_is_fine(current, domains):
    """Whether the :class:`~tasks.hub.certs.Certificate` lasts and names every domain."""
    return current.lasts and all(f"DNS:{d}" in current.names for d in domains)


def certbot_command(config, domains, ca_file):
    contact = (
        f"--email {shlex.quote(config.letsencrypt_email)}"
        if config.letsencrypt_email
        else "--register-unsafely-without-email"
    )
    names = " ".join(f"-d {shlex.quote(d)}" for d in domains)
    trust = f"REQUESTS_CA_BUNDLE={shlex.quote(ca_file)} " if ca_file else ""
    return (
        f"{trust}certbot certonly --webroot -w {shlex.quote(nginx.ACME_ROOT)} --cert-name {shlex.quote(domains[0])} "
        f"{names} --non-interactive --agree-tos {contact} --server {shlex.quote(config.acme_server)} "
        "--keep-until-expiring --expand --deploy-hook 'systemctl reload nginx' -q"
    )


@step("letsencrypt", needs=checked_request)
def letsencrypt(host, request):
    """Get a certificate for the domain(s) from Let's Encrypt through the running nginx, switch nginx to it, renew by timer."""
    domains, ca = request
    config = host.config
    fullchain, _ = letsencrypt_files(domains[0])
    if certificate_is_fine(host.fact(cert_fact(fullchain)), domains):
        return
    addresses = hub_addresses(host)
    for domain in domains:
        problem = dns_problem(domain, host.fact(resolve_fact(domain)), addresses)
        if problem:
            raise HubswarmError(problem)
    family = family_of(host)
    ensure_packages(host, CERTBOT_PACKAGES)
    ca_file = f"{config.srv}/acme-ca.pem" if ca else ""
    if ca:
        host.ensure_file(ca_file, ca)
    try:
        host.ensure(
            f"get a certificate for {', '.join(domains)} from {config.acme_server}",
            certbot_command(config, domains, ca_file),
        )
    except HubswarmError as exc:
        raise HubswarmError(f"{exc} (details: /var/log/letsencrypt/letsencrypt.log on {host.name})") from None
    ensure_service(host, RENEW_TIMER[family])
    nginx.nginx(host)
