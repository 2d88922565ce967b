"""Wording helpers for what tasks say to people."""


def plural(count, word):
    """``count`` and ``word``, in the plural unless there is one: 1 node, 2 nodes."""
    return f"{count} {word}" + ("" if count == 1 else "s")
