"""The project's own files agree with each other: one pin file, one ruff."""

from pathlib import Path

import tomllib

from tasks import pins

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def extra_test_requirements():
    return tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["test"]


def test_the_test_extra_installs_the_hubs_packages_at_their_pins():
    pinned = dict(line.split("==", 1) for line in extra_test_requirements() if "==" in line)
    assert {name: pinned.get(name) for name in pins.HUB_REQUIREMENTS} == pins.HUB_REQUIREMENTS


def test_ruff_is_one_version():
    [ruff] = [line for line in extra_test_requirements() if line.startswith("ruff")]
    assert ruff.startswith("ruff==")
