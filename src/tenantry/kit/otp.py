"""One-time email codes: six digits, stored as an HMAC bound to what they unlock."""

from __future__ import annotations

import secrets

from tenantry.errors import TenantryError
from tenantry.kit.tokens import hash_secret


class OtpExpired(TenantryError):
    status, code, title = 410, "OTP_EXPIRED", "The code has expired"


class OtpLocked(TenantryError):
    status, code, title = 423, "OTP_LOCKED", "Too many wrong codes"


class OtpInvalid(TenantryError):
    status, code, title = 400, "OTP_INVALID", "The code is not right"


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def code_digest(server_secret: bytes, scope_id: str, code: str) -> str:
    # Bound to the session or challenge: the same code elsewhere hashes differently.
    return hash_secret(f"{scope_id}:{code}", server_secret)


def code_matches(server_secret: bytes, scope_id: str, code: str, digest: str | None) -> bool:
    return digest is not None and secrets.compare_digest(
        digest, code_digest(server_secret, scope_id, code)
    )
