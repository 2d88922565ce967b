"""Build and cache the lab host image.

Two cached images per Debian release (12 bookworm, 13 trixie), labelled hubswarm.lab=1 and
tagged with a hash of what made them:
- `hubswarm-lab-rootfs[-trixie]:<hash>`: a minbase rootfs from debootstrap (about a minute),
  hashed on the release and files/lab/packages.txt;
- `hubswarm-lab[-trixie]:<hash>`: files/lab/Dockerfile on top of it, hashed on every file in
  files/lab plus the machine's local CA certificates. Rebuilt only when one of those changes.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from invoke.exceptions import Exit

from ..core.locks import machine_lock
from .docker import IMAGE_LABEL, PROJECT_ROOT, apt_install, can_install_here, docker

RECIPE_DIR = PROJECT_ROOT / "files" / "lab"
PACKAGES_FILE = RECIPE_DIR / "packages.txt"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
DEBIAN_12, DEBIAN_13 = "bookworm", "trixie"
MIRROR = "http://deb.debian.org/debian"
ROOTFS_REPOSITORY = "hubswarm-lab-rootfs"
IMAGE_REPOSITORY = "hubswarm-lab"


def repository(name, suite):
    """The image repository for SUITE: Debian 12's keeps the plain name (and its cache)."""
    return name if suite == DEBIAN_12 else f"{name}-{suite}"


def local_ca_certificates():
    """The machine's local CA certificates (Debian keeps them in /usr/local/share/ca-certificates)."""
    return sorted(LOCAL_CA_DIR.glob("*.crt")) if LOCAL_CA_DIR.is_dir() else []


def debootstrap_packages():
    """Packages added to the minbase variant, from files/lab/packages.txt."""
    lines = (line.split("#", 1)[0].strip() for line in PACKAGES_FILE.read_text().splitlines())
    return [line for line in lines if line]


def _digest(parts):
    sha = hashlib.sha256()
    for name, data in parts:
        sha.update(name.encode() + b"\0" + data + b"\0")
    return sha.hexdigest()[:12]


def rootfs_tag(suite=DEBIAN_12):
    """Tag of the debootstrap rootfs image of SUITE for the current package list."""
    parts = [("suite", f"{suite} {MIRROR}".encode()), ("packages", " ".join(debootstrap_packages()).encode())]
    return f"{repository(ROOTFS_REPOSITORY, suite)}:{_digest(parts)}"


def image_tag(suite=DEBIAN_12):
    """Tag of the lab host image of SUITE for the current recipe (files/lab/*) and local CA certificates."""
    parts = [(f"recipe/{path.name}", path.read_bytes()) for path in sorted(RECIPE_DIR.iterdir()) if path.is_file()]
    parts += [(f"ca/{path.name}", path.read_bytes()) for path in local_ca_certificates()]
    parts.append(("rootfs", rootfs_tag(suite).encode()))
    return f"{repository(IMAGE_REPOSITORY, suite)}:{_digest(parts)}"


def image_exists(tag):
    """True when the local Docker has an image with this tag."""
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def ensure_image(suite=DEBIAN_12):
    """Return the lab host image tag of SUITE, building the rootfs and/or image first if not cached."""
    tag = image_tag(suite)
    if image_exists(tag):
        return tag
    # Labs of other slots may want it at the same time: one builds, the others wait for it.
    with machine_lock("lab image"):
        if not image_exists(tag):
            _build(tag, suite)
    return tag


def _build(tag, suite):
    base = rootfs_tag(suite)
    if not image_exists(base):
        build_rootfs(base, suite)
        _remove_stale(repository(ROOTFS_REPOSITORY, suite), base)
    build_image(tag, base, suite)
    _remove_stale(repository(IMAGE_REPOSITORY, suite), tag)


def _remove_stale(repository, keep):
    """Remove older tags of REPOSITORY than KEEP (those still used by a container stay)."""
    tags = docker("image", "ls", repository, "--format", "{{.Repository}}:{{.Tag}}").split()
    for stale in set(tags) - {keep}:
        docker("image", "rm", stale, check=False)


def build_rootfs(tag, suite):
    """debootstrap a minbase rootfs of SUITE and `docker import` it as TAG."""
    if shutil.which("debootstrap") is None:
        if not can_install_here():
            raise Exit("lab: building the lab image needs debootstrap (Debian: apt-get install debootstrap).", code=1)
        apt_install("debootstrap")
    print(f"lab: building {tag} with debootstrap (about a minute)...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="hubswarm-lab-rootfs-") as rootfs:
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(debootstrap_packages())}",
            suite,
            rootfs,
            MIRROR,
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise Exit(f"lab: debootstrap failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}", code=1)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "--change", f"LABEL {IMAGE_LABEL}", "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise Exit(f"lab: importing the rootfs into Docker failed: {imported.stderr.strip()}", code=1)


def build_image(tag, base, suite):
    """Build files/lab/Dockerfile FROM BASE as TAG, with the local CA certificates in the context
    and apt pointed at SUITE."""
    print(f"lab: building {tag}...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="hubswarm-lab-image-") as context:
        shutil.copytree(RECIPE_DIR, context, dirs_exist_ok=True)
        sources = Path(context) / "sources.list"
        sources.write_text(sources.read_text().replace("SUITE", suite))
        ca_dir = Path(context) / "ca-certificates"
        ca_dir.mkdir()
        for certificate in local_ca_certificates():
            shutil.copy(certificate, ca_dir / certificate.name)
        result = subprocess.run(
            ["docker", "build", "--quiet", "--build-arg", f"BASE={base}", "--tag", tag, context],
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        if result.returncode != 0:
            raise Exit(f"lab: docker build failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}", code=1)


def remove_images():
    """Remove every image labelled hubswarm.lab=1 (lab images and cached rootfs)."""
    images = docker("image", "ls", "--filter", f"label={IMAGE_LABEL}", "--format", "{{.Repository}}:{{.Tag}}").split()
    if images:
        docker("image", "rm", "--force", *images)
    return images
