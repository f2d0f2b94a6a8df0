"""Rotating the server secret keeps what is stored usable: with the old secret listed in
TENANTRY_PREVIOUS_SECRET_KEYS, an integration key exchanges (and moves to the new secret),
a refresh token rotates, an invitation link opens, pending sealed mail opens; without it
they are refused. The doctor counts what still needs the old secret."""

from __future__ import annotations

import json

from sqlalchemy import select

from tenantry.app import build_token_issuer
from tenantry.auth import sessions
from tenantry.config import Settings
from tenantry.datadir import key_fingerprint
from tenantry.db import Database
from tenantry.kit.sealed import unseal
from tenantry.mail.service import SEAL_PURPOSE
from tenantry.models import IntegrationKey, MailMessage
from tests.conftest import AppFactory
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_invitation, create_member, create_tenant, tokens_for
from tests.fixtures.secrets import seen
from tests.tenant.conftest import auth

OLD, NEW = "o" * 40, "n" * 40


async def test_stored_secrets_survive_a_rotation(
    client_for: AppFactory, settings: Settings, database: Database
) -> None:
    before = settings.model_copy(update={"secret_key": OLD})
    rotated = settings.model_copy(update={"secret_key": NEW, "previous_secret_keys": [OLD]})
    forgotten = settings.model_copy(update={"secret_key": NEW})
    tenant = await create_tenant(database)
    owner = await create_member(database, tenant.id, "owner")
    link = await create_invitation(database, before, tenant, invited_by=owner)
    async with client_for(before) as api:
        created = await api.post(
            f"/v1/tenants/{tenant.id}/keys",
            json={"name": "ci", "scopes": ["jobs:read"]},
            headers=auth(tokens_for(before, owner.id, tenant.id, "owner")),
        )
        invited = await api.post(
            f"/v1/tenants/{tenant.id}/invitations",
            json={"email": "bo@example.com", "role": "member"},
            headers=auth(tokens_for(before, owner.id, tenant.id, "owner")),
        )
        assert (created.status_code, invited.status_code) == (201, 201)
    grant = {"grant_type": "client_credentials", "client_secret": created.json()["secret"]}
    async with database.session() as session:
        pair = await sessions.issue(
            session, before, build_token_issuer(before), user_id=owner.id, tenant_id=tenant.id
        )
    refresh = {"grant_type": "refresh_token", "refresh_token": seen(pair.refresh_token)}

    async with client_for(forgotten) as api:
        assert (await api.post("/v1/auth/token", data=grant)).status_code == 401
        assert (await api.post("/v1/auth/token", data=refresh)).status_code == 401
        lookup = await api.get("/v1/invitations/lookup", params={"token": link.token})
        assert lookup.status_code == 404

    rotation = {"TENANTRY_SECRET_KEY": NEW, "TENANTRY_PREVIOUS_SECRET_KEYS": OLD}
    _, output = await run_tenantry(rotated, "doctor", "--json", env=rotation)
    checks = {c["name"]: c for c in json.loads(output[output.index("{") :])["checks"]}
    assert checks["secret_rotation"]["status"] == "warn"
    assert checks["secret_rotation"]["detail"].startswith("1 integration keys, 1 sealed mails")

    async with client_for(rotated) as api:
        assert (await api.post("/v1/auth/token", data=grant)).status_code == 200
        assert (await api.post("/v1/auth/token", data=refresh)).status_code == 200
        lookup = await api.get("/v1/invitations/lookup", params={"token": link.token})
        assert lookup.status_code == 200
    async with database.session() as session:
        key = (await session.execute(select(IntegrationKey))).scalar_one()
        assert key.secret_key_fp == key_fingerprint(NEW.encode())
        sealed = (
            await session.execute(
                select(MailMessage.sealed_secrets).where(MailMessage.sealed_secrets.is_not(None))
            )
        ).scalar_one()
    assert "link" in unseal(str(sealed), [NEW.encode(), OLD.encode()], SEAL_PURPOSE)

    async with client_for(rotated) as api:  # moved: the old secret is no longer needed for it
        assert (await api.post("/v1/auth/token", data=grant)).status_code == 200
    async with client_for(forgotten) as api:
        assert (await api.post("/v1/auth/token", data=grant)).status_code == 200


def test_previous_keys_are_read_comma_separated() -> None:
    read = Settings(_env_file=None, previous_secret_keys=f"{OLD}, {NEW}")  # type: ignore[call-arg]
    assert read.previous_secret_keys == [OLD, NEW]
