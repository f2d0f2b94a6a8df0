"""The data dir: created on first start, home of the embedded database and dev-only secrets.

In dev, a server secret and an Ed25519 signing key are generated here once and
reused; in prod they come from settings and nothing secret is written to disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenantry.auth.jwt import private_pem
from tenantry.config import Settings


def ensure_data_dir(settings: Settings) -> Path:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings.data_dir


# These files never change while a process runs, and the server secret is read
# by every request that hashes one: read each once.
_read: dict[Path, bytes] = {}


def _read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes, written from `make()` first if it does not exist (first writer wins).

    The content is written whole to a temporary file and then hard-linked into place, which
    fails if the name exists: a process starting beside another never reads a half-written
    secret, and the loser of the race reads the winner's.
    """
    if path in _read:
        return _read[path]
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(make())
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    content = path.read_bytes()
    _read[path] = content
    return content


def _new_signing_key() -> bytes:
    return private_pem(Ed25519PrivateKey.generate())


def server_secret(settings: Settings) -> bytes:
    """The HMAC key for stored secret digests."""
    if settings.secret_key:
        return settings.secret_key.encode()
    return _read_or_create(
        settings.data_dir.resolve() / "secret.key", lambda: secrets.token_urlsafe(48).encode()
    )


def secret_keys(settings: Settings) -> tuple[bytes, ...]:
    """The current server secret first, then the previous ones (TENANTRY_PREVIOUS_SECRET_KEYS):
    what a stored digest or sealed value is checked against after a rotation."""
    return (server_secret(settings), *(key.encode() for key in settings.previous_secret_keys))


def key_fingerprint(key: bytes) -> str:
    """Which key made a stored value, without telling anything about the key."""
    return hashlib.sha256(b"tenantry-key-fingerprint\x00" + key).hexdigest()[:16]


def signing_key_pem(settings: Settings) -> bytes:
    if settings.signing_key:
        return settings.signing_key.encode()
    return _read_or_create(settings.data_dir.resolve() / "keys" / "signing.pem", _new_signing_key)
