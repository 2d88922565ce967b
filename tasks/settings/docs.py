"""``.env.example`` and the README's table of settings, written from the table.

``python3 -m tasks.settings --write`` writes both; a unit test fails when
either differs from what the table makes of it.
"""

from .table import GROUPS, PROJECT, SETTINGS, Derived

WRITE_COMMAND = "python3 -m tasks.settings --write"
ENV_EXAMPLE_HEADER = """\
Copy to .env (never committed) and fill in. Everything here can also be set
in the environment; a running lab's .lab/lab.env wins over this file, for lab
hosts only (HUBSWARM_LAB=0 ignores the lab). Every fab task checks all of these
before it touches a host: one line per bad setting, then exit 1."""
README_START, README_END = "<!-- settings:start -->", "<!-- settings:end -->"


def _comments(text):
    return [f"# {line}" for line in text.splitlines()]


def _written(value):
    """A default as a variable would hold it."""
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def env_example():
    """The text of ``.env.example``: every group's settings, commented out at their example."""
    lines = _comments(ENV_EXAMPLE_HEADER)
    for group in (group for group in GROUPS if group.in_env_example):
        lines += ["", *_comments(group.heading)]
        for setting in group.settings:
            lines += _comments(setting.note)
            example = setting.example if setting.example is not None else _written(setting.default)
            lines.append(f"{setting.variable}=" if setting.fill_in else f"#{setting.variable}={example}")
    return "\n".join(lines) + "\n"


def _default_words(default):
    if isinstance(default, Derived):
        return default.text
    return f"`{_written(default)}`" if _written(default) else ""


def settings_table():
    """The README's markdown table: variable, default, what it does."""
    rows = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        cells = (f"`{setting.variable}`", _default_words(setting.default), setting.doc)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def readme(text):
    """``text`` (the README) with the table of settings between its markers."""
    before, start, rest = text.partition(README_START)
    _, end, after = rest.partition(README_END)
    if not (start and end):
        raise ValueError(f"README.md lacks the lines {README_START} and {README_END} around the settings")
    return f"{before}{README_START}\n{settings_table()}\n{README_END}{after}"


def stale(project=PROJECT):
    """{path: text} of each file the table writes that differs from what the table makes of it."""
    env_file, readme_file = project / ".env.example", project / "README.md"
    wanted = {env_file: env_example(), readme_file: readme(readme_file.read_text())}
    return {path: text for path, text in wanted.items() if not path.is_file() or path.read_text() != text}
