"""`tenantry db create-roles` and `tenantry rls verify`: the least-privilege set-up on
PostgreSQL and the emergency check that tenant isolation holds."""

from __future__ import annotations

import asyncio

import typer
from sqlalchemy.engine import make_url

from tenantry import rls, schema
from tenantry.cli.console import EXIT_FINDING, JsonFlag, console, fail, print_json, show
from tenantry.config import Settings

app = typer.Typer(help="Database roles.", no_args_is_help=True)
rls_app = typer.Typer(help="Row-level security (PostgreSQL).", no_args_is_help=True)


@app.command("create-roles")
def create_roles() -> None:
    """Create the application's role from TENANTRY_DATABASE_URL (user and password), connected
    as TENANTRY_MIGRATION_DATABASE_URL: login only, no superuser, no BYPASSRLS, owns nothing.
    Run `tenantry migrate` next: it grants the role its rights on the tables."""
    settings = Settings()
    if settings.migration_database_url is None:
        fail("set TENANTRY_MIGRATION_DATABASE_URL (the owner) beside TENANTRY_DATABASE_URL")
    try:
        role = asyncio.run(
            schema.create_app_role(settings.migration_database_url, settings.resolved_database_url)
        )
    except ValueError as exc:
        fail(str(exc))
    console.print(f"role {role} is ready; now run `tenantry migrate` to grant it the tables")


@rls_app.command()
def verify(as_json: JsonFlag = False) -> None:
    """RLS and FORCE on every tenant table, the application role's privileges, and a live
    probe; exit 1 naming what is wrong."""
    settings = Settings()
    if make_url(settings.resolved_database_url).get_backend_name() != "postgresql":
        console.print("row-level security is PostgreSQL's: on SQLite nothing to verify")
        return
    report = asyncio.run(rls.verify(settings.resolved_database_url))
    if as_json:
        print_json(report.to_dict())
    else:
        rows = [{**vars(t), "protected": t.protected} for t in report.tables]
        show(rows, ["table", "column", "rls", "force", "policy", "protected"], as_json=False)
        role = report.role
        console.print(
            f"application role {role['name']}: superuser={role['superuser']} "
            f"bypassrls={role['bypassrls']} owns={len(role['owns'])} tables"
        )
        for finding in report.findings:
            console.print(f"[bold red]finding:[/] {finding}", highlight=False)
        if not report.findings:
            console.print("tenant isolation holds: policies, role and live probe")
    if report.findings:
        raise typer.Exit(EXIT_FINDING)
