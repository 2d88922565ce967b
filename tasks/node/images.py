"""Notebook images on every swarm node: built here and pushed over SSH, or pulled.

There may be no registry (the lab, private images): ``push-image`` streams a
locally built image to the nodes that lack it, so a user's first spawn never
waits on a pull. Every profile's image (``HUBSWARM_PROFILES``) goes the same way as the
notebook image: pushed as this machine has it, or pulled.
"""

import os
import shlex
import subprocess

from .. import pins
from ..core import HubswarmError, facts, step
from ..core.locks import machine_lock
from ..settings import profiles

RECIPE = "files/singleuser"


def notebook_images(config):
    """Every image a notebook may run: the notebook image, then each profile's, once each."""
    return list(dict.fromkeys([config.image, *(profile["image"] for profile in profiles.resolved(config))]))


def image_facts(host):
    return [image_id_fact(image) for image in notebook_images(host.config)]


def image_id_fact(image):
    """The image's ID on the host, "" when it has no such image."""
    return facts.Fact(f"image:{image}", f"docker image inspect --format '{{{{.Id}}}}' {shlex.quote(image)}")


def local_docker(*args, what):
    try:
        # The classic builder: Debian's docker.io has no buildx.
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"}
        )
    except FileNotFoundError:
        raise HubswarmError(f"{what}: no docker command here: install Docker locally") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise HubswarmError(f"{what} failed: {lines[-1] if lines else 'exit ' + str(result.returncode)}")
    return result.stdout.strip()


def local_image_id(image):
    return local_docker("image", "inspect", "--format", "{{.Id}}", image, what=f"finding local image {image}")


def existing_image_id(image):
    """The local image's ID, or "sha256:(not built)" when there is none."""
    try:
        return local_image_id(image)
    except HubswarmError:
        return "sha256:(not built)"


def build_local(image, base, project_dir):
    """Build the notebook image from files/singleuser with this machine's Docker, one build of
    an image at a time: two at once would each make their own, the later moving the tag from
    under the first (which its nodes then lack), where one after the other share the cache."""
    with machine_lock(f"image {image}"):
        return _build(image, base, project_dir)


def _build(image, base, project_dir):
    local_docker(
        "build",
        "-q",
        "--force-rm",
        "-t",
        image,
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        f"JUPYTERHUB_VERSION={pins.JUPYTERHUB}",
        "--build-arg",
        f"JUPYTERLAB_VERSION={pins.JUPYTERLAB}",
        "--build-arg",
        f"IPYKERNEL_VERSION={pins.IPYKERNEL}",
        "--build-arg",
        f"JSONSCHEMA_VERSION={pins.JSONSCHEMA}",
        "--build-arg",
        f"NBGITPULLER_VERSION={pins.NBGITPULLER}",
        "--build-arg",
        f"NBGRADER_VERSION={pins.NBGRADER}",
        str(project_dir / RECIPE),
        what=f"building {image}",
    )
    return local_image_id(image)


def profile_image_id(image):
    """The local ID of a profile's image, which push-image sends as this machine has it (it
    builds the notebook image only); HubswarmError when there is none here."""
    try:
        return local_image_id(image)
    except HubswarmError:
        raise HubswarmError(
            f"{image}, a profile's image, is not on this machine: pull or build it here "
            f"(docker pull {image}), or set HUBSWARM_IMAGE_SOURCE=pull"
        ) from None


def saved_image(image):
    """A binary stream of ``docker save IMAGE`` from this machine."""
    return subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE).stdout


@step("push-image", probes=image_facts)
def push_image(host, wanted):
    """Load each notebook image on a node that lacks it, as this machine has it (``wanted``: image -> ID)."""
    had = host.facts(*[image_id_fact(image) for image in wanted])
    for (image, image_id), has in zip(wanted.items(), had, strict=True):
        if has != image_id:
            host.ensure(
                f"load {image} ({image_id[7:19]}) from this machine",
                "docker load -q >/dev/null",
                stdin=lambda image=image: saved_image(image),
            )


@step("pull-image", probes=image_facts)
def pull_image(host):
    """Pull each notebook image where it is missing; with HUBSWARM_IMAGE_PULL=always, also
    where its tag moved in the registry."""
    images = notebook_images(host.config)
    for image, had in zip(images, host.facts(*[image_id_fact(image) for image in images]), strict=True):
        pull_one(host, image, had)


def pull_one(host, image, had):
    """Pull ``image`` where the node has none (``had``: its ID there, "" for none); pulling always,
    also where its tag moved."""
    pull = f"docker pull -q {shlex.quote(image)} >/dev/null"
    if not had:
        host.ensure(f"pull {image}", pull)
    elif host.config.image_pull == "always":
        if host.check:  # only the registry knows, and check mode asks nobody
            host.note(f"pull {image} if its tag moved (HUBSWARM_IMAGE_PULL=always)")
            return
        has = host.sudo(f"{pull} && {image_id_fact(image).command}", what=f"pull {image}").strip()
        if has != had:
            host.changed(f"pull {image}: its tag moved ({had[7:19]} -> {has[7:19]})")
            host.forget()
