"""`tenantry doctor` against real parts: a fresh deployment passes; prod with dev settings, a
database that does not answer and an SMTP server that refuses the login fail; the SMTP
handshake is checked with and without STARTTLS and AUTH (a real aiosmtpd), sending nothing;
switches that are off are warnings; the password self-test runs at start-up."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.flag import service as flags
from tests.conftest import AppFactory, LogCapture
from tests.fixtures.cli import run_tenantry
from tests.fixtures.servers import free_port
from tests.fixtures.workers import wait_for
from tests.mail.test_mail import Inbox


async def doctor(settings: Settings, **env: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code, output = await run_tenantry(settings, "doctor", "--json", env=env)
    checks = json.loads(output[output.index("{") :])["checks"]
    return code, {check["name"]: check for check in checks}


async def test_a_fresh_deployment_passes(settings: Settings) -> None:
    code, checks = await doctor(settings)
    assert code == 0, checks
    failing = {name for name, check in checks.items() if check["status"] == "fail"}
    assert not failing
    assert {"database", "migrations", "mail", "signing_keys", "queue", "password_hashing"} <= set(
        checks
    )
    assert "Argon2id" in checks["password_hashing"]["detail"]


async def test_prod_with_dev_settings_fails_naming_each(settings: Settings) -> None:
    code, checks = await doctor(settings, TENANTRY_ENV="prod")
    assert code == 1
    assert checks["settings"]["status"] == "fail"
    assert "TENANTRY_SECRET_KEY" in checks["settings"]["detail"]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_database_that_does_not_answer_fails_cleanly(settings: Settings) -> None:
    gone = f"postgresql+asyncpg://nobody:x@127.0.0.1:{free_port()}/none"
    code, checks = await doctor(settings, TENANTRY_DATABASE_URL=gone)
    assert code == 1
    assert checks["database"]["status"] == "fail"
    assert "migrations" not in checks  # nothing more is said without a database


async def test_switches_that_are_off_are_warnings(settings: Settings, database: Database) -> None:
    async with database.session() as session:
        await flags.set_flag(session, "signup", False, reason="abuse wave", by="ops")
        await flags.set_degraded(session, True, reason="latency", by="ops")
    code, checks = await doctor(settings)
    assert code == 0
    assert checks["flag:signup"]["status"] == "warn"
    assert "abuse wave" in checks["flag:signup"]["detail"]
    assert checks["degraded_mode"]["action"] == "tenantry degraded off --reason R"


# -- SMTP


def tls_context(directory: Path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, made here."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


def authenticator(_: Any, __: Any, ___: Any, ____: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[int, Inbox]]:
    """A real aiosmtpd; `secure` (the test's parameter) requires STARTTLS and AUTH."""
    secure = request.param
    inbox = Inbox()
    port = free_port()
    options: dict[str, Any] = {}
    if secure:
        options = {
            "tls_context": tls_context(tmp_path),
            "require_starttls": True,
            "auth_required": True,
            "authenticator": authenticator,
        }
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("smtp_server", "credentials", "status"),
    [
        (False, "", "ok"),
        (True, "mailer:s3cret@", "ok"),
        (True, "mailer:wrong@", "fail"),
    ],
    indirect=["smtp_server"],
    ids=["plain", "starttls-auth", "wrong-password"],
)
async def test_the_smtp_handshake_is_checked_and_nothing_is_sent(
    settings: Settings, smtp_server: tuple[int, Inbox], credentials: str, status: str
) -> None:
    port, inbox = smtp_server
    query = "?starttls=true&verify=false" if credentials else ""
    url = f"smtp://{credentials}127.0.0.1:{port}{query}"
    code, checks = await doctor(settings, TENANTRY_EMAIL_BACKEND="smtp", TENANTRY_SMTP_URL=url)
    assert checks["mail"]["status"] == status, checks["mail"]
    assert code == (1 if status == "fail" else 0)
    if credentials and status == "ok":
        assert checks["mail"]["detail"] == "SMTP handshake: EHLO, STARTTLS, AUTH"
    assert inbox.messages == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_server_that_is_not_there_fails(settings: Settings) -> None:
    url = f"smtp://127.0.0.1:{free_port()}"
    _, checks = await doctor(settings, TENANTRY_EMAIL_BACKEND="smtp", TENANTRY_SMTP_URL=url)
    assert checks["mail"]["status"] == "fail"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_password_self_test_runs_at_start_up(
    client_for: AppFactory, settings: Settings, logs: LogCapture
) -> None:
    async with client_for(settings):  # logged by a background task, off the start-up path

        async def logged() -> bool:
            return bool(logs.events("password_hashing_self_test"))

        await wait_for(logged, 10)
    (line,) = logs.events("password_hashing_self_test")
    assert line["level"] == "info" and "Argon2id" in line["detail"]
