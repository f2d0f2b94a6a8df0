"""Secrets shown once and stored as an HMAC-SHA256 keyed by the server secret.

A database leak then reveals no usable secret, and lookups stay exact-match on
the digest (unlike a slow password hash, which cannot be indexed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence


def hash_secret(raw: str, key: bytes) -> str:
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def new_secret(key: bytes, *, prefix: str = "", nbytes: int = 32) -> tuple[str, str]:
    """Return `(raw, digest)`: hand `raw` to the caller once, store only `digest`."""
    raw = prefix + secrets.token_urlsafe(nbytes)
    return raw, hash_secret(raw, key)


def digests(raw: str, keys: Sequence[bytes]) -> list[str]:
    """`raw`'s digest under each key, the current first: what a lookup matches after the
    server secret was rotated."""
    return [hash_secret(raw, key) for key in keys]


def matching(raw: str, digest: str | None, keys: Sequence[bytes]) -> str | None:
    """The digest of `raw` that equals `digest` under one of `keys` (constant-time), or None."""
    if digest is None:
        return None
    for candidate in digests(raw, keys):
        if hmac.compare_digest(candidate, digest):
            return candidate
    return None
