"""How long work takes, in words: the estimates and the time left that every progress bar and cost line says."""

from __future__ import annotations

import math


def seconds_text(seconds: float | None) -> str:
    """ "≈ 12 s", "≈ 2 min 5 s", "under 1 s"; "" when unknown.

    >>> seconds_text(0.04), seconds_text(12.4), seconds_text(125)
    ('under 1 s', '≈ 12 s', '≈ 2 min 5 s')
    """
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"≈ {seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"≈ {minutes} min {rest} s" if rest else f"≈ {minutes} min"


def time_left(elapsed_s: float, fraction: float) -> str:
    """The time left of work ``fraction`` done after ``elapsed_s`` seconds ("" until a part has finished).

    >>> time_left(3.0, 0.25), time_left(0.1, 0.01)
    ('≈ 9 s', '')
    """
    if fraction < 0.05 or elapsed_s < 0.2 or fraction >= 1:
        return ""
    return seconds_text(elapsed_s / fraction * (1 - fraction))


def seconds_span(low: float, high: float) -> str:
    """ "≈ 3 s", or "≈ 3 s to 8 s" when the fewest and the most seconds read differently.

    >>> seconds_span(0.01, 0.02), seconds_span(2.6, 8.2), seconds_span(0.3, 4)
    ('under 1 s', '≈ 3 s to 8 s', 'under 1 s to 4 s')
    """
    a, b = seconds_text(low), seconds_text(high)
    return a if a == b else f"{a} to {b.removeprefix('≈ ')}"


def plural(unit: str) -> str:
    """The plural of a unit of work.

    >>> [plural(u) for u in ("image", "batch", "retraining", "entry", "day")]
    ['images', 'batches', 'retrainings', 'entries', 'days']
    """
    if unit.endswith("y") and unit[-2:-1] not in "aeiou":
        return unit[:-1] + "ies"
    return unit + "es" if unit.endswith(("ch", "sh", "s", "x")) else unit + "s"
