"""Structured logs: JSON in prod, a readable console in dev, secrets redacted on the way out.

Request-scoped values (`request_id`, `trace_id`, `tenant_id`, `user_id`) live in
structlog's context variables, bound by the request middleware. Standard-library
loggers (uvicorn, alembic) go through the same processors, redaction included.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
_HANDLER_NAME = "tenantry"

_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "code",
        "cookie",
        "otp",
        "password",
        "secret",
        "set-cookie",
        "token",
    }
)
_SENSITIVE_SUFFIXES = ("_token", "_secret", "_password", "_key")

# Values that look like our secrets wherever they appear: integration keys,
# JWTs, bearer credentials, and secret-bearing query parameters in URLs.
_SECRET_PATTERNS = (
    # Keys, continuation, refresh, hand-off and console tokens; a key's display prefix
    # (tnt_sk_ and four characters) stays readable. Webhook signing secrets.
    re.compile(r"tnt_(?:sk|ct|rt|ac|cs)_[A-Za-z0-9_\-]{12,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=]{20,}"),
    re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/]+=*"),
    re.compile(r"(?i)([?&](?:token|code|secret|key)=)[^&\s\"']+"),
)


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SENSITIVE_KEYS or lowered.endswith(_SENSITIVE_SUFFIXES)


# Whatever any pattern above needs to match: one search tells most text (every access
# log line) that it holds nothing to mask, instead of four substitutions.
_MAY_HOLD_SECRET = re.compile(r"tnt_|whsec_|eyJ|(?i:bearer)|(?i:[?&](?:token|code|secret|key)=)")


def _scrub_text(text: str) -> str:
    if _MAY_HOLD_SECRET.search(text) is None:
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def redact(value: Any) -> Any:
    """Return `value` with sensitive keys blanked and secret-shaped strings masked."""
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _is_sensitive(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return redact(event_dict)  # type: ignore[no-any-return]


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_processor,
    ]


def build_formatter(json: bool) -> structlog.stdlib.ProcessorFormatter:
    # Plain tracebacks: rich ones print local variables, which may hold secrets.
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        # Tracebacks become text only here, so they are redacted once more.
        final += [structlog.processors.format_exc_info, redact_processor]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[*final, renderer],
    )


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(build_formatter(json))
    root = logging.getLogger()
    # Replace only our own handler: others (a test's capture, a host's) stay.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    # Our middleware writes the access log; uvicorn's own would repeat it unredacted.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every context it opens, health checks included.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def current_trace_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("trace_id")
    return value if isinstance(value, str) else None


def bind_job_context(
    *, job_id: str, kind: str, tenant_id: str | None, trace_id: str | None
) -> None:
    """What every log line of a job's attempt carries: the job, its tenant, and the trace of
    the request that enqueued it (a fresh one for the platform's own scheduled work)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        job_id=job_id, kind=kind, tenant_id=tenant_id, trace_id=trace_id or secrets.token_hex(16)
    )
