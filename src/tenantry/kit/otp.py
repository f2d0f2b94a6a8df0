"""One-time email codes: six digits, stored as an HMAC bound to what they unlock."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from tenantry.errors import TenantryError
from tenantry.kit.tokens import hash_secret, matching


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


def code_matches(keys: Sequence[bytes], scope_id: str, code: str, digest: str | None) -> str | None:
    """The stored digest when `code` is right under one of `keys` (current first), else None."""
    return matching(f"{scope_id}:{code}", digest, keys)
