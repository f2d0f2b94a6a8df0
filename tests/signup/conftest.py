"""Signup fixtures: an app with generous limits unless a test sets its own, and helpers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.datadir import server_secret
from tenantry.db import Database
from tenantry.kit.sealed import unseal
from tenantry.mail.service import SEAL_PURPOSE
from tenantry.models import MailMessage
from tests.conftest import AppFactory, make_settings

_addresses = itertools.count(1)


def signup_body(**overrides: Any) -> dict[str, Any]:
    body = {"org_name": "Acme", "slug": "acme", "email": "ada@acme.example.com", "plan": "starter"}
    return {**body, **overrides}


def from_address(address: str | None = None) -> dict[str, str]:
    """Each call a new client address (the test client is a trusted proxy)."""
    return {"X-Forwarded-For": address or f"203.0.113.{next(_addresses) % 250 + 1}"}


@pytest.fixture
def signup_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url=database_url,
        signup_limit_per_ip="1000/hour",
        signup_limit_per_email="1000/hour",
        signup_limit_per_domain="1000/hour",
    )


@pytest.fixture
async def api(
    client_for: AppFactory, signup_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(signup_settings) as client:
        yield client


async def code_for(database: Database, settings: Settings, email: str) -> str:
    """The newest code mailed to `email`, opened as the mail task would."""
    async with database.session() as session:
        query = (
            select(MailMessage)
            .where(MailMessage.to_address == email, MailMessage.template == "signup_code")
            .order_by(MailMessage.created_at.desc())
            .limit(1)
        )
        message = (await session.execute(query)).scalar_one()
    assert message.sealed_secrets is not None
    return str(unseal(message.sealed_secrets, server_secret(settings), SEAL_PURPOSE)["code"])
