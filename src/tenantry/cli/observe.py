"""`tenantry funnel`: the reports on-call reads, from the database directly."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenantry.cli.console import EXIT_USAGE, JsonFlag, console, fail, in_session, print_json, show
from tenantry.config import Settings
from tenantry.kit.clock import utcnow
from tenantry.kit.durations import parse_duration
from tenantry.ops import funnel as funnel_report

Since = Annotated[str, typer.Option(help="How far back, such as 1h, 24h or 30d.")]


def _window(since: str) -> funnel_report.Window:
    try:
        back = parse_duration(since)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    until = utcnow()
    return funnel_report.Window.checked(until - back, until)


def funnel(
    since: Since = "24h",
    by: Annotated[funnel_report.Bucket, typer.Option(help="Series buckets.")] = (
        funnel_report.Bucket.HOUR
    ),
    as_json: JsonFlag = False,
) -> None:
    """The activation funnel: each stage's count and conversion, invite acceptance within
    72 h, provisioning p50/p95 and a series of signups and tenants (canaries left out)."""
    window = _window(since)
    settings = Settings()
    report: dict[str, Any] = in_session(
        lambda session: funnel_report.report(session, settings, window, by)
    )
    if as_json:
        print_json(report)
        return
    show(report["stages"], ["type", "count", "conversion"], as_json=False, title=f"funnel, {since}")
    acceptance, took = report["invite_acceptance_72h"], report["provisioning_ms"]
    console.print(f"invitations accepted within 72 h: {_share(acceptance)}")
    console.print(f"provisioning: p50 {_ms(took['p50'])}, p95 {_ms(took['p95'])}")
    busy = [row for row in report["series"] if row["signups_started"] or row["tenants_provisioned"]]
    show(busy, ["start", "signups_started", "tenants_provisioned"], as_json=False, title=f"by {by}")


def _share(value: float | None) -> str:
    return "no invitations" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
