"""The `mail.send` task: render, deliver, and record the outcome on the outbox row."""

from __future__ import annotations

from typing import Any

import structlog

from tenantry.datadir import secret_keys
from tenantry.kit.sealed import unseal
from tenantry.logging import redact
from tenantry.mail import transitions
from tenantry.mail.backends import PermanentMailError, build_backend
from tenantry.mail.rendering import render
from tenantry.mail.service import SEAL_PURPOSE, SEND_TASK, compose, get_message
from tenantry.metrics import MAIL_SENT
from tenantry.models import MailStatus
from tenantry.worker.registry import JobContext, NonRetryableError, registry

log = structlog.get_logger(__name__)


async def _record_failure(context: JobContext, message_id: str, error: str, *, final: bool) -> None:
    async with context.session() as session:
        message = await get_message(session, message_id)
        if final:
            await transitions.failed(session, message, context.attempt, error)
        else:
            message.attempts, message.last_error = context.attempt, error


@registry.task(SEND_TASK, max_attempts=10)
async def send_mail(context: JobContext) -> dict[str, Any]:
    """Idempotent: a message already sent is not sent again."""
    settings = context.settings
    message_id = context.payload["message_id"]
    async with context.session() as session:
        message = await get_message(session, message_id)
        if message.status != MailStatus.PENDING:
            return {"status": message.status, "skipped": True}
        values = dict(message.context)
        if message.sealed_secrets:
            values |= unseal(message.sealed_secrets, secret_keys(settings), SEAL_PURPOSE)
        email = compose(message, render(message.template, values), settings.mail_from)
        template = message.template
    try:
        await build_backend(settings).send(email)
    except Exception as exc:
        error = str(redact(f"{type(exc).__name__}: {exc}"))[:2000]
        final = isinstance(exc, PermanentMailError) or context.is_last_attempt
        await _record_failure(context, message_id, error, final=final)
        MAIL_SENT.labels(template, "failed" if final else "retry").inc()
        log.warning(
            "mail_failed",
            mail_id=message_id,
            template=template,
            attempt=context.attempt,
            final=final,
        )
        if final:
            raise NonRetryableError(error) from exc
        raise
    async with context.session() as session:
        await transitions.sent(session, await get_message(session, message_id), context.attempt)
    MAIL_SENT.labels(template, "sent").inc()
    log.info("mail_sent", mail_id=message_id, template=template, attempt=context.attempt)
    return {"status": MailStatus.SENT}
