"""The `tenantry` command line."""

from __future__ import annotations

import typer

from tenantry.cli import (
    abuse,
    audit,
    backup,
    canary,
    db,
    doctor,
    flags,
    incidents,
    invitations,
    jobs,
    keys,
    mail,
    operators,
    provisioning,
    schedules,
    server,
    signing_keys,
    signup,
    slugs,
    tenants,
    token,
    webhooks,
)
from tenantry.cli.denials import denials
from tenantry.cli.migrate import migrate
from tenantry.cli.observe import funnel, integrity_app, slo_app
from tenantry.cli.worker import worker
from tenantry.logging import configure_logging

app = typer.Typer(
    name="tenantry",
    help="Tenantry: onboarding and tenant-lifecycle control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _logging() -> None:
    """Log lines go to stderr, redacted, warnings and up: stdout is for what a command prints
    (a token, `--json`). The servers and the worker raise the level to their setting."""
    configure_logging(json=False, level="WARNING")


app.command()(server.up)
app.command()(server.serve)
app.command()(worker)
app.command()(migrate)
app.add_typer(token.app, name="token")
app.add_typer(token.app, name="tokens", hidden=True)
app.add_typer(signing_keys.app, name="signing-keys")
app.add_typer(jobs.app, name="jobs")
app.add_typer(jobs.queues_app, name="queues")
app.add_typer(schedules.app, name="schedules")
app.add_typer(mail.app, name="mail")
app.add_typer(signup.sessions_app, name="sessions")
app.add_typer(signup.promos_app, name="promos")
app.add_typer(tenants.app, name="tenants")
app.add_typer(provisioning.app, name="provisioning")
app.add_typer(keys.app, name="keys")
app.add_typer(invitations.app, name="invitations")
app.add_typer(db.app, name="db")
app.add_typer(db.rls_app, name="rls")
app.command()(signup.purge)
app.command()(denials)
app.command()(funnel)
app.add_typer(canary.app, name="canary")
app.add_typer(slo_app, name="slo")
app.add_typer(integrity_app, name="integrity")
app.add_typer(audit.app, name="audit")
app.add_typer(flags.flags_app, name="flags")
app.add_typer(flags.degraded_app, name="degraded")
app.add_typer(slugs.app, name="slugs")
app.add_typer(abuse.abuse_app, name="abuse")
app.add_typer(abuse.ratelimit_app, name="ratelimit")
app.command()(backup.backup)
app.command()(backup.restore)
app.command()(doctor.doctor)
app.add_typer(incidents.app, name="incident")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(operators.app, name="operators")
