"""`tenantry denials`: who was refused what, by reason."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from tenantry.auth.denials import summarize
from tenantry.cli.console import JsonFlag, duration, in_session, show


def denials(
    since: Annotated[str, typer.Option(help="How far back, such as 15m, 1h or 7d.")] = "1h",
    as_json: JsonFlag = False,
) -> None:
    """Refused requests (403) by reason: count, last one, most refused route, distinct callers."""
    window = duration(since)
    rows = [dataclasses.asdict(entry) for entry in in_session(lambda s: summarize(s, window))]
    show(
        rows,
        ["reason", "count", "last_at", "top_route", "subjects"],
        as_json=as_json,
        title=None if as_json else f"denials in the last {since}",
    )
