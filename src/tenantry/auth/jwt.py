"""EdDSA (Ed25519) access tokens: signing, verification and the public JWKS.

One key signs; others may only verify (keys being rotated in or out, each
until its `verify_until`). Each key is named by its RFC 7638 thumbprint, sent
as `kid`, so a verifier picks the right key without trying them all. The key
set can be swapped while the process runs (see tenantry.auth.trust).

Verified claims are cached per token string: an Ed25519 verification costs
about as much as the rest of a small request, and clients send the same
token many times. A cached token is still checked for expiry and for its key
still being trusted; revocation is checked by the caller on every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from tenantry.errors import TokenExpired, Unauthenticated
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id

ALGORITHM = "EdDSA"
_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


class Audience(StrEnum):
    PLATFORM = "platform"
    TENANT = "tenant"
    INTEGRATION = "integration"
    INTERNAL = "internal"


ROLES_BY_AUDIENCE: dict[Audience, frozenset[str]] = {
    Audience.PLATFORM: frozenset({"admin", "support"}),
    Audience.TENANT: frozenset({"owner", "admin", "member"}),
    Audience.INTEGRATION: frozenset(),
    Audience.INTERNAL: frozenset({"service"}),
}


def _thumbprint(public: Ed25519PublicKey) -> str:
    jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    public: Ed25519PublicKey
    verify_until: datetime | None = None  # a retired key's last moment of trust

    @classmethod
    def of(cls, public: Ed25519PublicKey, verify_until: datetime | None = None) -> VerificationKey:
        return cls(_thumbprint(public), public, verify_until)

    def trusted(self) -> bool:
        return self.verify_until is None or utcnow() < self.verify_until

    def jwk(self) -> dict[str, Any]:
        return {
            **OKPAlgorithm.to_jwk(self.public, as_dict=True),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


def _load_public_keys(pem: bytes) -> list[Ed25519PublicKey]:
    keys = []
    for block in _PEM_BLOCK.findall(pem):
        key = (
            serialization.load_pem_private_key(block, password=None).public_key()
            if b"PRIVATE" in block
            else serialization.load_pem_public_key(block)
        )
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("verification keys must be Ed25519")
        keys.append(key)
    return keys


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError("the signing key must be an Ed25519 private key")
    return private


def private_pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class KeySet:
    """The key that signs, and every key that verifies (the signing one included)."""

    private: Ed25519PrivateKey
    verifying: dict[str, VerificationKey] = field(default_factory=dict)

    @property
    def signing_kid(self) -> str:
        return _thumbprint(self.private.public_key())

    @property
    def fingerprint(self) -> tuple[str, frozenset[tuple[str, datetime | None]]]:
        return self.signing_kid, frozenset((k.kid, k.verify_until) for k in self.verifying.values())

    @classmethod
    def of(cls, private: Ed25519PrivateKey, others: Iterable[VerificationKey] = ()) -> KeySet:
        signing = VerificationKey.of(private.public_key())
        return cls(private, {k.kid: k for k in [*others, signing]})


VERIFIED_CACHE_SIZE = 10_000


# RFC 9068; tokens minted before it carry "JWT" and still verify.
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
FIRST_PARTY_CLIENT = "tenantry"  # the client_id of tokens Tenantry issues to people


class TokenIssuer:
    """Mints and verifies access tokens for one deployment (its issuer URL)."""

    def __init__(self, signing_pem: bytes, *, issuer: str, verification_pem: bytes = b"") -> None:
        self.issuer = issuer
        self.configured_verifiers = [
            VerificationKey.of(k) for k in _load_public_keys(verification_pem)
        ]
        self.configured_private = load_private_key(signing_pem)
        self._verified: OrderedDict[str, tuple[VerificationKey, dict[str, Any]]] = OrderedDict()
        self._keyset = KeySet.of(self.configured_private, self.configured_verifiers)

    def use(self, keys: KeySet) -> None:
        """Sign and verify with `keys` from now on (a rotation seen by this process)."""
        if keys.fingerprint != self._keyset.fingerprint:
            self._verified.clear()
        self._keyset = keys

    @property
    def signing_kid(self) -> str:
        return self._keyset.signing_kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self._keyset.verifying.values() if k.trusted()]}

    def mint(
        self,
        *,
        subject: str,
        audience: Audience,
        ttl: timedelta,
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        tenant_id: str | None = None,
        client_id: str = FIRST_PARTY_CLIENT,
    ) -> tuple[str, dict[str, Any]]:
        """Return `(token, claims)`: a JWT access token as RFC 9068 profiles it (`typ: at+jwt`,
        `client_id`: the integration key for integrations, Tenantry itself otherwise)."""
        now = utcnow()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience.value,
            "client_id": client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": new_id("jti"),
            "roles": sorted(roles),
            "scope": " ".join(sorted(scopes)),
        }
        if tenant_id is not None:
            claims["tenant_id"] = tenant_id
        keys = self._keyset
        token = jwt.encode(
            claims,
            keys.private,
            algorithm=ALGORITHM,
            headers={"kid": keys.signing_kid, "typ": ACCESS_TOKEN_TYPE},
        )
        return token, claims

    def verify(self, token: str, audiences: Iterable[Audience] = tuple(Audience)) -> dict[str, Any]:
        """Return the verified claims, or raise `Unauthenticated` / `TokenExpired`."""
        cached = self._verified.get(token)
        if cached is None:
            key, claims = self._verify_signature(token)
            self._verified[token] = (key, claims)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        else:
            key, claims = cached
        if not key.trusted():
            raise Unauthenticated("The token's signing key is no longer trusted")
        if claims["aud"] not in {a.value for a in audiences}:
            raise Unauthenticated("The token is not meant for this service")
        if claims["exp"] <= utcnow().timestamp():
            raise TokenExpired()
        return claims

    def _verify_signature(self, token: str) -> tuple[VerificationKey, dict[str, Any]]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keyset.verifying.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthenticated("The token was not signed by a key of this deployment")
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=[a.value for a in Audience],
                issuer=self.issuer,
                # Time is checked below against the shared clock, which tests move.
                options={
                    "require": ["exp", "iat", "sub", "aud", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("The token is not meant for this service") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("The token is not valid") from exc
        return key, claims
