"""Signing-key rotation: add (published, verifies only), promote (signs), retire (verifies until
the last token it signed has expired, then drops out of the JWKS).

Keys live in the database, sealed under the server secret, so every API and
worker process sees the same set (tenantry.auth.trust reloads it). Until the
first `add`, the configured key (`TENANTRY_SIGNING_KEY` or the data dir's)
signs; the first `add` imports it as the active key, so tokens it signed keep
verifying through the rotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import signing_key_transitions as transitions
from tenantry.auth.jwt import KeySet, VerificationKey, load_private_key, private_pem
from tenantry.auth.revision import bump_revision
from tenantry.auth.signing_key_transitions import KeyStateConflict
from tenantry.config import Settings
from tenantry.datadir import secret_keys, server_secret, signing_key_pem
from tenantry.kit.clock import utcnow
from tenantry.kit.repository import get_or_404
from tenantry.kit.sealed import seal, unseal
from tenantry.models import KeyStatus, SigningKey

SEAL_PURPOSE = "signing-key"
# How long verifiers may cache the JWKS (its Cache-Control max-age): a published key
# must have been visible this long before it signs, or a verifier would not know it.
JWKS_MAX_AGE = timedelta(minutes=5)


def _row(private: Ed25519PrivateKey, settings: Settings, status: KeyStatus) -> SigningKey:
    now = utcnow()
    return SigningKey(
        kid=VerificationKey.of(private.public_key()).kid,
        sealed_private_key=seal(
            private_pem(private).decode(), server_secret(settings), SEAL_PURPOSE
        ),
        status=status.value,
        created_at=now,
        activated_at=now if status is KeyStatus.ACTIVE else None,
    )


async def list_keys(session: AsyncSession) -> Sequence[SigningKey]:
    return (
        (await session.execute(select(SigningKey).order_by(SigningKey.created_at))).scalars().all()
    )


async def add_key(session: AsyncSession, settings: Settings) -> SigningKey:
    """A new key, published in the JWKS; it signs nothing until promoted."""
    if not (await session.execute(select(func.count()).select_from(SigningKey))).scalar_one():
        configured = load_private_key(signing_key_pem(settings))
        session.add(_row(configured, settings, KeyStatus.ACTIVE))
    key = _row(Ed25519PrivateKey.generate(), settings, KeyStatus.PUBLISHED)
    session.add(key)
    await bump_revision(session)
    return key


async def _get(session: AsyncSession, kid: str) -> SigningKey:
    return await get_or_404(session, SigningKey, kid, for_update=True)


def promotable_at(key: SigningKey) -> datetime:
    return key.created_at + JWKS_MAX_AGE


async def promote_key(session: AsyncSession, kid: str, *, force: bool = False) -> SigningKey:
    """Make a published key the one that signs; the previous one stays published (roll back by
    promoting it again) until retired."""
    key = await _get(session, kid)
    if key.status != KeyStatus.PUBLISHED:
        raise KeyStateConflict(f"{kid} is {key.status}; only a published key can be promoted")
    if not force and utcnow() < promotable_at(key):
        raise KeyStateConflict(
            f"{kid} was published at {key.created_at:%H:%M:%S} UTC and verifiers cache the JWKS "
            f"for {JWKS_MAX_AGE.seconds} s: promote it after {promotable_at(key):%H:%M:%S} UTC "
            "(or with --force if no verifier caches it)"
        )
    await transitions.activate(session, key)
    await bump_revision(session)
    return key


async def retire_key(session: AsyncSession, settings: Settings, kid: str) -> SigningKey:
    """Stop trusting a key once every token it signed has expired (at once if it never signed)."""
    key = await _get(session, kid)
    if key.status == KeyStatus.ACTIVE:
        raise KeyStateConflict(f"{kid} signs tokens now: promote another key first")
    if key.status == KeyStatus.RETIRED:
        raise KeyStateConflict(f"{kid} is retired already")
    last_signed = key.deactivated_at
    verify_until = utcnow() if last_signed is None else last_signed + settings.max_token_ttl
    await transitions.retire(session, key, verify_until)
    await bump_revision(session)
    return key


async def load_keyset(
    session: AsyncSession, settings: Settings, also_verify: Iterable[VerificationKey] = ()
) -> KeySet | None:
    """The key set of the database, or None while it holds no key (the configured key signs)."""
    rows = (await session.execute(select(SigningKey))).scalars().all()
    active = [row for row in rows if row.status == KeyStatus.ACTIVE]
    if not active:
        return None
    keys = secret_keys(settings)

    def private(row: SigningKey) -> Ed25519PrivateKey:
        return load_private_key(unseal(row.sealed_private_key, keys, SEAL_PURPOSE).encode())

    verifying = [
        VerificationKey.of(private(row).public_key(), row.verify_until)
        for row in rows
        if row.status != KeyStatus.ACTIVE
    ]
    return KeySet.of(private(active[0]), [*also_verify, *verifying])
