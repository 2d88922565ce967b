"""What bench/load.py makes of its measurements: percentiles and failure reasons (pure)."""

import re

REASON_CHARS = 200


def percentile(values, percent):
    """The nearest-rank ``percent`` percentile (an integer, 0-100) of ``values``: the smallest
    value with at least that share of the values at or below it; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    # ceil(percent * n / 100) in integers: a float product can land just above a whole rank.
    rank = -(-percent * len(ordered) // 100)
    return ordered[max(rank, 1) - 1]


def summary(values):
    """{count, p50, p95, max} of ``values`` (None for each statistic when there are none)."""
    values = list(values)
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values, default=None),
    }


def reason(text, name):
    """The kind of a failure, so that the same failure of many users counts as one: the first
    line of ``text``, the user's ``name`` as USER, object addresses blanked, and nothing from
    the first `` {`` on (a dumped server model or reply body, with times that differ)."""
    line = (text.strip().splitlines() or [""])[0]
    line = re.sub(rf"\b{re.escape(name)}\b", "USER", line)
    line = re.sub(r"0x[0-9a-fA-F]+", "0x?", line)
    return line.split(" {", 1)[0][:REASON_CHARS]
