"""The mail outbox: queue a message in the caller's transaction; read it back for operators."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.datadir import secret_keys, server_secret
from tenantry.errors import ValidationFailed
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.kit.sealed import seal, unseal
from tenantry.mail.rendering import Rendered, render_subject
from tenantry.models import MailMessage, MailStatus
from tenantry.worker.queue import WAITED_ON, enqueue

SEAL_PURPOSE = "mail-secrets"
SEND_TASK = "mail.send"


async def queue_mail(
    session: AsyncSession,
    settings: Settings,
    *,
    to: str,
    template: str,
    context: dict[str, Any],
    secrets: dict[str, Any] | None = None,
    tenant_id: str | None = None,
    waited_on: bool = False,
) -> MailMessage:
    """Write the message and its `mail.send` job; `secrets` are sealed, never stored as text.
    A mail someone is `waited_on` for (a code to type in) is sent ahead of the backlog.

    Mail to a canary address gets no job: it is never sent, and waits, sealed, for the canary
    to read it back (`GET /v1/internal/canary/messages`)."""
    message_id = new_id("msg")
    context = {"product_name": settings.product_name, **context}
    # The subject is rendered now, without secrets: it is shown in `mail list`.
    subject_context = {**context, **{key: "…" for key in secrets or {}}}
    message = MailMessage(
        id=message_id,
        tenant_id=tenant_id,
        # Unique already, and short enough that no header folding splits it.
        message_id=f"<{message_id}@{urlparse(settings.public_url).hostname or 'tenantry'}>",
        to_address=to,
        template=template,
        subject=render_subject(template, subject_context),
        context=context,
        sealed_secrets=seal(secrets, server_secret(settings), SEAL_PURPOSE) if secrets else None,
        status=MailStatus.PENDING,
        attempts=0,
        created_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    if settings.is_canary_address(to):
        return message
    await enqueue(
        session,
        SEND_TASK,
        {"message_id": message_id},
        tenant_id=tenant_id,
        queue="mail",
        priority=WAITED_ON if waited_on else 0,
    )
    return message


def compose(message: MailMessage, rendered: Rendered, sender: str) -> EmailMessage:
    """The message as it leaves: a transactional mail (no List-Unsubscribe: it is not a
    list), with no internal header; the outbox id travels only in the Message-ID."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to_address
    email["Subject"] = rendered.subject
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = message.message_id  # its local part is the outbox id
    # RFC 3834: written by a program, so vacation and out-of-office replies stay away.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(rendered.text)
    email.add_alternative(rendered.html, subtype="html")
    return email


async def get_message(session: AsyncSession, message_id: str) -> MailMessage:
    return await get_or_404(session, MailMessage, message_id, tenant_id=ANY_TENANT)


async def list_messages(
    session: AsyncSession,
    *,
    to: str | None = None,
    status: MailStatus | None = None,
    limit: int = 50,
) -> Sequence[MailMessage]:
    query = select(MailMessage).order_by(MailMessage.created_at.desc(), MailMessage.id).limit(limit)
    if to is not None:
        query = query.where(MailMessage.to_address == to)
    if status is not None:
        query = query.where(MailMessage.status == status.value)
    return (await session.execute(query)).scalars().all()


def not_canary(settings: Settings) -> ColumnElement[bool]:
    """Mail that is meant to leave: the canary's waits in the outbox by design."""
    return MailMessage.to_address.not_like(f"%@{settings.canary_email_domain}")


async def backlog(session: AsyncSession, settings: Settings) -> int:
    """Mail waiting in the outbox to be sent."""
    pending = select(func.count()).where(
        MailMessage.status == MailStatus.PENDING, not_canary(settings)
    )
    return int((await session.execute(pending)).scalar_one())


async def canary_messages(
    session: AsyncSession, settings: Settings, to: str
) -> list[dict[str, Any]]:
    """The mail held for a canary address, newest first, its secrets opened: what the canary
    would have read in an inbox. Refused for any other address."""
    if not settings.is_canary_address(to):
        raise ValidationFailed(
            "Only mail to the canary domain can be read here",
            errors=[{"field": "to", "message": f"not at {settings.canary_email_domain}"}],
        )
    messages = await list_messages(session, to=to.lower(), limit=20)
    keys = secret_keys(settings)
    return [
        {
            "id": message.id,
            "template": message.template,
            "subject": message.subject,
            "created_at": message.created_at,
            "secrets": unseal(message.sealed_secrets, keys, SEAL_PURPOSE)
            if message.sealed_secrets
            else {},
        }
        for message in messages
    ]
