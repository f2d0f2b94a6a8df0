"""The `tenantry` command line."""

from __future__ import annotations

import typer

from tenantry.cli import server, token
from tenantry.cli.migrate import migrate

app = typer.Typer(
    name="tenantry",
    help="Tenantry: onboarding and tenant-lifecycle control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(server.up)
app.command()(server.serve)
app.command()(migrate)
app.add_typer(token.app, name="token")
