"""Values that must wait in the database until a worker uses them (a code to mail), sealed.

AES-256-GCM under a key derived from the server secret: a database reader
learns nothing, and whoever holds the secret can open the value exactly until
the row's sealed column is erased.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


def _key(server_secret: bytes, purpose: str) -> bytes:
    return hashlib.sha256(
        b"tenantry-seal\x00" + purpose.encode() + b"\x00" + server_secret
    ).digest()


def seal(value: Any, server_secret: bytes, purpose: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    box = AESGCM(_key(server_secret, purpose)).encrypt(
        nonce, json.dumps(value).encode(), purpose.encode()
    )
    return base64.urlsafe_b64encode(nonce + box).decode()


def unseal(sealed: str, keys: Sequence[bytes], purpose: str) -> Any:
    """Open with the first of `keys` (the current server secret, then previous ones) that
    sealed it; InvalidTag when none did."""
    raw = base64.urlsafe_b64decode(sealed)
    nonce, box = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    for key in keys[:-1]:
        try:
            return json.loads(AESGCM(_key(key, purpose)).decrypt(nonce, box, purpose.encode()))
        except InvalidTag:
            continue
    return json.loads(AESGCM(_key(keys[-1], purpose)).decrypt(nonce, box, purpose.encode()))


def sealed_under(sealed: str, key: bytes, purpose: str) -> bool:
    """Whether `key` opens the value (the doctor counts what still needs a previous key)."""
    try:
        unseal(sealed, [key], purpose)
    except InvalidTag:
        return False
    return True
