"""Notebooks only where the homes storage is: a probe on every node that takes notebooks
(a global swarm service that binds the storage's mark, so it runs only where the storage
is), and on the hub the loop that labels the nodes where it does not run
(files/hubswarm-homes-labels); the notebooks' placement avoids those."""

import shlex

from ..core import facts, render
from ..core.services import UNIT_DIR, ensure_installed
from ..core.templates import file_text
from ..hubswarm_hub.labels import NOTEBOOK_LABEL
from ..node.storage import marker_path

PROBE = "hubswarm-homes"
PROBE_TARGET = "/hubswarm-homes"
LABELS_TOOL = "/usr/local/sbin/hubswarm-homes-labels"
LABELS_SERVICE = "hubswarm-homes-labels.service"
LABELS_UNIT = f"{UNIT_DIR}/{LABELS_SERVICE}"

# The probe as swarm holds it: its image and the file it binds ("" when there is none).
PROBE_FACT = facts.Fact(
    f"service:{PROBE}",
    f"docker service inspect {PROBE} --format "
    "'{{.Spec.TaskTemplate.ContainerSpec.Image}} {{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Source}}{{end}}'",
    parse=facts.text,
)


def probe_probes(host):
    return [
        PROBE_FACT,
        facts.file_state(LABELS_TOOL),
        facts.file_state(LABELS_UNIT),
        facts.systemd_unit(LABELS_SERVICE),
    ]


def create_command(image, mark):
    """The probe: on every node labelled for notebooks, the notebook image (there already)
    sleeping as no one, with no capability, a read-only root and the mark bound read-only."""
    return (
        f"docker service create --detach --quiet --no-resolve-image --name {PROBE} --mode global "
        f"--constraint {shlex.quote(f'node.labels.{NOTEBOOK_LABEL} == true')} "
        f"--mount {shlex.quote(f'type=bind,source={mark},target={PROBE_TARGET},readonly')} "
        "--user 65534:65534 --read-only --cap-drop ALL --limit-memory 16M "
        "--restart-condition any --restart-delay 5s "
        f"-- {shlex.quote(image)} sleep infinity >/dev/null"
    )


def probe_command(current, image, mark):
    """What makes the probe as wanted ("" when it is): made again when its image or mark moved."""
    held, _, source = current.partition(" ")
    if source == mark and image in (held, held.split("@", 1)[0]):  # swarm may add the digest
        return ""
    remove = f"docker service rm {PROBE} >/dev/null && " if current else ""
    return remove + create_command(image, mark)


def ensure_probe(host):
    """The probe in the swarm, and the hub's labelling loop running."""
    config = host.config
    image, mark = config.image, marker_path(config)
    host.ensure(
        f"run the homes probe ({PROBE}) on every node that takes notebooks",
        probe_command(host.fact(PROBE_FACT), image, mark),
    )
    files = {
        LABELS_TOOL: (file_text("hubswarm-homes-labels"), "755"),
        LABELS_UNIT: (render(f"{LABELS_SERVICE}.j2"), "644"),
    }
    ensure_installed(host, LABELS_SERVICE, files)
