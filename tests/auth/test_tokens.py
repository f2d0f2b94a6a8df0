"""Access tokens: EdDSA signatures, JWKS, expiry on the shared clock, verification-only keys."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience, TokenIssuer
from tenantry.config import Settings
from tenantry.errors import TokenExpired, Unauthenticated
from tenantry.kit.clock import clock

ISSUER = "https://tenantry.test"


def private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(private: bytes) -> bytes:
    key = serialization.load_pem_private_key(private, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(private_pem(), issuer=ISSUER)


def mint(issuer: TokenIssuer, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "subject": "usr_1",
        "audience": Audience.TENANT,
        "ttl": timedelta(minutes=15),
        "roles": ["owner"],
        "tenant_id": "ten_1",
    }
    token, _ = issuer.mint(**{**arguments, **overrides})  # type: ignore[arg-type]
    return token


class TestMintAndVerify:
    def test_claims_round_trip(self, issuer: TokenIssuer) -> None:
        claims = issuer.verify(mint(issuer, scopes=["jobs:read", "jobs:write"]))
        assert claims["iss"] == ISSUER and claims["sub"] == "usr_1" and claims["aud"] == "tenant"
        assert claims["tenant_id"] == "ten_1" and claims["roles"] == ["owner"]
        assert claims["scope"] == "jobs:read jobs:write"
        assert claims["exp"] - claims["iat"] == 900
        assert claims["jti"].startswith("jti_")

    def test_header_names_the_key_and_algorithm(self, issuer: TokenIssuer) -> None:
        header = pyjwt.get_unverified_header(mint(issuer))
        assert header["alg"] == "EdDSA"
        assert header["kid"] == issuer.signing_kid

    def test_expired_on_the_moved_clock(self, issuer: TokenIssuer) -> None:
        token = mint(issuer)
        clock.advance(timedelta(minutes=15, seconds=1))
        with pytest.raises(TokenExpired):
            issuer.verify(token)

    def test_audience_filter(self, issuer: TokenIssuer) -> None:
        with pytest.raises(Unauthenticated):
            issuer.verify(mint(issuer), audiences=[Audience.PLATFORM])

    def test_tampered_payload(self, issuer: TokenIssuer) -> None:
        header, payload, signature = mint(issuer).split(".")
        forged = mint(issuer, roles=["admin"]).split(".")[1]
        with pytest.raises(Unauthenticated):
            issuer.verify(f"{header}.{forged}.{signature}")
        assert payload != forged

    def test_foreign_key_refused(self, issuer: TokenIssuer) -> None:
        stranger = TokenIssuer(private_pem(), issuer=ISSUER)
        with pytest.raises(Unauthenticated):
            issuer.verify(mint(stranger))

    def test_other_issuer_refused(self) -> None:
        pem = private_pem()
        elsewhere = TokenIssuer(pem, issuer="https://elsewhere.test")
        with pytest.raises(Unauthenticated):
            TokenIssuer(pem, issuer=ISSUER).verify(mint(elsewhere))

    def test_alg_none_refused(self, issuer: TokenIssuer) -> None:
        unsigned = pyjwt.encode({"sub": "x", "aud": "tenant"}, key=None, algorithm="none")
        with pytest.raises(Unauthenticated):
            issuer.verify(unsigned)


class TestVerificationOnlyKeys:
    def test_old_key_keeps_verifying_after_the_signer_changes(self) -> None:
        old = private_pem()
        old_token = mint(TokenIssuer(old, issuer=ISSUER))
        rotated = TokenIssuer(private_pem(), issuer=ISSUER, verification_pem=public_pem(old))
        assert rotated.verify(old_token)["sub"] == "usr_1"
        assert {key["kid"] for key in rotated.jwks()["keys"]} == {
            rotated.signing_kid,
            pyjwt.get_unverified_header(old_token)["kid"],
        }

    def test_jwks_publishes_okp_keys(self, issuer: TokenIssuer) -> None:
        (key,) = issuer.jwks()["keys"]
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
        assert "d" not in key  # never the private part


class TestOverHttp:
    async def test_whoami_answers_verified_claims(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        jwks = (await client.get("/.well-known/jwks.json")).json()
        token = _mint_for(settings)
        response = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json()["sub"] == "operator"
        assert pyjwt.get_unverified_header(token)["kid"] in {k["kid"] for k in jwks["keys"]}

    async def test_missing_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/whoami")
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"] == 'Bearer realm="tenantry"'

    async def test_expired_token(self, client: httpx.AsyncClient, settings: Settings) -> None:
        token = _mint_for(settings)
        clock.advance(timedelta(hours=1))
        response = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["code"] == "TOKEN_EXPIRED"


def _mint_for(settings: Settings) -> str:
    token, _ = build_token_issuer(settings).mint(
        subject="operator", audience=Audience.PLATFORM, ttl=timedelta(minutes=15), roles=["admin"]
    )
    return token
