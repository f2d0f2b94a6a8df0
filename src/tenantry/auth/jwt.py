"""EdDSA (Ed25519) access tokens: signing, verification and the public JWKS.

One key signs; others may only verify (keys being rotated in or out). Each key
is named by its RFC 7638 thumbprint, sent as `kid`, so a verifier picks the
right key without trying them all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
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

    @classmethod
    def of(cls, public: Ed25519PublicKey) -> VerificationKey:
        return cls(_thumbprint(public), public)

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


class TokenIssuer:
    """Mints and verifies access tokens for one deployment (its issuer URL)."""

    def __init__(self, signing_pem: bytes, *, issuer: str, verification_pem: bytes = b"") -> None:
        private = serialization.load_pem_private_key(signing_pem, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key")
        self._private = private
        self.issuer = issuer
        self.signing_key = VerificationKey.of(private.public_key())
        others = [VerificationKey.of(k) for k in _load_public_keys(verification_pem)]
        self._keys = {k.kid: k for k in [self.signing_key, *others]}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self._keys.values()]}

    def mint(
        self,
        *,
        subject: str,
        audience: Audience,
        ttl: timedelta,
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        tenant_id: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Return `(token, claims)`."""
        now = utcnow()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience.value,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": new_id("jti"),
            "roles": sorted(roles),
            "scope": " ".join(sorted(scopes)),
        }
        if tenant_id is not None:
            claims["tenant_id"] = tenant_id
        token = jwt.encode(
            claims, self._private, algorithm=ALGORITHM, headers={"kid": self.signing_key.kid}
        )
        return token, claims

    def verify(self, token: str, audiences: Iterable[Audience] = tuple(Audience)) -> dict[str, Any]:
        """Return the verified claims, or raise `Unauthenticated` / `TokenExpired`."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthenticated("The token was not signed by a key of this deployment")
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=[a.value for a in audiences],
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
        if claims["exp"] <= utcnow().timestamp():
            raise TokenExpired()
        return claims
