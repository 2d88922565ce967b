"""nginx in front of the hub: HTTP to HTTPS, Mozilla's intermediate TLS, HSTS, no version banners, websockets."""

import ipaddress
import shlex
from dataclasses import dataclass

from ..core import HubswarmError, facts, render, step
from ..core.services import ensure_service
from ..node.packages import APT, DNF, family_of
from .certs import CERTBOT, cert_fact, hub_name, letsencrypt_chain, letsencrypt_files, public_name_probes, tls_files

ACME_ROOT = "/var/lib/hubswarm/acme"
# Kept outside certbot's folders, so certbot never touches it.
DHPARAM = "/etc/nginx/hubswarm-dhparam.pem"
# Mozilla's "intermediate" TLS 1.2 suites (guidelines v5.7): forward secret and AEAD only.
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
NAMESERVERS = facts.Fact("nameservers", "awk '$1 == \"nameserver\" {print $2}' /etc/resolv.conf", parse=facts.words)


def site_paths(family):
    """(site file, enabled link or None, distro default site link or None)."""
    if family == APT:
        return (
            "/etc/nginx/sites-available/jupyterhub",
            "/etc/nginx/sites-enabled/jupyterhub",
            "/etc/nginx/sites-enabled/default",
        )
    return "/etc/nginx/conf.d/jupyterhub.conf", None, None


def letsencrypt_fact(name):
    """Whether Let's Encrypt's certificate for ``name`` is there."""
    return facts.Fact(
        f"letsencrypt:{name}", f"test -s {shlex.quote(letsencrypt_files(name)[0])}", parse=facts.succeeded
    )


def ocsp_fact(cert):
    """The OCSP responder URL the certificate at ``cert`` names ("" when none)."""
    return facts.Fact(f"ocsp:{cert}", f"openssl x509 -noout -ocsp_uri -in {shlex.quote(cert)}")


@dataclass(frozen=True)
class Stapling:
    """OCSP stapling: the issuer chain that verifies the responder's answers, and
    the name servers nginx asks for the responder's address."""

    chain: str
    resolvers: tuple


def resolver_address(nameserver):
    """A resolv.conf name server as nginx's ``resolver`` takes it, or "" (not an
    address, or a scoped link-local one nginx cannot use)."""
    try:
        address = ipaddress.ip_address(nameserver)
    except ValueError:
        return ""
    if address.version == 4:
        return str(address)
    return "" if address.scope_id else f"[{address}]"


def stapling(domain, ocsp_uri, nameservers):
    """How nginx staples Let's Encrypt's certificate for ``domain``, or None. Only a
    certificate naming an OCSP responder can be stapled (Let's Encrypt's name none
    since May 2025; without one nginx only warns), and nginx must resolve that name."""
    resolvers = tuple(r for r in map(resolver_address, nameservers) if r)
    if not ocsp_uri or not resolvers:
        return None
    return Stapling(letsencrypt_chain(domain), resolvers)


def render_site(config, server_name, letsencrypt_ready=False, staple=None):
    """The site; ``staple``, a :class:`Stapling`, only for Let's Encrypt's certificate."""
    cert, key = tls_files(config, letsencrypt_ready)
    return render(
        "nginx-jupyterhub.conf.j2",
        # Users' servers answer on names of their own under the hub's.
        server_names=[server_name] if config.single_origin else [server_name, f"*.{server_name}"],
        cert=cert,
        key=key,
        ciphers=CIPHERS,
        staple=staple,
        acme_root=ACME_ROOT,
        dhparam=DHPARAM,
        static_domain=config.static_domain,
        static_root=config.static_root,
    )


def link_commands(link_target, site, link, default_link, default_exists):
    """Commands that enable our site and disable the distro default, or ""."""
    commands = []
    if link and link_target != site:
        commands.append(f"ln -sfn {shlex.quote(site)} {shlex.quote(link)}")
    if default_link and default_exists:
        commands.append(f"rm -f {shlex.quote(default_link)}")
    return " && ".join(commands)


def link_facts(link, default_link):
    return (
        facts.Fact(f"link:{link}", f"readlink {shlex.quote(str(link))}"),
        facts.Fact(f"exists:{default_link}", f"test -e {shlex.quote(str(default_link))}", parse=facts.succeeded),
    )


def site_probes(family):
    """The facts of the site's files where ``family`` keeps them."""
    site, link, default_link = site_paths(family)
    return [facts.file_state(site), *(link_facts(link, default_link) if link else ())]


def nginx_probes(host):
    """What nginx reads; the site's files of both families, probed with os-release, which tells the family."""
    return [
        facts.os_release(),
        facts.dir_state(ACME_ROOT),
        facts.file_state(DHPARAM),
        letsencrypt_fact(host.config.domain),
        *(
            (
                ocsp_fact(letsencrypt_files(host.config.domain)[0]),
                cert_fact(letsencrypt_files(host.config.domain)[0]),
                NAMESERVERS,
            )
            if host.config.domain
            else ()
        ),
        *site_probes(APT),
        *site_probes(DNF),
        facts.systemd_unit("nginx"),
        *public_name_probes(host),
    ]


def certificate_holds_every_name(host, *_):
    """Stop (one line, before any change) where Let's Encrypt's certificate naming the hub only
    (HTTP-01's) would be served to users' servers on names of their own; one holding the
    wildcard (DNS-01's) serves them all."""
    domain = host.config.domain
    if not domain or host.config.single_origin or not host.fact(letsencrypt_fact(domain)):
        return
    if f"DNS:*.{domain}" not in host.fact(cert_fact(letsencrypt_files(domain)[0])).names:
        raise HubswarmError(
            f"the Let's Encrypt certificate for {domain} does not hold *.{domain}, the names of users' "
            "servers: with HUBSWARM_ROUTE53_ZONE set, run fab letsencrypt to get one that does; "
            f"else set HUBSWARM_SINGLE_ORIGIN=1 to keep serving it, or remove it "
            f"({CERTBOT} delete --cert-name {domain}) "
            "to serve the self-signed one"
        )


@step("nginx", probes=nginx_probes, preflight=certificate_holds_every_name)
def nginx(host):
    """Write the hub's nginx site (80 redirects to 443, Mozilla's intermediate TLS, HSTS, no version banners, websockets), check it with nginx -t, reload only on change."""
    site, link, default_link = site_paths(family_of(host))
    host.ensure_dir(ACME_ROOT)
    if not host.fact(facts.file_state(DHPARAM)):
        host.ensure(
            f"make DH parameters {DHPARAM}", f"openssl dhparam -dsaparam -out {shlex.quote(DHPARAM)} 2048 2>/dev/null"
        )
    domain = host.config.domain
    letsencrypt_ready = bool(domain) and host.fact(letsencrypt_fact(domain))
    staple = None
    if letsencrypt_ready:
        staple = stapling(domain, host.fact(ocsp_fact(letsencrypt_files(domain)[0])), host.fact(NAMESERVERS))
    site_existed = bool(host.fact(facts.file_state(site)))
    previous = f"{site}.hubswarm-previous"
    site_changed = host.ensure_file(
        site, render_site(host.config, hub_name(host), letsencrypt_ready, staple), previous=previous
    )
    changed = site_changed
    if link:
        link_target, default_exists = host.facts(*link_facts(link, default_link))
        changed |= host.ensure(
            "enable the site, disable the distro default",
            link_commands(link_target, site, link, default_link, default_exists),
        )
    if changed:
        host.ensure("reload nginx (after nginx -t)", reload_script(site, link, previous, site_changed, site_existed))
    ensure_service(host, "nginx")


def reload_script(site, link, previous, site_changed, site_existed):
    """nginx -t, then reload; when the test fails, the site as it was before this run."""
    if not site_changed:
        restore, said = ":", "nginx -t failed"
    elif site_existed:
        restore, said = f"mv -f {shlex.quote(previous)} {shlex.quote(site)}", "nginx -t failed, previous site restored"
    else:
        restore = f"rm -f {shlex.quote(site)}" + (f" {shlex.quote(link)}" if link else "")
        said = "nginx -t failed, new site removed"
    return (
        "if ! out=$(nginx -t -q 2>&1); then "
        f"{restore}; "
        f'echo "{said}: $(printf %s "$out" | tail -n 1)" >&2; exit 1; fi; '
        f"rm -f {shlex.quote(previous)}; "
        "if systemctl is-active -q nginx; then systemctl reload nginx; fi"
    )
