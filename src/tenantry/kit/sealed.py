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
from typing import Any

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


def unseal(sealed: str, server_secret: bytes, purpose: str) -> Any:
    raw = base64.urlsafe_b64decode(sealed)
    nonce, box = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    return json.loads(AESGCM(_key(server_secret, purpose)).decrypt(nonce, box, purpose.encode()))
