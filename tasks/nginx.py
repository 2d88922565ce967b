"""nginx in front of the hub: HTTP to HTTPS, TLS 1.2/1.3, HSTS, websockets."""

import shlex

from .certs import hub_name, letsencrypt_files, public_name_probes, tls_files
from .core import facts, render, step
from .core.services import ensure_service
from .packages import APT, family_of

ACME_ROOT = "/var/lib/hubswarm/acme"
# Kept outside certbot's folders, so certbot never touches it.
DHPARAM = "/etc/nginx/hubswarm-dhparam.pem"


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


def render_site(config, server_name, letsencrypt_ready=False):
    cert, key = tls_files(config, letsencrypt_ready)
    return render(
        "nginx-jupyterhub.conf.j2",
        server_name=server_name,
        cert=cert,
        key=key,
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


def nginx_probes(host):
    site, link, default_link = site_paths(family_of(host))
    return [
        facts.dir_state(ACME_ROOT),
        facts.file_state(DHPARAM),
        letsencrypt_fact(host.config.domain),
        facts.file_state(site),
        *(link_facts(link, default_link) if link else ()),
        facts.systemd_unit("nginx"),
        *public_name_probes(host),
    ]


@step("nginx", probes=nginx_probes)
def nginx(host):
    """Write the hub's nginx site (80 redirects to 443, TLS 1.2/1.3, HSTS, websockets), check it with nginx -t, reload only on change."""
    site, link, default_link = site_paths(family_of(host))
    host.ensure_dir(ACME_ROOT)
    if not host.fact(facts.file_state(DHPARAM)):
        host.ensure(
            f"make DH parameters {DHPARAM}", f"openssl dhparam -dsaparam -out {shlex.quote(DHPARAM)} 2048 2>/dev/null"
        )
    letsencrypt_ready = bool(host.config.domain) and host.fact(letsencrypt_fact(host.config.domain))
    site_existed = bool(host.fact(facts.file_state(site)))
    previous = f"{site}.hubswarm-previous"
    site_changed = host.ensure_file(
        site, render_site(host.config, hub_name(host), letsencrypt_ready), previous=previous
    )
    changed = site_changed
    link_f, default_f = link_facts(link, default_link)
    if link:
        answers = host.facts(link_f, default_f)
        changed |= host.ensure(
            "enable the site, disable the distro default",
            link_commands(answers[link_f.key], site, link, default_link, answers[default_f.key]),
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
