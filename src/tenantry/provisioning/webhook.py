"""The `notify_host` step: a signed POST to the host application's provisioning endpoint.

Signature (like Stripe's): `X-Tenantry-Signature: t=<unix time>,v1=<hex HMAC-SHA256
of "<t>.<body>">` with the deployment's webhook secret; `Idempotency-Key` names the
run's step, so a repeated call after a crash can be recognised by the host.
2xx succeeds, 5xx, 429 and timeouts are retried, other 4xx go to review.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from tenantry.config import Settings
from tenantry.datadir import server_secret
from tenantry.kit.clock import utcnow
from tenantry.provisioning.steps import StepContext, StepNeedsReview, StepRetryable, step

SIGNATURE_HEADER = "X-Tenantry-Signature"
SIGNATURE_TOLERANCE_S = 300


def webhook_secret(settings: Settings) -> bytes:
    if settings.provisioning_webhook_secret:
        return settings.provisioning_webhook_secret.encode()
    return (
        hmac.new(server_secret(settings), b"provisioning-webhook", hashlib.sha256)
        .hexdigest()
        .encode()
    )


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: bytes, header: str, body: bytes, *, now: int) -> bool:
    """What a host application does with the request (also used by the tests)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > SIGNATURE_TOLERANCE_S:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


@step("notify_host", outside=True)
async def notify_host(context: StepContext) -> dict[str, Any]:
    settings, signup = context.settings, context.signup
    if not settings.provisioning_webhook_url:
        raise StepNeedsReview("missing setting TENANTRY_PROVISIONING_WEBHOOK_URL")
    body = json.dumps(
        {
            "event": "tenant.provisioning",
            "signup_id": signup.id,
            "tenant_id": signup.tenant_id,
            "slug": signup.slug,
            "plan": signup.plan,
            "org_name": signup.org_name,
        },
        sort_keys=True,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(webhook_secret(settings), int(utcnow().timestamp()), body),
        "Idempotency-Key": f"{signup.id}:notify_host",
    }
    timeout = settings.provisioning_webhook_timeout.total_seconds()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(
                settings.provisioning_webhook_url, content=body, headers=headers
            )
    except httpx.TransportError as exc:
        raise StepRetryable(f"host unreachable: {type(exc).__name__}") from exc
    if response.is_success:
        return {"status": response.status_code}
    if response.status_code >= 500 or response.status_code == 429:
        raise StepRetryable(f"host answered {response.status_code}")
    raise StepNeedsReview(f"host refused with {response.status_code}: {response.text[:200]}")
