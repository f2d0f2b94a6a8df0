"""ASGI middleware: request context (ids, trace, access log, latency) and the body reader.

Both are plain ASGI so that context variables they bind are visible to the
endpoint and its dependencies, and so that no response body is buffered.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry import storable
from tenantry.errors import ValidationFailed, problem
from tenantry.metrics import HTTP_REQUEST_DURATION

log = structlog.get_logger("tenantry.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_QUIET_PREFIXES = ("/health", "/metrics")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def trace_id_from(traceparent: str | None) -> str:
    """The W3C trace id of the caller's `traceparent`, or a new one."""
    if traceparent and (match := _TRACEPARENT.match(traceparent.strip().lower())):
        trace_id = match.group(1)
        if trace_id != "0" * 32:
            return trace_id
    return secrets.token_hex(16)


# A request about one tenant, by its path: its every log line names the tenant.
_TENANT_PATH = re.compile(r"^/v1/(?:admin/)?tenants/([^/]+)")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, trace_id=trace_id_from(_header(scope, b"traceparent"))
        )
        if tenant := _TENANT_PATH.match(scope["path"]):
            structlog.contextvars.bind_contextvars(tenant_id=tenant.group(1))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            HTTP_REQUEST_DURATION.labels(template, scope["method"], f"{status // 100}xx").observe(
                elapsed
            )
            emit = log.debug if scope["path"].startswith(_QUIET_PREFIXES) else log.info
            emit(
                "http_request",
                method=scope["method"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


class BodyReaderMiddleware:
    """Read the whole request body, within a deadline and a size cap, before the application
    sees the request.

    No dependency runs, so no database session, SQLite writer lock or pooled connection
    is taken, while a client is still sending: a client that trickles its body ties up
    only its own socket, and gets `408 REQUEST_TIMEOUT` when the deadline passes. A body
    over the cap is `413 PAYLOAD_TOO_LARGE`, refused before it is read when it says so
    in Content-Length; a body that is neither JSON nor a form (nor says what it is) is
    `415 UNSUPPORTED_MEDIA_TYPE`; text that storage cannot hold, anywhere in the path,
    query or body, is `400 VALIDATION` (tenantry.storable).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(
                send, 413, "PAYLOAD_TOO_LARGE", f"The body exceeds {self.max_bytes} bytes"
            )
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            seconds = f"{self.timeout_s:g}"
            await _refuse(
                send, 408, "REQUEST_TIMEOUT", f"The body did not arrive within {seconds} s"
            )
            return
        except _TooLarge:
            await _refuse(
                send, 413, "PAYLOAD_TOO_LARGE", f"The body exceeds {self.max_bytes} bytes"
            )
            return
        except _Disconnected:
            return
        media_type = _media_type(_header(scope, b"content-type"))
        if body and not _readable(media_type):
            detail = "Send the body as application/json or application/x-www-form-urlencoded"
            await _refuse(send, 415, "UNSUPPORTED_MEDIA_TYPE", detail)
            return
        try:
            _check_storable(scope, media_type, body)
        except storable.Unstorable as exc:
            errors = [{"field": exc.field, "message": exc.message}]
            refusal = ValidationFailed("One or more fields are not valid", errors=errors)
            await _send_problem(send, refusal.to_problem(), keep_alive=True)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # only a disconnect can come now
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


# What a route of this API reads: JSON (with `+json` types) and forms.
_READABLE = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _readable(media_type: str) -> bool:
    return media_type in _READABLE or media_type.endswith("+json")


def _check_storable(scope: Scope, media_type: str, body: bytes) -> None:
    """The path, the query and the body hold nothing storage cannot (tenantry.storable)."""
    storable.check_path(scope["path"])
    storable.check_query(scope["query_string"])
    if not body:
        return
    if media_type == "application/x-www-form-urlencoded":
        storable.check_form(body)
    elif media_type != "multipart/form-data":
        storable.check_json(body)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    """Answer a problem and close the connection: the rest of the body is not wanted."""
    await _send_problem(send, problem(status, code, detail), keep_alive=False)


async def _send_problem(send: Send, refusal: dict[str, Any], *, keep_alive: bool) -> None:
    body = json.dumps(refusal).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if not keep_alive:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body})
