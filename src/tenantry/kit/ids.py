"""Prefixed random ids (`ten_…`, `usr_…`): 128 bits of randomness, URL-safe, sortable by nothing."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LENGTH = 25  # 36**25 > 2**128


def new_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
