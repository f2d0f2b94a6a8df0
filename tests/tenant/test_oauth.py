"""The token endpoint as OAuth 2.0 clients see it: Authlib with both client authentication
methods, the RFC 6749 error fields it raises on, discovery that PyJWT's JWKS client follows."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from tenantry.app import create_app
from tenantry.config import Settings
from tests.cli.test_servers import _env, running
from tests.conftest import TENANTRY, AppFactory
from tests.fixtures.secrets import seen
from tests.fixtures.servers import free_port
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem

TOKEN_URL = "http://testserver/v1/auth/token"


@pytest.fixture
async def oauth_app(client_for: AppFactory, signup_settings: Settings) -> AsyncIterator[object]:
    """The app, running, for clients that bring their own transport."""
    app = create_app(signup_settings)
    async with client_for(app=app):
        yield app


def oauth_client(app: object, **options: object) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(transport=httpx.ASGITransport(app=app), **options)  # type: ignore[arg-type]


async def make_key(
    api: httpx.AsyncClient, owner: dict[str, str], scopes: list[str]
) -> dict[str, str]:
    created = await api.post(
        f"/v1/tenants/{owner['tenant_id']}/keys",
        json={"name": "crm", "scopes": scopes},
        headers=auth(owner["access_token"]),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    seen(body["secret"])
    return {"id": body["id"], "secret": body["secret"]}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_gets_a_token_with_either_method(
    method: str, api: httpx.AsyncClient, owner: dict[str, str], oauth_app: object
) -> None:
    key = await make_key(api, owner, ["jobs:read", "jobs:write"])
    async with oauth_client(
        oauth_app,
        client_id=key["id"],
        client_secret=key["secret"],
        token_endpoint_auth_method=method,
    ) as client:
        token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "jobs:read jobs:write"
        narrowed = await client.fetch_token(
            TOKEN_URL, grant_type="client_credentials", scope="jobs:read"
        )
        assert narrowed["scope"] == "jobs:read"
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(TOKEN_URL, grant_type="client_credentials", scope="admin:keys")
        assert refused.value.error == "invalid_scope"
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    header = jwt.get_unverified_header(token["access_token"])
    assert header["typ"] == "at+jwt" and claims["client_id"] == key["id"]
    listed = await api.get(
        f"/v1/tenants/{owner['tenant_id']}/jobs", headers=auth(seen(token["access_token"]))
    )
    assert listed.status_code == 200


async def test_authlib_raises_on_each_refusal(
    api: httpx.AsyncClient, owner: dict[str, str], oauth_app: object
) -> None:
    key = await make_key(api, owner, ["jobs:read"])
    other = await make_key(api, owner, ["jobs:read"])
    cases = {
        "wrong secret": {"client_id": key["id"], "client_secret": "tnt_sk_" + "x" * 40},
        "another key's id": {"client_id": other["id"], "client_secret": key["secret"]},
    }
    for case, credentials in cases.items():
        async with oauth_client(oauth_app, **credentials) as client:
            with pytest.raises(OAuthError) as refused:
                await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
            assert refused.value.error == "invalid_client", case
    revoke = f"/v1/tenants/{owner['tenant_id']}/keys/{key['id']}/revoke"
    assert (await api.post(revoke, headers=auth(owner["access_token"]))).status_code == 200
    # Revoked through another app: this one learns of it at its next auth refresh.
    await oauth_app.state.tenantry.trust.refresh()  # type: ignore[attr-defined]
    async with oauth_client(oauth_app, client_id=key["id"], client_secret=key["secret"]) as client:
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert refused.value.error == "invalid_client"
        with pytest.raises(OAuthError) as refused:
            await client.fetch_token(TOKEN_URL, grant_type="urn:example:unknown")
        assert refused.value.error == "unsupported_grant_type"
    async with oauth_client(oauth_app) as client:
        fresh = await client.refresh_token(TOKEN_URL, refresh_token=owner["refresh_token"])
        seen(fresh["refresh_token"])
        with pytest.raises(OAuthError) as refused:  # the same refresh token again: reuse
            await client.refresh_token(TOKEN_URL, refresh_token=owner["refresh_token"])
        assert refused.value.error == "invalid_grant"


async def test_the_edges_of_the_answer(api: httpx.AsyncClient, owner: dict[str, str]) -> None:
    key = await make_key(api, owner, ["jobs:read"])
    basic = base64.b64encode(f"{key['id']}:{key['secret']}".encode()).decode()
    granted = await api.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert granted.status_code == 200
    assert (granted.headers["cache-control"], granted.headers["pragma"]) == ("no-store", "no-cache")
    seen(granted.json()["access_token"])
    wrong = base64.b64encode(f"{key['id']}:nope".encode()).decode()
    refused = await api.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {wrong}"},
    )
    body = assert_problem(refused, 401, "UNAUTHENTICATED")
    assert body["error"] == "invalid_client" and body["error_description"]
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert refused.headers["pragma"] == "no-cache"
    assert_problem(
        await api.post(
            "/v1/auth/token", content=b"grant_type=x", headers={"Content-Type": "text/plain"}
        ),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    expired = await api.get(f"/v1/tenants/{owner['tenant_id']}", headers=auth("not.a.token"))
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    bare = await api.get(f"/v1/tenants/{owner['tenant_id']}")
    assert bare.headers["www-authenticate"] == 'Bearer realm="tenantry"'


def test_verifiers_configured_from_discovery_alone(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(tmp_path / "data", TENANTRY_PUBLIC_URL=base)
    with running(["up"], env, tmp_path, port=port):
        metadata = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
        openid = httpx.get(f"{base}/.well-known/openid-configuration").json()
        assert metadata["issuer"] == openid["issuer"] == base
        assert "client_secret_basic" in metadata["token_endpoint_auth_methods_supported"]
        verifier = jwt.PyJWKClient(metadata["jwks_uri"])
        for audience, extra in (
            ("tenant", ["--role", "owner"]),
            ("integration", ["--scope", "jobs:read"]),
        ):
            token = seen(
                subprocess.run(
                    [
                        TENANTRY,
                        "token",
                        "mint",
                        "--audience",
                        audience,
                        "--tenant",
                        "ten_x",
                        *extra,
                    ],
                    env=env,
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )
            key = verifier.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, key.key, algorithms=["EdDSA"], audience=audience, issuer=metadata["issuer"]
            )
            assert claims["tenant_id"] == "ten_x"
