"""`tenantry mail`: the outbox, for "I never got the code" tickets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenantry.cli.console import JsonFlag, in_session, print_json, show
from tenantry.mail import service
from tenantry.models import MailMessage, MailStatus

app = typer.Typer(help="Outgoing mail.", no_args_is_help=True)


def mail_dict(message: MailMessage) -> dict[str, Any]:
    # Never the sealed secrets: only whether some are still waiting to be sent.
    return {
        "id": message.id,
        "to": message.to_address,
        "template": message.template,
        "subject": message.subject,
        "status": message.status,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "tenant_id": message.tenant_id,
        "message_id": message.message_id,
        "has_sealed_secrets": message.sealed_secrets is not None,
        "created_at": message.created_at,
        "sent_at": message.sent_at,
    }


@app.command("list")
def list_(
    to: Annotated[str | None, typer.Option(help="Only mail to this address.")] = None,
    status: Annotated[MailStatus | None, typer.Option(help="Only mail in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The newest messages first."""
    found = in_session(lambda s: service.list_messages(s, to=to, status=status, limit=limit))
    columns = ["id", "to", "template", "status", "attempts", "created_at", "sent_at"]
    show([mail_dict(m) for m in found], columns, as_json=as_json)


@app.command("show")
def show_(mail_id: str, as_json: JsonFlag = False) -> None:
    """Every field of one message (never its secrets)."""
    row = mail_dict(in_session(lambda s: service.get_message(s, mail_id)))
    if as_json:
        print_json(row)
        return
    show([{"field": k, "value": v} for k, v in row.items()], ["field", "value"], as_json=False)
