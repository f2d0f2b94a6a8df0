"""Human durations for the CLI and settings: `300ms`, `30s`, `15m`, `2h`, `7d`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_PATTERN = re.compile(r"^\s*(\d+)\s*(ms|[smhd])\s*$")


def parse_duration(text: str) -> timedelta:
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 2h or 7d")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})
