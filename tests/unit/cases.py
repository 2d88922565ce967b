"""Tests as data: the tables in ``cases/*.yaml``, loaded.

A case file holds ``vars`` (names for values its cases share, in order, each may use the
ones before, and those of ``common.yaml``), any other top-level keys (YAML anchors: shared sets of facts), and lists of
cases. A value or key tagged ``!py`` is a Python expression over the step modules, the
pins, the fake host's helpers and the file's vars (``!py pins.NPM``): what the cases
compute from the code stays equal to it, and the rest is plain data.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import fakehost
from tasks import pins
from tasks.cluster import swarm
from tasks.core import HubswarmError, facts, services
from tasks.hub import auth, certs, course, nginx, nodejs, proxy, python_env, users
from tasks.hub import jupyterhub as hub
from tasks.node import docker, fence, images, packages, storage, updates

FOLDER = Path(__file__).parent / "cases"
MODULES = (
    swarm,
    services,
    auth,
    certs,
    course,
    nginx,
    nodejs,
    proxy,
    python_env,
    users,
    docker,
    fence,
    images,
    packages,
)
NAMESPACE = {
    "pins": pins,
    "json": json,
    "F": facts,
    "hub": hub,
    "storage": storage,
    "updates": updates,
    "HubswarmError": HubswarmError,
    **{module.__name__.rpartition(".")[2]: module for module in MODULES},
    **{name: getattr(fakehost, name) for name in dir(fakehost) if not name.startswith("_")},
}


@dataclass(frozen=True)
class Py:
    """A ``!py`` expression, evaluated when its file's cases are loaded."""

    expression: str


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!py", lambda loader, node: Py(loader.construct_scalar(node)))


def expand(value, names):
    """``value`` (from YAML) with every ``!py`` expression in it, keys too, evaluated."""
    if isinstance(value, Py):
        return eval(value.expression, names)  # noqa: S307 - the project's own test tables
    if isinstance(value, dict):
        return {expand(k, names): expand(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, names) for v in value]
    return value


def load(name, table):
    """The cases of ``table`` in ``cases/NAME.yaml``, each a pytest.param named by its ``case``."""
    names = dict(NAMESPACE)
    for source in ("common", name):
        data = yaml.load((FOLDER / f"{source}.yaml").read_text(), _Loader)  # noqa: S506 - SafeLoader and !py
        for key, value in (data.get("vars") or {}).items():
            names[key] = expand(value, names)
    return [pytest.param(expand(case, names), id=case["case"]) for case in data[table]]


def merged(mappings):
    """One mapping from a mapping or a list of them (nested lists too), later keys winning."""
    if isinstance(mappings, dict):
        return mappings
    return {key: value for part in mappings for key, value in merged(part).items()}


def plain(value):
    """``value`` as YAML would spell it: tuples as lists, sets as sorted lists."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
