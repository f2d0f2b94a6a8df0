"""The `notify_host` step: a signed POST to the host application's provisioning endpoint.

Signed like every Tenantry webhook, per Standard Webhooks (`webhook-id`,
`webhook-timestamp`, `webhook-signature`), so the host verifies it with the same
library as its tenants' webhooks; the `webhook-id` names the run's step (also sent
as `Idempotency-Key`), so a repeated call after a crash can be recognised by the host.
The secret is `TENANTRY_PROVISIONING_WEBHOOK_SECRET` (a `whsec_…` value; any other
text is taken as the key's bytes), by default one derived from the server secret.
2xx succeeds, 5xx, 429 and timeouts are retried, other 4xx go to review.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx

from tenantry.config import Settings
from tenantry.datadir import server_secret
from tenantry.provisioning.steps import StepContext, StepNeedsReview, StepRetryable, step
from tenantry.webhook.signing import PREFIX, signed_headers


def webhook_secret(settings: Settings) -> str:
    """The `whsec_…` secret the host verifies with."""
    configured = settings.provisioning_webhook_secret
    if configured and configured.startswith(PREFIX):
        return configured
    key = (
        configured.encode()
        if configured
        else hmac.new(server_secret(settings), b"provisioning-webhook", hashlib.sha256).digest()
    )
    return PREFIX + base64.b64encode(key).decode()


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
    call_id = f"{signup.id}:notify_host"
    headers = {
        **signed_headers(call_id, body, [webhook_secret(settings)]),
        "Idempotency-Key": call_id,
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
