"""Secrets shown once and stored as an HMAC-SHA256 keyed by the server secret.

A database leak then reveals no usable secret, and lookups stay exact-match on
the digest (unlike a slow password hash, which cannot be indexed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def hash_secret(raw: str, key: bytes) -> str:
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def new_secret(key: bytes, *, prefix: str = "", nbytes: int = 32) -> tuple[str, str]:
    """Return `(raw, digest)`: hand `raw` to the caller once, store only `digest`."""
    raw = prefix + secrets.token_urlsafe(nbytes)
    return raw, hash_secret(raw, key)


def verify_secret(raw: str, digest: str, key: bytes) -> bool:
    return hmac.compare_digest(hash_secret(raw, key), digest)
