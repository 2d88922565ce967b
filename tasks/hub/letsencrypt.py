"""Certificates from Let's Encrypt (or any ACME server) for the hub: by HTTP-01 through nginx, or,
for users' servers on names of their own, by DNS-01 through Route53 (the wildcard).

One origin (HUBSWARM_SINGLE_ORIGIN=1): nginx keeps running and already answers
/.well-known/acme-challenge/ on port 80 from a webroot, so certbot only writes the challenge
file there. Users' servers on subdomains need ``*.<domain>``, which Let's Encrypt certifies only
through DNS: with HUBSWARM_ROUTE53_ZONE, certbot's dns-route53 plugin writes the challenge's TXT
record in that zone with the hub's instance role's credentials (``fab hub-role``: a policy that may
change only those records), and its AWS clients' region and endpoints come from
/etc/hubswarm/aws.env; without a zone the run stops in one line.

certbot and its plugin live in a venv of their own at pinned versions (the distributions' botocore
is too old for boto3's endpoint variables). Renewal is hubswarm's timer running that certbot with
/etc/hubswarm/aws.env's environment; the deploy hook certbot keeps reloads nginx. A distribution's
certbot timer a former run enabled is stopped: one renewal only.
"""

import shlex
from pathlib import Path

from .. import pins
from ..core import HubswarmError, facts, render, step
from ..core.services import UNIT_DIR, ensure_installed, stop_service
from ..node.packages import APT, DNF, ensure_packages, family_of
from . import nginx
from .aws_env import AWS_ENV, aws_env
from .certs import CERTBOT, CERTBOT_VENV, cert_fact, letsencrypt_files, letsencrypt_names
from .python_env import PYTHONS, command_word, host_python, installed_fact, venv_commands
from .records import dns_problem, hub_addresses, resolve_fact

RENEW_SERVICE = "hubswarm-certbot-renew.service"
RENEW_TIMER = "hubswarm-certbot-renew.timer"
# The distributions' own certbot timers (their certbot package, which hubswarm once installed).
DISTRO_TIMERS = {APT: "certbot.timer", DNF: "certbot-renew.timer"}
HTTP01, DNS01 = "http-01", "dns-01"


def challenge(config):
    """How the ACME server checks the names: HTTP-01 for one origin, else DNS-01 (the wildcard)."""
    return HTTP01 if config.single_origin else DNS01


def checked_request(config):
    """(domains, CA text or "") for the certificate; one-line errors on bad settings. With users'
    servers on subdomains, ``*.<domain>`` comes second."""
    domains = letsencrypt_names(config)
    if not domains:
        raise HubswarmError("no domain to certify: set HUBSWARM_DOMAIN to the hub's DNS name")
    if challenge(config) == DNS01 and not config.route53_zone:
        raise HubswarmError(
            f"users' servers answer on names under {config.domain}, which Let's Encrypt certifies only "
            "through DNS: set HUBSWARM_ROUTE53_ZONE to the Route53 zone that holds them (README: Security)"
        )
    ca = ""
    if config.acme_ca_bundle:
        path = Path(config.acme_ca_bundle)
        if not path.is_file():
            raise HubswarmError(f"HUBSWARM_ACME_CA_BUNDLE: {path} not found: point it at the ACME server's CA file")
        ca = path.read_text()
    return domains, ca


def certificate_is_fine(current, domains):
    """Whether the :class:`~tasks.hub.certs.Certificate` lasts and names every domain."""
    return current.lasts and all(f"DNS:{d}" in current.names for d in domains)


def certbot_command(config, domains, ca_file, certbot=CERTBOT):
    """certonly for ``domains``, by the :func:`challenge` the settings ask for. DNS-01 runs with
    /etc/hubswarm/aws.env's variables (region, endpoints); the credentials are the instance
    role's, which boto3 finds itself: none is ever on a command line or in a file."""
    contact = (
        f"--email {shlex.quote(config.letsencrypt_email)}"
        if config.letsencrypt_email
        else "--register-unsafely-without-email"
    )
    names = " ".join(f"-d {shlex.quote(d)}" for d in domains)
    trust = f"REQUESTS_CA_BUNDLE={shlex.quote(ca_file)} " if ca_file else ""
    if challenge(config) == DNS01:
        environment, how = f"set -a && . {shlex.quote(AWS_ENV)} && set +a && ", "--dns-route53"
    else:
        environment, how = "", f"--webroot -w {shlex.quote(nginx.ACME_ROOT)}"
    return (
        f"{environment}{trust}{command_word(certbot)} certonly {how} --cert-name {shlex.quote(domains[0])} "
        f"{names} --non-interactive --agree-tos {contact} --server {shlex.quote(config.acme_server)} "
        "--keep-until-expiring --expand --deploy-hook 'systemctl reload nginx' -q"
    )


def renewal_files():
    """{path: (text, mode)} of hubswarm's renewal timer and the service it starts."""
    values = {"certbot": CERTBOT, "aws_env": AWS_ENV}
    return {f"{UNIT_DIR}/{unit}": (render(f"{unit}.j2", **values), "644") for unit in (RENEW_SERVICE, RENEW_TIMER)}


def letsencrypt_probes(host):
    domain = host.config.domain
    return [
        facts.os_release(),
        *((cert_fact(letsencrypt_files(domain)[0]),) if domain else ()),
        installed_fact(CERTBOT_VENV, pins.CERTBOT_REQUIREMENTS),
        PYTHONS,
        *(facts.file_state(path) for path in renewal_files()),
        facts.systemd_unit(RENEW_TIMER),
        *(facts.systemd_unit(timer) for timer in DISTRO_TIMERS.values()),
    ]


def ensure_certbot(host):
    """certbot and its Route53 plugin at their pins, in their own venv."""
    python, needed = host_python(host)
    command = venv_commands(
        CERTBOT_VENV,
        host.fact(installed_fact(CERTBOT_VENV, pins.CERTBOT_REQUIREMENTS)),
        python,
        pins.CERTBOT_REQUIREMENTS,
    )
    if command and needed:
        ensure_packages(host, {family_of(host): needed})
    host.ensure(
        f"install virtualenv {CERTBOT_VENV} with "
        + ", ".join(f"{n} {v}" for n, v in sorted(pins.CERTBOT_REQUIREMENTS.items())),
        command,
    )


def ensure_renewal(host):
    """hubswarm's renewal timer on, the distribution's certbot timer off."""
    # A timer takes a changed schedule at its restart.
    ensure_installed(host, RENEW_TIMER, renewal_files(), restart_on=[f"{UNIT_DIR}/{RENEW_TIMER}"])
    stop_service(host, DISTRO_TIMERS[family_of(host)])


@step("letsencrypt", needs=checked_request, probes=letsencrypt_probes)
def letsencrypt(host, request):
    """Get a certificate for the domain(s) from Let's Encrypt (one origin: HTTP-01 through the running nginx; users' servers on subdomains: the domain and its wildcard by DNS-01 in HUBSWARM_ROUTE53_ZONE), switch nginx to it, renew by timer."""
    domains, ca = request
    config = host.config
    by_dns = challenge(config) == DNS01
    fullchain, _ = letsencrypt_files(domains[0])
    due = not certificate_is_fine(host.fact(cert_fact(fullchain)), domains)
    if due and not by_dns:
        addresses = hub_addresses(host)
        for domain in domains:
            problem = dns_problem(domain, host.fact(resolve_fact(domain)), addresses)
            if problem:
                raise HubswarmError(problem)
    ensure_certbot(host)
    if by_dns:
        aws_env(host)
    if due:
        ca_file = f"{config.srv}/acme-ca.pem" if ca else ""
        if ca:
            host.ensure_file(ca_file, ca)
        how = "through Route53 (DNS-01)" if by_dns else "through nginx (HTTP-01)"
        try:
            host.ensure(
                f"get a certificate for {', '.join(domains)} from {config.acme_server} {how}",
                certbot_command(config, domains, ca_file),
            )
        except HubswarmError as exc:
            raise HubswarmError(f"{exc} (details: /var/log/letsencrypt/letsencrypt.log on {host.name})") from None
        # What a check before the request read of the certificate (none there yet) is past.
        host.forget(nginx.letsencrypt_fact(domains[0]), cert_fact(fullchain))
    ensure_renewal(host)
    nginx.nginx(host)
