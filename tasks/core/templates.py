"""Render the templates kept in the project's ``files/`` folder."""

from pathlib import Path

import jinja2

FILES = Path(__file__).resolve().parents[2] / "files"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(FILES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def file_text(name):
    """``files/<name>`` as it is (scripts: no template syntax to trip on)."""
    return (FILES / name).read_text()


def render(name, **values):
    """``files/<name>`` rendered with ``values``; a missing value is an error."""
    return _env.get_template(name).render(**values)
