"""The files/ templates render to valid configs with the settings that matter."""

import json
import os
import threading

import pytest

from fakehost import hub_config
from tasks.core import render, templates
from tasks.core.run import Run
from tasks.hub import certs, nginx, proxy
from tasks.hub import jupyterhub as hub


@pytest.fixture
def real_config():
    """The hubswarm section fabfile.py really builds (its .env loading undone afterwards)."""
    saved = dict(os.environ)
    try:
        import fabric

        import fabfile

        config = fabric.Config()
        config.load_collection(fabfile.ns.configuration())
        yield config.hubswarm
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_real_config_has_what_the_steps_read(real_config):
    for name in (
        "srv",
        "venv",
        "image",
        "mem_limit",
        "authenticator",
        "domain",
        "letsencrypt_domains",
        "cluster",
        "region",
        "address",
        "lab",
        "userlist",
    ):
        assert hasattr(real_config, name), name
    assert real_config.tags.cluster_key == "hubswarm:cluster"
    assert real_config.tags.role_key == "hubswarm:role"
    values = hub.hub_values(real_config, "10.0.0.5", "hub.example.com")
    assert json.loads(hub.values_text(values)) == values  # as the hub reads it back


@pytest.mark.parametrize("letsencrypt_ready", [False, True])
def test_nginx_site(letsencrypt_ready):
    text = nginx.render_site(hub_config(), "hub.example.com", letsencrypt_ready)
    cert, key = certs.tls_files(hub_config(), letsencrypt_ready)
    for needle in (
        "return 301 https://$host$request_uri;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        'add_header Strict-Transport-Security "max-age=63072000" always;',
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "server_name hub.example.com *.hub.example.com;",
        f"ssl_certificate {cert};",
        f"ssl_certificate_key {key};",
        f"root {nginx.ACME_ROOT};",
        "proxy_pass http://127.0.0.1:8000;",
    ):
        assert needle in text
    assert "TLSv1.1" not in text and "TLSv1 " not in text
    assert text.count("{") == text.count("}")


def test_systemd_unit():
    text = hub.render_unit(hub_config())
    lines = text.splitlines()
    for line in (
        "EnvironmentFile=/srv/jupyterhub/env",
        "EnvironmentFile=/srv/jupyterhub/proxy.env",
        "Wants=network-online.target jupyterhub-proxy.service",
        "Restart=on-failure",
        "ExecStart=/opt/jupyterhub/bin/jupyterhub -f /srv/jupyterhub/jupyterhub_config.py",
        "Requires=docker.service",
        "WantedBy=multi-user.target",
    ):
        assert line in lines
    assert text.endswith("\n")


def test_missing_template_value_is_an_error():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render("jupyterhub.service.j2", srv="/srv/jupyterhub")


def test_static_site_is_off_by_default_and_served_when_set():
    assert "root /data/www;" not in nginx.render_site(hub_config(), "hub.example.com")
    text = nginx.render_site(hub_config(static_domain="example.com"), "hub.example.com")
    assert "server_name example.com;" in text and "root /data/www;" in text


def test_proxy_unit():
    lines = proxy.render_unit(hub_config(), "10.0.0.5").splitlines()
    for line in (
        "EnvironmentFile=/srv/jupyterhub/proxy.env",
        "ExecStart=configurable-http-proxy --ip 127.0.0.1 --port 8000 --api-ip 127.0.0.1 --api-port 8001 "
        "--error-target http://10.0.0.5:8081/hub/error --host-routing",
        "DynamicUser=yes",
        "Restart=always",
        "WantedBy=multi-user.target",
    ):
        assert line in lines


def test_one_origin_for_all_serves_and_routes_the_hubs_name_only():
    config = hub_config(domain="", single_origin=True)
    assert "server_name 10.0.0.5;" in nginx.render_site(config, "10.0.0.5")
    assert "--host-routing" not in proxy.render_unit(config, "10.0.0.5")


def test_a_run_readies_the_templates_once_its_first_host_is_connected(monkeypatch):
    """Jinja and every template, compiled while the hosts answer the probes: once per run."""
    warmed, done = [], threading.Event()
    monkeypatch.setattr(templates, "warm_up", lambda: (warmed.append(threading.current_thread()), done.set()))
    run = Run(config=None)
    for _ in range(3):  # (three hosts connected)
        run.connected()
    assert done.wait(5)
    assert len(warmed) == 1 and warmed[0] is not threading.current_thread()


def test_every_template_compiles():
    templates.warm_up()  # (raises on a template Jinja cannot compile)
