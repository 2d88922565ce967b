"""nginx in front of the hub: HTTP to HTTPS, TLS 1.2/1.3, HSTS, websockets."""

from .certs import hub_name
from .core import facts, render, step
from .docker import ensure_service
from .packages import APT, family_of

ACME_ROOT = "/var/lib/hubswarm/acme"


def site_paths(family):
    """(site file, enabled link or None, distro default site link or None)."""
    if family == APT:
        return (
            "/etc/nginx/sites-available/jupyterhub",
            "/etc/nginx/sites-enabled/jupyterhub",
            "/etc/nginx/sites-enabled/default",
        )
    return "/etc/nginx/conf.d/jupyterhub.conf", None, None


def tls_files(config):
    """The certificate and key nginx serves: Let's Encrypt's when set up, else self-signed."""
    if config.letsencrypt_live:
        live = config.letsencrypt_live
        return f"{live}/fullchain.pem", f"{live}/privkey.pem"
    return f"{config.srv}/ssl/hub.crt", f"{config.srv}/ssl/hub.key"


def render_site(config, server_name):
    cert, key = tls_files(config)
    return render(
        "nginx-jupyterhub.conf.j2", server_name=server_name, cert=cert, key=key, acme_root=ACME_ROOT
    )


def link_commands(link_answer, site, link, default_link, default_answer):
    """Commands that enable our site and disable the distro default, or ""."""
    commands = []
    if link and link_answer.text != site:
        commands.append(f"ln -sfn {site} {link}")
    if default_link and default_answer.ok:
        commands.append(f"rm -f {default_link}")
    return " && ".join(commands)


def link_facts(link, default_link):
    return (
        facts.command_output(f"link:{link}", f"readlink {link}"),
        facts.command_output(f"exists:{default_link}", f"test -e {default_link}"),
    )


def nginx_probes(host):
    site, link, default_link = site_paths(family_of(host))
    return [
        facts.dir_state(ACME_ROOT),
        facts.file_state(site),
        *(link_facts(link, default_link) if link else ()),
        facts.systemd_unit("nginx"),
    ]


@step("nginx", probes=nginx_probes)
def nginx(host):
    """Write the hub's nginx site (80 redirects to 443, TLS 1.2/1.3, HSTS, websockets), check it with nginx -t, reload only on change."""
    site, link, default_link = site_paths(family_of(host))
    host.ensure_dir(ACME_ROOT)
    changed = host.ensure_file(site, render_site(host.config, hub_name(host)))
    link_f, default_f = link_facts(link, default_link)
    if link:
        answers = host.facts(link_f, default_f)
        changed |= host.ensure(
            "site enabled, distro default disabled",
            link_commands(answers[link_f.key], site, link, default_link, answers[default_f.key]),
        )
    if changed:
        host.ensure(
            "reload nginx (after nginx -t)",
            "nginx -t -q && if systemctl is-active -q nginx; then systemctl reload nginx; fi",
        )
    ensure_service(host, "nginx")
