"""``python3 -m tasks.settings [--write]``: .env.example and the README's table of settings against the table."""

import argparse
import sys

from .docs import WRITE_COMMAND, stale


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m tasks.settings",
        description="Say which of .env.example and the README's table of settings differ from "
        "tasks/settings/table.py (exit 1 when any does).",
    )
    parser.add_argument("--write", action="store_true", help="rewrite them from the table")
    args = parser.parse_args(argv)
    differing = stale()
    for path, text in differing.items():
        if args.write:
            path.write_text(text)
            print(f"wrote {path.name}")
        else:
            print(f"{path.name} differs from the table of settings: run `{WRITE_COMMAND}`")
    return 0 if args.write or not differing else 1


if __name__ == "__main__":
    sys.exit(main())
