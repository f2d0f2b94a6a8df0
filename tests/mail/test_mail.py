"""Mail through the outbox: file and SMTP backends, a server that is down for a while, refusals."""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import text
from typer.testing import CliRunner

from tenantry.cli.main import app
from tenantry.config import EmailBackend, Settings
from tenantry.db import Database
from tenantry.job.service import get_job
from tenantry.mail import service
from tenantry.models import JobStatus, MailMessage, MailStatus
from tenantry.worker.queue import enqueue
from tests.conftest import LogCapture
from tests.fixtures.servers import free_port
from tests.fixtures.workers import running_worker, wait_for

CODE = "493017"


class Inbox:
    """An aiosmtpd handler that keeps what it accepts and refuses `refused@…`; while `stalled`,
    it holds every DATA without answering, as a server that hangs does."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.stalled = False
        self.held = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.stalled:
            self.held += 1
            while self.stalled:  # noqa: ASYNC110 - set from the test's thread, not this loop
                await asyncio.sleep(0.02)
            return "451 4.3.0 try again"  # the client gave up long ago
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[arg-type]
        return "250 Message accepted"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


async def queue(database: Database, settings: Settings, to: str = "ada@example.com") -> str:
    async with database.session() as session:
        message = await service.queue_mail(
            session,
            settings,
            to=to,
            template="signup_code",
            context={"org_name": "Acme", "expires_minutes": 10},
            secrets={"code": CODE},
        )
    return message.id


async def mail_row(database: Database, mail_id: str) -> MailMessage:
    async with database.session() as session:
        return await service.get_message(session, mail_id)


async def wait_mail(database: Database, mail_id: str, *statuses: MailStatus) -> MailMessage:
    async def reached() -> bool:
        return (await mail_row(database, mail_id)).status in statuses

    await wait_for(reached)
    return await mail_row(database, mail_id)


async def stored_text(database: Database) -> str:
    """Everything the outbox and the jobs table hold, as text."""
    async with database.session() as session:
        rows = (await session.execute(text("SELECT * FROM mail_messages"))).all()
        jobs = (await session.execute(text("SELECT payload, result, last_error FROM jobs"))).all()
    return json.dumps([list(map(str, r)) for r in rows + jobs])


class TestFileBackend:
    async def test_writes_an_rfc5322_file_and_keeps_no_code(
        self, database: Database, job_settings: Settings, logs: LogCapture
    ) -> None:
        mail_id = await queue(database, job_settings)
        assert CODE not in await stored_text(database)
        async with running_worker(database, job_settings):
            sent = await wait_mail(database, mail_id, MailStatus.SENT)
        assert sent.sealed_secrets is None and sent.attempts == 1 and sent.sent_at
        (path,) = (job_settings.data_dir / "mail").glob("*.eml")
        parsed = email.message_from_bytes(path.read_bytes())
        assert parsed["To"] == "ada@example.com"
        assert parsed["Subject"] == f"{CODE} is your Tenantry verification code"
        assert parsed["Message-ID"] == sent.message_id
        assert path.name == f"{mail_id}.eml"  # named from the Message-ID's local part
        bodies = {
            part.get_content_type(): part.get_payload(decode=True).decode()
            for part in parsed.walk()
            if not part.is_multipart()
        }
        assert CODE in bodies["text/plain"] and CODE in bodies["text/html"]
        assert CODE not in await stored_text(database)
        assert CODE not in logs.text
        assert sent.subject == "… is your Tenantry verification code"


@pytest.fixture
def smtp_settings(job_settings: Settings, smtp: SmtpServer) -> Settings:
    return job_settings.model_copy(
        update={"email_backend": EmailBackend.SMTP, "smtp_url": smtp.url}
    )


class TestSmtp:
    async def test_delivers_to_a_real_smtp_server(
        self, database: Database, smtp_settings: Settings, smtp: SmtpServer
    ) -> None:
        smtp.start()
        mail_id = await queue(database, smtp_settings)
        async with running_worker(database, smtp_settings):
            await wait_mail(database, mail_id, MailStatus.SENT)
        (received,) = smtp.inbox.messages
        assert received["To"] == "ada@example.com" and CODE in received.as_string()
        # RFC 3834, and nothing of ours but the Message-ID leaves with the mail.
        assert received["Auto-Submitted"] == "auto-generated"
        assert mail_id not in {v for k, v in received.items() if k != "Message-ID"}
        assert not [k for k in received if k.lower().startswith("x-tenantry")]

    async def test_a_server_down_for_a_while_loses_nothing(
        self, database: Database, smtp_settings: Settings, smtp: SmtpServer
    ) -> None:
        mail_ids = [
            await queue(database, smtp_settings, to=f"user{i}@example.com") for i in range(3)
        ]
        # Slow enough retries that ten attempts outlast the outage below.
        patient = smtp_settings.model_copy(
            update={
                "job_backoff_base": timedelta(milliseconds=200),
                "job_backoff_max": timedelta(seconds=1),
            }
        )
        async with running_worker(database, patient):

            async def failed_twice() -> bool:
                rows = [await mail_row(database, m) for m in mail_ids]
                return all(row.attempts >= 2 for row in rows)

            await wait_for(failed_twice)
            assert {(await mail_row(database, m)).status for m in mail_ids} == {MailStatus.PENDING}
            smtp.start()
            for mail_id in mail_ids:
                await wait_mail(database, mail_id, MailStatus.SENT)
        assert sorted(m["To"] for m in smtp.inbox.messages) == [
            f"user{i}@example.com" for i in range(3)
        ]

    async def test_a_server_that_hangs_holds_up_no_other_work(
        self,
        database: Database,
        smtp_settings: Settings,
        smtp: SmtpServer,
        record_property: Callable[[str, object], None],
    ) -> None:
        smtp.inbox.stalled = True
        smtp.start()
        mail_ids = [
            await queue(database, smtp_settings, to=f"user{i}@example.com") for i in range(3)
        ]
        hurried = smtp_settings.model_copy(update={"smtp_timeout": timedelta(seconds=3)})
        async with running_worker(database, hurried):

            async def all_held() -> bool:
                return smtp.inbox.held == 3

            await wait_for(all_held)
            async with database.session() as session:
                ping = await enqueue(session, "canary.ping", {})

            async def pinged() -> bool:
                async with database.session() as session:
                    return (await get_job(session, ping)).status == JobStatus.COMPLETED

            await wait_for(pinged)  # while every mail hangs
            rows = [await mail_row(database, m) for m in mail_ids]
            assert [(row.status, row.last_error) for row in rows] == [
                (MailStatus.PENDING, None)
            ] * 3

            async def timed_out() -> bool:
                rows = [await mail_row(database, m) for m in mail_ids]
                return all("timed out" in (row.last_error or "").lower() for row in rows)

            await wait_for(timed_out)
            smtp.inbox.stalled = False
            for mail_id in mail_ids:
                await wait_mail(database, mail_id, MailStatus.SENT)
        assert sorted(m["To"] for m in smtp.inbox.messages) == [
            f"user{i}@example.com" for i in range(3)
        ]
        record_property("faults", "an SMTP server that holds every DATA unanswered")
        record_property("figure", "other jobs ran meanwhile; 3 of 3 mails sent once it answered")

    async def test_a_refused_address_fails_for_good_and_blocks_no_other(
        self, database: Database, smtp_settings: Settings, smtp: SmtpServer
    ) -> None:
        smtp.start()
        refused = await queue(database, smtp_settings, to="refused@example.com")
        accepted = await queue(database, smtp_settings)
        async with running_worker(database, smtp_settings):
            failed = await wait_mail(database, refused, MailStatus.FAILED)
            await wait_mail(database, accepted, MailStatus.SENT)
        assert failed.attempts == 1 and "550" in (failed.last_error or "")
        assert failed.sealed_secrets is None


class TestCli:
    def test_list_and_show_never_print_the_code(
        self, database_url: str, owner_database_url: str, job_settings: Settings, tmp_path: Path
    ) -> None:
        async def make() -> str:
            database = Database(owner_database_url)
            try:
                return await queue(database, job_settings)
            finally:
                await database.dispose()

        mail_id = asyncio.run(make())
        env = {
            "TENANTRY_DATABASE_URL": database_url,
            "TENANTRY_DATA_DIR": str(job_settings.data_dir),
        }
        runner = CliRunner()
        listed = runner.invoke(app, ["mail", "list", "--to", "ada@example.com", "--json"], env=env)
        rows: list[dict[str, Any]] = json.loads(listed.output)
        assert [r["id"] for r in rows] == [mail_id] and rows[0]["status"] == "PENDING"
        shown = runner.invoke(app, ["mail", "show", mail_id, "--json"], env=env)
        assert json.loads(shown.output)["has_sealed_secrets"] is True
        assert CODE not in listed.output + shown.output
        assert (
            runner.invoke(
                app, ["mail", "list", "--status", "SENT", "--json"], env=env
            ).output.strip()
            == "[]"
        )
