"""Schemathesis over the served `/openapi.json`, as every audience, on SQLite and PostgreSQL.

Every operation gets valid and invalid requests (`TENANTRY_FUZZ_EXAMPLES` of each kind;
a few in `make test`, many in `make reliability`) from each audience that could call it,
with a fresh token per example, so a route that revokes its caller's token (logout)
cannot spoil the examples after it. Every answer must be below 500 and match its
documented schema; every error must be problem+json with a code of docs/errors.md.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.integration_key.service import SCOPES
from tests.cli.test_servers import _env, running
from tests.conftest import make_settings
from tests.fixtures.factories import create_member, create_tenant
from tests.test_error_codes import documented_codes

EXAMPLES = int(os.environ.get("TENANTRY_FUZZ_EXAMPLES", "4"))
DOCUMENTED = documented_codes()

Bearer = Callable[[], dict[str, str]]
RecordProperty = Callable[[str, object], None]


class Callers:
    """Who may call: each a function giving fresh credentials for one example."""

    def __init__(self, settings: Settings, tenant_id: str, owner_id: str, member_id: str) -> None:
        self.tenant_id = tenant_id
        self._issuer = build_token_issuer(settings)
        self.by_name: dict[str, Bearer] = {
            "anonymous": dict,
            "platform admin": self._bearer("usr_operator", Audience.PLATFORM, roles=["admin"]),
            "owner": self._bearer(owner_id, Audience.TENANT, roles=["owner"], tenant_id=tenant_id),
            "member": self._bearer(
                member_id, Audience.TENANT, roles=["member"], tenant_id=tenant_id
            ),
            "integration key": self._bearer(
                "key_fuzz", Audience.INTEGRATION, scopes=sorted(SCOPES), tenant_id=tenant_id
            ),
            "service": self._bearer("svc_fuzz", Audience.INTERNAL),
        }

    def _bearer(self, subject: str, audience: Audience, **claims: Any) -> Bearer:
        def fresh() -> dict[str, str]:
            token, _ = self._issuer.mint(
                subject=subject, audience=audience, ttl=timedelta(minutes=15), **claims
            )
            return {"Authorization": f"Bearer {token}"}

        return fresh


def problem_with_a_documented_code(response: Response) -> str | None:
    """Why an error answer breaks the error contract, or None."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/problem+json"):
        return f"{response.status_code} is not problem+json"
    body = response.json()
    if (body.get("status"), body.get("code")) not in DOCUMENTED:
        return f"{response.status_code} {body.get('code')} is not in docs/errors.md"
    return None


# Operations that turn the operators' switches: a flag the fuzzer turned off would make later
# operations answer 503 FEATURE_DISABLED, so every switch is set back after them.
SWITCHES = ("PUT /v1/admin/flags/", "PUT /v1/admin/degraded")


def restore_switches(base_url: str, callers: Callers, http: requests.Session) -> None:
    admin = callers.by_name["platform admin"]()
    back = {"enabled": True, "reason": "fuzzing over"}
    for flag in http.get(f"{base_url}/v1/admin/flags", headers=admin).json()["data"]:
        http.put(f"{base_url}/v1/admin/flags/{flag['name']}", json=back, headers=admin)
    http.put(f"{base_url}/v1/admin/degraded", json={**back, "enabled": False}, headers=admin)


def fuzz(
    operation: Any, base_url: str, callers: Callers, http: requests.Session, seen: Counter[str]
) -> list[str]:
    """Run one operation's examples; return what failed, one line each."""
    failures: list[str] = []
    label = operation.label
    modes = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

    @settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        data=st.data(),
        mode=modes,
        who=st.sampled_from(sorted(callers.by_name)),
        own_tenant=st.booleans(),
    )
    def example(data: st.DataObject, mode: GenerationMode, who: str, own_tenant: bool) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        if own_tenant and "tenant_id" in (case.path_parameters or {}):
            case.path_parameters["tenant_id"] = callers.tenant_id
        headers = callers.by_name[who]()
        response = case.call(base_url=base_url, session=http, headers=headers, timeout=30)
        seen[f"{response.status_code // 100}xx"] += 1
        checks = [not_a_server_error]
        if mode is GenerationMode.POSITIVE:
            checks += [response_schema_conformance, content_type_conformance]
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            failures.append(f"{label} as {who}: {first_line} ({response.status_code})")
        if broken := problem_with_a_documented_code(response):
            failures.append(f"{label} as {who}: {broken}")

    example()
    return failures


async def test_every_route_answers_every_caller_within_its_contract(
    database_url: str, database: Database, tmp_path: Path, record_property: RecordProperty
) -> None:
    """Schemathesis over the served OpenAPI: no 5xx, schemas kept, documented codes."""
    tenant = await create_tenant(database, slug="fuzzed")
    owner = await create_member(database, tenant.id, "owner")
    member = await create_member(database, tenant.id, "member")
    data_dir = tmp_path / "data"
    env = _env(
        data_dir,
        TENANTRY_DATABASE_URL=database_url,
        TENANTRY_SIGNUP_LIMIT_PER_IP="100000/hour",
        TENANTRY_SIGNUP_LIMIT_PER_EMAIL="100000/hour",
        TENANTRY_SIGNUP_LIMIT_PER_DOMAIN="100000/hour",
    )
    log = tmp_path / "server.log"
    with running(["serve"], env, tmp_path, log=log) as (base_url, _), requests.Session() as http:
        callers = Callers(
            make_settings(data_dir, database_url=database_url), tenant.id, owner.id, member.id
        )
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        failures: list[str] = []
        seen: Counter[str] = Counter()
        operations = 0
        for result in schema.get_all_operations():
            operations += 1
            failures += fuzz(result.ok(), base_url, callers, http, seen)
            if result.ok().label.startswith(SWITCHES):
                restore_switches(base_url, callers, http)
    requests_sent = sum(seen.values())
    print(f"fuzzed {operations} operations, {requests_sent} requests: {dict(seen)}")
    record_property("load", f"{operations} operations, {EXAMPLES * 2} examples each, 6 audiences")
    record_property("faults", "invalid requests (negative generation), revoked own tokens")
    statuses = ", ".join(f"{n} {k}" for k, n in sorted(seen.items()))
    record_property("figure", f"{requests_sent} requests ({statuses}), {len(failures)} failing")
    assert operations > 30 and seen["2xx"] and seen["4xx"]
    assert not failures, "\n".join(sorted(set(failures)))
    assert "Traceback" not in log.read_text()
