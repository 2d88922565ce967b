"""The front door: nginx's site speaks Mozilla's intermediate TLS, names no versions,
and staples OCSP only for a Let's Encrypt certificate that names a responder."""

import ssl

import pytest

from fakehost import DEBIAN_12, hub_config, unit_info
from tasks.hub import certs, nginx

# Mozilla's intermediate profile (guidelines v5.7), written out here so that a change
# to the template or to nginx.CIPHERS shows.
MOZILLA_INTERMEDIATE = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
TLS_SETTINGS = {
    "ssl_protocols": "TLSv1.2 TLSv1.3",
    "ssl_ecdh_curve": "X25519:prime256v1:secp384r1",
    "ssl_ciphers": MOZILLA_INTERMEDIATE,
    "ssl_prefer_server_ciphers": "off",
    "ssl_session_timeout": "1d",
    "ssl_session_cache": "shared:hubswarm:10m",
    "ssl_session_tickets": "off",
    "ssl_dhparam": nginx.DHPARAM,  # the DHE suites need it
    "add_header": 'Strict-Transport-Security "max-age=63072000" always',
    "server_tokens": "off",
}
STAPLING = ("ssl_stapling", "ssl_stapling_verify", "ssl_trusted_certificate", "resolver")
LE_CERT = certs.letsencrypt_files("hub.example.com")[0]


def servers(text):
    """Each ``server { ... }`` block of the site: its directives, (name, value) in order,
    those of its locations included."""
    blocks, current, depth = [], None, 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "server {" and depth == 0:
            current = []
        if line.endswith("{"):
            depth += 1
        elif line == "}":
            depth -= 1
            if depth == 0 and current is not None:
                blocks.append(current)
                current = None
        elif current is not None:
            name, _, value = line.rstrip(";").partition(" ")
            current.append((name, value.strip()))
    return blocks


def tls_servers(text):
    found = [s for s in servers(text) if any(n == "listen" and v.startswith("443 ") for n, v in s)]
    assert found
    return found


def values(server, name):
    return [v for n, v in server if n == name]


SITES = {
    "self-signed": lambda: nginx.render_site(hub_config(), "hub.example.com"),
    "letsencrypt": lambda: nginx.render_site(hub_config(), "hub.example.com", True),
    "static site": lambda: nginx.render_site(hub_config(static_domain="example.com"), "hub.example.com", True),
    "stapled": lambda: nginx.render_site(
        hub_config(static_domain="example.com"),
        "hub.example.com",
        True,
        nginx.Stapling(certs.letsencrypt_chain("hub.example.com"), ("10.0.0.2",)),
    ),
}


@pytest.mark.parametrize("site", SITES)
def test_every_tls_server_has_the_intermediate_profile(site):
    text = SITES[site]()
    assert len(servers(text)) == len(tls_servers(text)) + 1  # and the port 80 redirect
    for server in tls_servers(text):
        for name, value in TLS_SETTINGS.items():
            assert values(server, name) == [value], name
    assert "TLSv1.1" not in text and "TLSv1 " not in text and "SSLv" not in text


def test_plain_http_names_no_version_either():
    [redirect] = [s for s in servers(SITES["self-signed"]()) if ("listen", "80 default_server") in s]
    assert values(redirect, "server_tokens") == ["off"]


def test_openssl_reads_the_ciphers_as_forward_secret_aead_suites_only():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    [server, *_] = tls_servers(SITES["self-signed"]())
    context.set_ciphers(values(server, "ssl_ciphers")[0])
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert {c["name"] for c in tls12} == set(MOZILLA_INTERMEDIATE.split(":"))
    for cipher in tls12:
        assert cipher["kea"] in ("kx-ecdhe", "kx-dhe"), cipher["name"]
        assert cipher["aead"] and "CBC" not in cipher["description"], cipher["name"]


def test_no_version_header_from_upstream():
    [hub_server] = [s for s in tls_servers(SITES["static site"]()) if ("proxy_pass", "http://127.0.0.1:8000") in s]
    assert values(hub_server, "proxy_hide_header") == ["X-JupyterHub-Version"]
    # nginx drops the upstream's Server header (TornadoServer/x) unless told to pass it.
    assert "proxy_pass_header" not in {n for n, _ in hub_server}


@pytest.mark.parametrize("site", ["self-signed", "letsencrypt", "static site"])
def test_no_stapling_unless_asked(site):
    for server in tls_servers(SITES[site]()):
        assert not {n for n, _ in server} & set(STAPLING)


def test_stapling_in_every_tls_server():
    for server in tls_servers(SITES["stapled"]()):
        assert values(server, "ssl_stapling") == ["on"]
        assert values(server, "ssl_stapling_verify") == ["on"]
        assert values(server, "ssl_trusted_certificate") == ["/etc/letsencrypt/live/hub.example.com/chain.pem"]
        assert values(server, "resolver") == ["10.0.0.2"]


@pytest.mark.parametrize(
    "nameserver, resolver",
    [("10.0.0.2", "10.0.0.2"), ("127.0.0.53", "127.0.0.53"), ("fd00::2", "[fd00::2]"), ("fe80::1%eth0", ""), ("x", "")],
)
def test_resolver_address(nameserver, resolver):
    assert nginx.resolver_address(nameserver) == resolver


@pytest.mark.parametrize(
    "ocsp_uri, nameservers, resolvers",
    [
        ("http://r3.o.lencr.org", ["10.0.0.2", "fe80::1%eth0", "fd00::2"], ("10.0.0.2", "[fd00::2]")),
        ("", ["10.0.0.2"], None),  # no responder: Let's Encrypt since May 2025, pebble
        ("http://r3.o.lencr.org", ["fe80::1%eth0"], None),  # nothing nginx could ask
    ],
)
def test_stapling_needs_a_responder_and_a_name_server(ocsp_uri, nameservers, resolvers):
    staple = nginx.stapling("hub.example.com", ocsp_uri, nameservers)
    if resolvers is None:
        assert staple is None
    else:
        assert staple == nginx.Stapling("/etc/letsencrypt/live/hub.example.com/chain.pem", resolvers)


def written_site(runner):
    [site] = [c.stdin for c in runner.calls if c.stdin and "ssl_protocols" in c.stdin]
    return site


@pytest.mark.parametrize(
    "letsencrypt, ocsp_uri, stapled",
    [
        (True, "http://r3.o.lencr.org", True),
        (True, "", False),
        # A self-signed certificate is served: Let's Encrypt's is not there (yet).
        (False, "http://r3.o.lencr.org", False),
    ],
)
def test_nginx_step_staples_only_an_ocsp_capable_letsencrypt_certificate(make_host, letsencrypt, ocsp_uri, stapled):
    host, runner = make_host(
        {
            "os-release": DEBIAN_12,
            f"dir:{nginx.ACME_ROOT}": "755 root root",
            f"file:{nginx.DHPARAM}": "abc 644 root root",
            "letsencrypt:hub.example.com": "" if letsencrypt else None,
            f"ocsp:{LE_CERT}": ocsp_uri,
            "nameservers": "10.0.0.2",
            "unit:nginx": unit_info("enabled", "active"),
        }
    )
    nginx.nginx(host)
    site = written_site(runner)
    assert (f"ssl_certificate {LE_CERT};" in site) is letsencrypt
    for server in tls_servers(site):
        assert (values(server, "ssl_stapling") == ["on"]) is stapled
        assert (values(server, "resolver") == ["10.0.0.2"]) is stapled


def test_nginx_step_probes_stapling_facts_with_the_others(make_host):
    host, _ = make_host({"os-release": DEBIAN_12})
    assert {f"ocsp:{LE_CERT}", "nameservers"} <= {f.key for f in nginx.nginx_probes(host)}
