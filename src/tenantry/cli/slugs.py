"""`tenantry slugs check SLUG`: free, reserved, invalid, or held by which tenant or session."""

from __future__ import annotations

import dataclasses

import typer

from tenantry.cli.console import JsonFlag, console, in_session, print_json
from tenantry.signup import slugs

app = typer.Typer(help="Tenant slugs.", no_args_is_help=True)


@app.command("check")
def check(slug: str, as_json: JsonFlag = False) -> None:
    """Whether a slug can be had, and if not, what holds it (exit 1 unless free)."""
    state = in_session(lambda s: slugs.check(s, slug))
    if as_json:
        print_json(dataclasses.asdict(state))
    else:
        holder = f" [{state.holder}]" if state.holder else ""
        console.print(f"{slug}: {state.state}{holder}: {state.detail}", highlight=False)
    if state.state != "free":
        raise typer.Exit(1)
