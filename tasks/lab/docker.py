"""Docker plumbing for the lab: run docker commands, make sure a daemon answers.

Every docker call goes through `docker()` with an argument list (no shell strings).
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from invoke.exceptions import Exit

from ..settings import SETTING, lab_folder, lab_slot

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Which lab this process works on: bin/test runs two side by side, each with its own folder,
# network, names and labels (slot 0 keeps the names a lab always had).
SLOT = lab_slot(os.environ)
if SLOT is None:
    sys.exit(SETTING["HUBSWARM_LAB_SLOT"].line(os.environ["HUBSWARM_LAB_SLOT"].strip().lower()))
LAB_DIR = lab_folder(PROJECT_ROOT, os.environ)
LAB_LABEL = f"hubswarm.lab={SLOT + 1}"
# The lab's images serve every slot.
IMAGE_LABEL = "hubswarm.lab=1"
NAME = "hubswarm-lab" if SLOT == 0 else f"hubswarm-lab{SLOT}"
NETWORK_PREFIX = f"10.213.{SLOT}."
# This machine's address on the lab network (its bridge's): where the lab's hosts reach what runs here.
GATEWAY_IP = f"{NETWORK_PREFIX}1"
DAEMON_WAIT_SECONDS = 60


def make_lab_dir():
    """.lab/, 0700 however it was made: it holds the lab's SSH key and settings."""
    LAB_DIR.mkdir(mode=0o700, exist_ok=True)
    LAB_DIR.chmod(0o700)


def docker(*args, check=True, timeout=None):
    """Run `docker ARGS...` and return its stripped stdout; raise Exit with stderr on failure."""
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Exit(f"lab: `docker {' '.join(args[:3])} ...` did not finish within {timeout} s", code=1) from None
    if check and result.returncode != 0:
        raise Exit(f"lab: `docker {' '.join(args[:3])} ...` failed: {result.stderr.strip()}", code=1)
    return result.stdout.strip()


def docker_answers():
    """True when a Docker daemon answers `docker info`."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def apt_install(*packages):
    """Install Debian packages on this machine (root only), quietly; raise Exit on failure."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise Exit(f"lab: `{' '.join(command)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}", code=1)


def can_install_here():
    """True on Linux as root, where the lab may install and start what it needs."""
    return sys.platform == "linux" and os.geteuid() == 0 and shutil.which("apt-get") is not None


def ensure_docker_daemon():
    """Make sure `docker info` answers: on Linux as root, install docker.io and start dockerd if needed."""
    if docker_answers():
        return
    if not can_install_here():
        raise Exit("lab: Docker does not answer; install and start Docker (Debian: apt-get install docker.io).", code=1)
    if shutil.which("dockerd") is None:
        apt_install("docker.io", "iptables", "debootstrap")
    make_lab_dir()
    with open(LAB_DIR / "dockerd.log", "ab") as log:
        subprocess.Popen(
            ["dockerd", "--pidfile", "/var/run/docker.pid"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + DAEMON_WAIT_SECONDS
    while not docker_answers():
        if time.monotonic() > deadline:
            raise Exit(f"lab: dockerd did not answer within {DAEMON_WAIT_SECONDS} s; see .lab/dockerd.log", code=1)
        time.sleep(1)
    print("lab: Docker was not running: started dockerd (log in .lab/dockerd.log)")
