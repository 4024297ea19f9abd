"""Durations as PingDataSync writes them: "5 s", "500 ms", "1 min", "2 h", "1 d", "2h30m"."""

from __future__ import annotations

import re

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")


class DurationError(ValueError):
    """A duration that cannot be read."""


def parse_duration(text: str | int | float) -> float:
    """Seconds in `text`; a unit is required (a bare number is ambiguous in Ping's syntax)."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise DurationError(
            f"expected a duration with a unit such as '5 s' or '500 ms', got {text!r}"
        )
    value = text.strip()
    if not value:
        raise DurationError("empty duration")
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        raise DurationError(
            f"expected a duration with a unit such as '5 s' or '500 ms', got {text!r}"
        )
    total = 0.0
    pos = 0
    while pos < len(value):
        match = _PART.match(value, pos)
        if not match:
            raise DurationError(
                f"cannot read duration {text!r}: expected a number and a unit (ms, s, min, h, d, w)"
            )
        unit = match.group(2).lower()
        if unit not in _UNITS:
            raise DurationError(
                f"unknown unit {match.group(2)!r} in duration {text!r} (ms, s, min, h, d, w)"
            )
        total += float(match.group(1)) * _UNITS[unit]
        pos = match.end()
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact Ping form: 0.5 -> "500 ms", 60 -> "1 min", 90 -> "90 s"."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count = seconds / size
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)} {unit}"
    millis = seconds * 1000
    if abs(millis - round(millis)) < 1e-6:
        return f"{round(millis)} ms"
    return f"{seconds:g} s"
