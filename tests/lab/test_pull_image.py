"""pull-image against a real registry (Debian's docker-registry on the hub, reached as
localhost:5000, which Docker pulls from without TLS): a tag that moved is pulled with
HUBSWARM_IMAGE_PULL=always, and left alone by default."""

import shlex
import time

import pytest

from fabrun import fab

REFERENCE = "localhost:5000/class/notebook:fall"
# The package's own service asks for a password: this one serves anyone on localhost.
CONFIG = """version: 0.1
storage: {filesystem: {rootdirectory: /var/lib/test-registry}}
http: {addr: "127.0.0.1:5000"}
"""


@pytest.fixture
def registry(lab, cluster_run, connect):
    """The hub's shell, with a registry serving on its localhost:5000; removed afterwards."""
    hub = connect(lab.hub_ip)

    def shell(command):
        return hub.sudo(f"bash -c {shlex.quote(command)}", hide=True).stdout.strip()

    shell(
        "dpkg -s docker-registry >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-registry"
    )
    shell("systemctl disable --now docker-registry")
    shell(f"printf %s {shlex.quote(CONFIG)} > /etc/test-registry.yml")
    shell(
        "systemctl is-active -q test-registry || systemd-run -q --unit=test-registry docker-registry serve /etc/test-registry.yml"
    )
    deadline = time.monotonic() + 60
    while shell("curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/v2/ || true") != "200":
        assert time.monotonic() < deadline, "the registry did not answer"
        time.sleep(0.5)
    yield shell
    shell(f"docker image rm -f {REFERENCE} >/dev/null 2>&1 || true; systemctl stop test-registry")


def tiny_image(shell, content):
    """Build a one-file image tagged REFERENCE (offline: FROM scratch), push it; its ID."""
    shell(
        f"d=$(mktemp -d) && echo {content} > $d/version && printf 'FROM scratch\\nCOPY version /\\n' > $d/Dockerfile"
        f" && DOCKER_BUILDKIT=0 docker build -q -t {REFERENCE} $d >/dev/null && rm -r $d"
        f" && docker push -q {REFERENCE} >/dev/null"
    )
    return image_id(shell)


def image_id(shell):
    return shell(f"docker image inspect --format '{{{{.Id}}}}' {REFERENCE}")


def pull(lab, *tasks, policy):
    env = {"HUBSWARM_IMAGE": REFERENCE, "HUBSWARM_IMAGE_SOURCE": "pull", "HUBSWARM_IMAGE_PULL": policy}
    run = fab("-H", lab.hub_ip, *tasks, "pull-image", env=env)
    assert run.code == 0, run.output
    return run


def test_a_moved_tag_is_pulled_only_when_asked(lab, registry):
    before = tiny_image(registry, "term-start")
    moved = tiny_image(registry, "mid-term")  # the registry's tag moved
    registry(f"docker tag {before} {REFERENCE}")  # this node still has the old one
    assert moved != before

    assert pull(lab, policy="missing").changed() == []
    assert image_id(registry) == before

    predicted = pull(lab, "check", policy="always")
    assert f"would pull {REFERENCE} if its tag moved" in predicted.output
    assert image_id(registry) == before

    run = pull(lab, policy="always")
    assert run.changed() == [(lab.hub_ip, "pull-image")]
    assert f"pull {REFERENCE}: its tag moved ({before[7:19]} -> {moved[7:19]})" in run.output
    assert image_id(registry) == moved

    assert pull(lab, policy="always").changed() == []
