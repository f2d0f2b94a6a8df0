"""A client generated from the served OpenAPI document (openapi-python-client) works: the
whole path from signup to a completed job, and errors parsed as `Problem`s, not `None`."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db import Database
from tests.conftest import AppFactory
from tests.fixtures.secrets import seen
from tests.fixtures.signup import code_for
from tests.fixtures.workers import running_worker, wait_for

BIN = Path(sys.executable).parent
PACKAGE = "tenantry_client"


@pytest.fixture
async def served(client_for: AppFactory, signup_settings: Settings) -> AsyncIterator[Any]:
    app = create_app(signup_settings)
    async with client_for(app=app):
        yield app


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Path]:
    """Where the client is generated; its modules are forgotten afterwards."""
    yield tmp_path / "client"
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    if str(tmp_path / "client") in sys.path:
        sys.path.remove(str(tmp_path / "client"))


async def generate(document: dict[str, Any], into: Path) -> ModuleType:
    await asyncio.to_thread(into.mkdir)
    await asyncio.to_thread((into / "openapi.json").write_text, json.dumps(document))
    process = await asyncio.create_subprocess_exec(
        str(BIN / "openapi-python-client"),
        "generate",
        "--path",
        str(into / "openapi.json"),
        "--meta",
        "none",
        "--output-path",
        str(into / PACKAGE),
        env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"},  # its ruff pass
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    sys.path.insert(0, str(into))
    return importlib.import_module(PACKAGE)


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_runs_the_whole_path(
    served: Any, database: Database, signup_settings: Settings, generated: Path
) -> None:
    transport = {"transport": httpx.ASGITransport(app=served)}
    async with httpx.AsyncClient(base_url="http://testserver", **transport) as raw:
        document = (await raw.get("/openapi.json")).json()
    client_module = await generate(document, generated)
    models = module("models")
    anonymous = client_module.Client(base_url="http://testserver", httpx_args=transport)
    start = module("api.signup.start_signup")
    body = models.SignupCreate(
        org_name="Gen", slug="gen-co", email="gen@gen.example.com", plan="starter"
    )
    started = await start.asyncio_detailed(client=anonymous, body=body)
    assert started.status_code == 201 and isinstance(started.parsed, models.SignupCreated)
    taken = await start.asyncio_detailed(
        client=anonymous,
        body=models.SignupCreate(
            org_name="Gen", slug="gen-co", email="x@x.example.com", plan="starter"
        ),
    )
    assert taken.status_code == 409 and taken.parsed.code == "SLUG_TAKEN"  # handled, not None
    invalid = await start.asyncio_detailed(
        client=anonymous,
        body=models.SignupCreate(
            org_name="Gen", slug="-bad-", email="y@y.example.com", plan="starter"
        ),
    )
    assert invalid.status_code == 400 and invalid.parsed.code == "VALIDATION"
    assert invalid.parsed.errors[0].field == "slug"

    signup_id = started.parsed.id
    code = await code_for(database, signup_settings, "gen@gen.example.com")
    verified = await module("api.signup.verify_code").asyncio(
        signup_id, client=anonymous, body=models.SignupVerify(code=code)
    )
    continuation = seen(verified.continuation_token)
    read = module("api.signup.read_signup")

    async def provisioned() -> bool:
        signup = await read.asyncio(signup_id, client=anonymous)
        return bool(signup.status == models.SignupStatus.PROVISIONED)

    async with running_worker(database, signup_settings):
        await wait_for(provisioned)
        tokens = await module("api.signup.owner_session").asyncio(
            signup_id,
            client=anonymous,
            body=models.ContinuationRequest(continuation_token=continuation),
        )
        seen(tokens.refresh_token)
        owner = client_module.AuthenticatedClient(
            base_url="http://testserver", token=seen(tokens.access_token), httpx_args=transport
        )
        key = await module("api.integration_keys.create_key").asyncio(
            tokens.tenant_id,
            client=owner,
            body=models.KeyCreate(name="gen", scopes=["jobs:read", "jobs:write"]),
        )
        grant = models.TokenTokenRequest(
            grant_type=models.TokenTokenRequestGrantType.CLIENT_CREDENTIALS,
            client_id=key.id,
            client_secret=seen(key.secret),
        )
        exchanged = await module("api.auth.token").asyncio(client=owner, body=grant)
        integration = client_module.AuthenticatedClient(
            base_url="http://testserver",
            token=seen(exchanged.access_token),
            httpx_args=transport,
        )
        job = await module("api.jobs.submit_job").asyncio(
            tokens.tenant_id,
            client=integration,
            body=models.JobSubmit(
                kind="canary.ping", payload=models.JobSubmitPayload.from_dict({"n": 1})
            ),
        )
        assert job.status == models.JobStatus.PENDING
        get_job = module("api.jobs.get_job")

        async def completed() -> bool:
            current = await get_job.asyncio(tokens.tenant_id, job.id, client=integration)
            return bool(current.status == models.JobStatus.COMPLETED)

        await wait_for(completed)
