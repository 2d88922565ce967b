"""Host names: the one DNS-name check, for settings and for names hosts report."""

import re

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def dns_problem(value):
    """Why ``value`` is not a DNS host name (RFC 1123), or ""."""
    if len(value) > 253:
        return f"{len(value)} characters, more than 253"
    for label in value.split("."):
        if not label:
            return "has an empty label (two dots, or a dot at the start)"
        if len(label) > 63:
            return f"label {label[:20]!r}... is {len(label)} characters, more than 63"
        if not _LABEL.fullmatch(label):
            return f"label {label!r} may hold only a-z, 0-9 and '-' (not first or last)"
    if value.rsplit(".", 1)[-1].isdigit():
        return "looks like an IP address, not a DNS name"
    return ""


def in_zone(name, zone):
    """Whether DNS ``name`` is ``zone`` or a name under it (both lower-cased, without the final dot)."""
    return name == zone or name.endswith("." + zone)
