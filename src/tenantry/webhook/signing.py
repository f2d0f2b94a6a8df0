"""Endpoint secrets and the Standard Webhooks signature of a delivery.

A secret is `whsec_` + base64 of 32 random bytes, shown once. It signs every
request, so it is kept sealed (tenantry.kit.sealed) rather than as a digest.
During a rotation's grace the previous secret signs too: `webhook-signature`
then holds two space-separated `v1,…` values and a receiver still configured
with either one verifies (as Svix does).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from tenantry.kit.sealed import seal, sealed_under, unseal

PREFIX = "whsec_"
SECRET_BYTES = 32
SEAL_PURPOSE = "webhook-secret"
CONTENT_TYPE = "application/json"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal_secret(secret: str, server_secret: bytes) -> str:
    return seal(secret, server_secret, SEAL_PURPOSE)


def open_secret(sealed: str, keys: Sequence[bytes]) -> str:
    secret: str = unseal(sealed, keys, SEAL_PURPOSE)
    return secret


def sealed_under_current(sealed: str, keys: Sequence[bytes]) -> bool:
    return sealed_under(sealed, keys[0], SEAL_PURPOSE)


def signed_headers(
    message_id: str, body: bytes, secrets_: Sequence[str], *, at: float | None = None
) -> dict[str, str]:
    """The request's headers. The timestamp is the wall clock's: it is what receivers
    compare with their own clock to refuse replays."""
    timestamp = int(time.time() if at is None else at)
    moment = datetime.fromtimestamp(timestamp, UTC)
    signatures = " ".join(Webhook(secret).sign(message_id, moment, body) for secret in secrets_)
    return {
        "content-type": CONTENT_TYPE,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
        "user-agent": "Tenantry-Webhooks/1",
    }
