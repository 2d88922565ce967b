"""The hub's TLS files: a self-signed certificate, renewed when near expiry or for another
name, and where Let's Encrypt's live; the one reading of a certificate probe."""

import ipaddress
import shlex
from dataclasses import dataclass

from ..core import HubswarmError, facts, step
from ..core.names import dns_problem

CERT_DAYS = 365
RENEW_WITHIN_SECONDS = 30 * 24 * 3600
LETSENCRYPT_LIVE = "/etc/letsencrypt/live"
# certbot and its Route53 plugin, in a venv of their own (fab letsencrypt).
CERTBOT_VENV = "/opt/hubswarm-certbot"
CERTBOT = f"{CERTBOT_VENV}/bin/certbot"


def subject_alt_name(name):
    return f"IP:{name}" if is_address(name) else f"DNS:{name}"


def normal_san(entry):
    """``IP Address:2001:DB8:0:0:0:0:0:1`` (as openssl prints it) -> ``IP:2001:db8::1``."""
    kind, _, value = entry.strip().replace("IP Address:", "IP:").partition(":")
    if kind == "IP":
        value = str(ipaddress.ip_address(value))
    return f"{kind}:{value}"


@dataclass(frozen=True)
class Certificate:
    """A certificate on a host: its subjectAltName entries, normalised (``DNS:x``,
    ``IP:y``; none when there is no certificate), and whether it lasts 30 more days."""

    names: frozenset
    lasts: bool


def certificate(answer):
    """The :class:`Certificate` of a :func:`cert_fact` answer: openssl prints the
    subjectAltName extension's entries indented, and exits 0 when the certificate
    is there and lasts."""
    entries = ",".join(line for line in answer.out.splitlines() if line[:1].isspace())
    return Certificate(frozenset(normal_san(s) for s in entries.split(",") if ":" in s), answer.ok)


def cert_fact(cert):
    """The :class:`Certificate` at path ``cert``, in one openssl run."""
    return facts.Fact(
        f"cert:{cert}",
        f"openssl x509 -in {shlex.quote(cert)} -noout -ext subjectAltName -checkend {RENEW_WITHIN_SECONDS}",
        parse=certificate,
    )


def cert_commands(current, name, cert, key, subdomains=False):
    """The openssl command that (re)makes the pair for ``name`` (and, with ``subdomains``, every
    name under it), or "" when the ``current`` :class:`Certificate` is fine."""
    sans = [subject_alt_name(name), *([f"DNS:*.{name}"] if subdomains else [])]
    if current.lasts and set(sans) <= current.names:
        return ""
    return (
        f"umask 077; openssl req -x509 -nodes -newkey rsa:2048 -days {CERT_DAYS} "
        f"-subj {shlex.quote('/CN=' + name)} -addext {shlex.quote('subjectAltName=' + ','.join(sans))} "
        f"-keyout {shlex.quote(key)} -out {shlex.quote(cert)} 2>/dev/null && "
        f"chmod 600 {shlex.quote(key)} && chmod 644 {shlex.quote(cert)}"
    )


PUBLIC_HOSTNAME = facts.instance_metadata("public-hostname")


def public_name_probes(host):
    """The facts :func:`hub_name` reads (none when the domain is set)."""
    return [] if host.config.domain else [PUBLIC_HOSTNAME]


def hub_name(host):
    """The one name users reach the hub by, in the certificate, ``public_url``, the
    OAuth callback and the printed URL: the configured domain, else the instance's
    public host name (EC2 metadata), else the address the hub is reached at."""
    if host.config.domain:
        return host.config.domain
    public = host.fact(PUBLIC_HOSTNAME).lower()
    # A remote answer: it lands in nginx's site and the env file, so it must be a plain name.
    problem = public and dns_problem(public)
    if problem:
        raise HubswarmError(
            f"the instance metadata of {host.name} gives the public host name {public!r}, "
            f"which is not a DNS name ({problem}): set HUBSWARM_DOMAIN"
        )
    return public or host.connection.host


def is_address(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def cert_paths(config):
    return f"{config.srv}/ssl/hub.crt", f"{config.srv}/ssl/hub.key"


def letsencrypt_files(name):
    """(full chain, key) certbot keeps for the certificate named ``name``."""
    return f"{LETSENCRYPT_LIVE}/{name}/fullchain.pem", f"{LETSENCRYPT_LIVE}/{name}/privkey.pem"


def letsencrypt_names(config):
    """The names Let's Encrypt's certificate holds: HUBSWARM_DOMAIN, with users' servers on
    subdomains its wildcard second, then HUBSWARM_LETSENCRYPT_DOMAINS and HUBSWARM_STATIC_DOMAIN;
    each once."""
    names = [config.domain] if config.domain else []
    if config.domain and not config.single_origin:
        names.append(f"*.{config.domain}")
    names += [d.strip() for d in config.letsencrypt_domains.split(",") if d.strip()]
    if config.static_domain:
        names.append(config.static_domain)
    return list(dict.fromkeys(names))


def acme_challenge_name(name):
    """Where DNS-01 proves ``name``: the TXT record ``_acme-challenge.`` of it (of the name under
    a wildcard, for the wildcard)."""
    return f"_acme-challenge.{name.removeprefix('*.')}"


def letsencrypt_chain(name):
    """The issuer chain (without the certificate) certbot keeps for ``name``."""
    return f"{LETSENCRYPT_LIVE}/{name}/chain.pem"


def tls_files(config, letsencrypt_ready):
    """The certificate and key nginx serves: Let's Encrypt's once `letsencrypt` got
    them for the domain, else the self-signed pair."""
    if letsencrypt_ready:
        return letsencrypt_files(config.domain)
    return cert_paths(config)


def cert_probes(host):
    srv = host.config.srv
    return [
        facts.dir_state(srv),
        facts.dir_state(f"{srv}/ssl"),
        cert_fact(cert_paths(host.config)[0]),
        *public_name_probes(host),
    ]


@step("make-cert", probes=cert_probes, preflight=hub_name)
def make_cert(host):
    """Make a self-signed certificate and 0600 key for the hub (and its users' servers' names) when
    missing, expiring or for other names."""
    srv = host.config.srv
    host.ensure_dir(srv, mode="700")
    host.ensure_dir(f"{srv}/ssl", mode="700")
    cert, key = cert_paths(host.config)
    name, subdomains = hub_name(host), not host.config.single_origin
    host.ensure(
        f"make a self-signed certificate for {name}{f' and *.{name}' if subdomains else ''}",
        cert_commands(host.fact(cert_fact(cert)), name, cert, key, subdomains),
    )
