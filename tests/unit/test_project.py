"""The project's own files agree with each other: one pin file, one ruff, one shape for a step, folders
that import only from the folders before them."""

import ast
import re
from pathlib import Path

import tomllib

from tasks import pins

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
# tasks/'s folders, each importing only from those before it (the hub-side package and the pins
# from none of them; the lab stands apart).
LAYERS = ["core", "settings", "cli", "node", "hub", "cluster", "aws", "ops"]


def extra_test_requirements():
    return tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["test"]


def test_the_test_extra_installs_the_hubs_packages_at_their_pins():
    pinned = dict(line.split("==", 1) for line in extra_test_requirements() if "==" in line)
    assert {name: pinned.get(name) for name in pins.HUB_REQUIREMENTS} == pins.HUB_REQUIREMENTS


def test_ruff_is_one_version():
    [ruff] = [line for line in extra_test_requirements() if line.startswith("ruff")]
    assert ruff.startswith("ruff==")


def product_modules():
    return [p for p in (ROOT / "tasks").rglob("*.py") if p.relative_to(ROOT / "tasks").parts[0] in LAYERS]


def test_every_step_is_made_by_the_step_decorator():
    """One shape: ``@step`` functions of the host and their bound arguments (``step.bind``)."""
    made_otherwise = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in product_modules()
        if path.name != "run.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Step"
    ]
    assert made_otherwise == []


def test_no_folder_imports_from_a_later_one():
    upward = []
    for path in product_modules():
        layer = LAYERS.index(path.relative_to(ROOT / "tasks").parts[0])
        for name in re.findall(r"^\s*from \.\.(\w+)", path.read_text(), flags=re.M):
            if name in LAYERS and LAYERS.index(name) > layer:
                upward.append(f"{path.relative_to(ROOT)} imports tasks/{name}")
    assert upward == []


def test_the_notebook_image_gets_every_version_it_names_from_the_pins(monkeypatch):
    from tasks.node import images

    asked = set(re.findall(r"^ARG (\w+_VERSION)$", (ROOT / images.RECIPE / "Dockerfile").read_text(), flags=re.M))
    built = []
    monkeypatch.setattr(images, "local_docker", lambda *args, what: built.append(args))
    images.build_local("hubswarm/singleuser:test", "debian:bookworm-slim", ROOT)
    build = built[0]
    given = dict(value.split("=", 1) for flag, value in zip(build, build[1:], strict=False) if flag == "--build-arg")
    assert set(given) - {"BASE"} == asked
    assert {name: given[name] for name in asked} == {
        name: getattr(pins, name.removesuffix("_VERSION")) for name in asked
    }
