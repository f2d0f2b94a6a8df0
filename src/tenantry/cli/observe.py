"""`tenantry funnel`, `tenantry slo check`, `tenantry integrity check`: the reports on-call
reads, from the database directly."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.cli.console import (
    EXIT_FINDING,
    JsonFlag,
    audited,
    console,
    duration,
    in_session,
    metrics_text,
    print_json,
    show,
)
from tenantry.config import Settings
from tenantry.kit.clock import utcnow
from tenantry.ops import funnel as funnel_report
from tenantry.ops import integrity, slo

Since = Annotated[str, typer.Option(help="How far back, such as 1h, 24h or 30d.")]


def _window(since: str) -> funnel_report.Window:
    back = duration(since)
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


slo_app = typer.Typer(help="The service-level objectives and their alert thresholds.")


@slo_app.command("check")
def slo_check(
    metrics_url: Annotated[
        str | None,
        typer.Option(help="A serving process's /metrics, for the request-based objectives."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Each objective's value, target, alert threshold and status; exit 1 on a breach.

    Without --metrics-url, signup success, magic-link p95 and error rate are no_data: only
    the serving processes count requests."""
    settings = Settings()
    metrics = metrics_text(metrics_url) if metrics_url else None
    report: dict[str, Any] = in_session(lambda session: slo.check(session, settings, metrics))
    if as_json:
        print_json(report)
    else:
        show(
            report["objectives"],
            ["name", "status", "value", "target", "alert", "window"],
            as_json=False,
            title=f"SLO check: {report['status']}",
        )
    if report["status"] == slo.BREACH:
        raise typer.Exit(EXIT_FINDING)


integrity_app = typer.Typer(help="States the service should never be in, and their repair.")


@integrity_app.command("check")
def integrity_check(
    fix: Annotated[bool, typer.Option("--fix", help="Repair the fixable findings.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Every kind of finding with its ids; exit 1 when any (with --fix: any left unfixed)."""

    settings = Settings()

    async def run(session: AsyncSession) -> tuple[list[integrity.Finding], list[str]]:
        findings = await integrity.check(session, settings)
        done = await integrity.fix(session, settings, findings) if fix else []
        return findings, done

    if fix:
        findings, done = audited(
            "integrity.fix", "integrity", run, after=lambda result: {"fixed": result[1]}
        )
    else:
        findings, done = in_session(run)
    left = [f for f in findings if not (fix and f.fixable)]
    if as_json:
        print_json({"findings": [dataclasses.asdict(f) for f in findings], "fixed": done})
    else:
        rows = [{**dataclasses.asdict(f), "ids": ", ".join(f.ids[:5])} for f in findings]
        show(rows, ["kind", "count", "fixable", "ids"], as_json=False, title="integrity")
        for line in done:
            console.print(f"fixed {line}")
    if left:
        raise typer.Exit(EXIT_FINDING)
