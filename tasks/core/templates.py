"""Render the templates kept in the project's ``files/`` folder."""

from functools import cache
from pathlib import Path

FILES = Path(__file__).resolve().parents[2] / "files"


@cache
def environment():
    """The templates' Jinja environment, made when a task first renders one."""
    import jinja2  # here, not at the top: jinja2 costs ~20 ms of every fab start, rendering or not

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(FILES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def warm_up():
    """Load Jinja and compile every template now, for a caller with time to spare (waiting on hosts)."""
    for template in FILES.glob("*.j2"):
        environment().get_template(template.name)


def file_text(name):
    """``files/<name>`` as it is (scripts: no template syntax to trip on)."""
    return (FILES / name).read_text()


def render(name, **values):
    """``files/<name>`` rendered with ``values``; a missing value is an error."""
    return environment().get_template(name).render(**values)
