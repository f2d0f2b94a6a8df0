"""`tenantry canary`: one synthetic run through the product, against this deployment or any;
`tenantry canary report`: whether the last days ran clean."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import typer

from tenantry.cli.console import (
    EXIT_FINDING,
    OPERATOR,
    JsonFlag,
    console,
    errors,
    in_session,
    print_json,
    show,
)
from tenantry.config import Settings
from tenantry.kit.clock import utcnow
from tenantry.ops import canary_runs
from tenantry.ops.canary import Run, alert, run_once, service_token

app = typer.Typer(
    help="The synthetic canary: run it, or read its record.", invoke_without_command=True
)


async def _run_and_keep(base_url: str, settings: Settings) -> Run:
    """Run, then hand the result to the deployment tried (it keeps its own record)."""
    token = service_token(settings)
    started = utcnow()
    run = await run_once(base_url, settings, token)
    result: dict[str, Any] = run.to_dict()
    body = {k: result[k] for k in ("stages", "breaches", "failure", "stage", "error")}
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            kept = await client.post(
                "/v1/internal/canary/runs",
                json={**body, "started_at": started.isoformat(), "origin": OPERATOR},
                headers={"Authorization": f"Bearer {token}"},
            )
            kept.raise_for_status()
    except httpx.HTTPError as exc:
        errors.print(f"the run could not be recorded at {base_url}: {exc}", highlight=False)
    await alert(settings, base_url, run)
    return run


@app.callback()
def canary(
    context: typer.Context,
    base_url: Annotated[
        str | None, typer.Option(help="The deployment to try (default: TENANTRY_PUBLIC_URL).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign up, verify, provision, invite, accept, exchange a key and run a job, as a
    synthetic tenant; each stage's time; exit 1 naming the first failure (FAIL_<STAGE>)."""
    if context.invoked_subcommand is not None:
        return
    settings = Settings()
    run = asyncio.run(_run_and_keep(base_url or settings.public_url, settings))
    if as_json:
        print_json(run.to_dict())
    else:
        for line in run.lines():
            console.print(line, highlight=False)
    if not run.ok:
        raise typer.Exit(EXIT_FINDING)


@app.command("report")
def report(
    days: Annotated[int, typer.Option(min=1, max=90, help="How many days back.")] = 7,
    as_json: JsonFlag = False,
) -> None:
    """Whether every canary run of the last days passed (the launch gate); exit 1 if not."""
    found: dict[str, Any] = in_session(lambda session: canary_runs.report(session, days))
    if as_json:
        print_json(found)
    else:
        verdict = "clean" if found["clean"] else "NOT clean"
        console.print(f"{found['runs']} runs in {days} days: {verdict}", highlight=False)
        show(found["failures"], ["at", "failure", "stage", "error"], as_json=False)
    if not found["clean"]:
        raise typer.Exit(EXIT_FINDING)
