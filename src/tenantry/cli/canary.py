"""`tenantry canary`: one synthetic run through the product, against this deployment or any."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Annotated

import typer

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.cli.console import EXIT_FINDING, JsonFlag, console, print_json
from tenantry.config import Settings
from tenantry.ops.canary import run_once


def _service_token(settings: Settings) -> str:
    """From TENANTRY_CANARY_TOKEN (a deployment elsewhere), else minted with this data dir's
    signing key, as `tenantry token mint --audience internal --role service` would."""
    if given := os.environ.get("TENANTRY_CANARY_TOKEN"):
        return given
    token, _ = build_token_issuer(settings).mint(
        subject="svc_canary",
        audience=Audience.INTERNAL,
        ttl=timedelta(minutes=10),
        roles=["service"],
    )
    return token


def canary(
    base_url: Annotated[
        str | None, typer.Option(help="The deployment to try (default: TENANTRY_PUBLIC_URL).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign up, verify, provision, invite, accept, exchange a key and run a job, as a
    synthetic tenant; each stage's time; exit 1 naming the first failure (FAIL_<STAGE>)."""
    settings = Settings()
    run = asyncio.run(run_once(base_url or settings.public_url, settings, _service_token(settings)))
    if as_json:
        print_json(run.to_dict())
    else:
        for line in run.lines():
            console.print(line, highlight=False)
    if not run.ok:
        raise typer.Exit(EXIT_FINDING)
