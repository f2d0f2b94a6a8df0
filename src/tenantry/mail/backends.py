"""Where mail goes: RFC 5322 files in the data dir (dev), an SMTP server, or the console."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib

from tenantry.config import EmailBackend, Settings


class PermanentMailError(Exception):
    """The server refused the message for good (5xx): retrying cannot help."""


class MailBackend(Protocol):
    async def send(self, message: EmailMessage) -> None: ...

    async def check(self) -> None:
        """Raise if the backend cannot take mail now (for the deep health check)."""


def outbox_id(message: EmailMessage) -> str:
    """The outbox id a message was composed from: the local part of its Message-ID."""
    return str(message["Message-ID"]).strip().strip("<>").split("@", 1)[0]


class FileBackend:
    """One `.eml` file per message, named by its id: a second send overwrites, never duplicates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = outbox_id(message)
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(bytes(message))
        os.replace(temporary, self.directory / f"{name}.eml")

    async def check(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not os.access(self.directory, os.W_OK):
            raise PermissionError(f"{self.directory} is not writable")


class ConsoleBackend:
    async def send(self, message: EmailMessage) -> None:
        sys.stdout.write(message.as_string() + "\n")
        sys.stdout.flush()

    async def check(self) -> None:
        return None


class SmtpBackend:
    def __init__(self, url: str, timeout_s: float) -> None:
        parsed = urlparse(url)
        options = {k: v[-1].lower() for k, v in parse_qs(parsed.query).items()}
        self.hostname = parsed.hostname or "localhost"
        self.implicit_tls = parsed.scheme == "smtps"
        self.port = parsed.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.start_tls = options.get("starttls", "false") in ("1", "true", "yes")
        self.verify = options.get("verify", "true") not in ("0", "false", "no")
        self.timeout_s = timeout_s

    def _client(self) -> aiosmtplib.SMTP:
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            use_tls=self.implicit_tls,
            start_tls=self.start_tls if not self.implicit_tls else False,
            username=self.username,
            password=self.password,
            timeout=self.timeout_s,
            tls_context=context,
        )

    async def send(self, message: EmailMessage) -> None:
        try:
            async with self._client() as client:
                await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(refusal.code >= 500 for refusal in exc.recipients):
                raise PermanentMailError(str(exc)) from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentMailError(f"{exc.code} {exc.message}") from exc
            raise

    async def check(self) -> None:
        async with self._client() as client:
            await client.noop()


def build_backend(settings: Settings) -> MailBackend:
    if settings.email_backend is EmailBackend.SMTP:
        if not settings.smtp_url:
            raise ValueError("TENANTRY_SMTP_URL is required with TENANTRY_EMAIL_BACKEND=smtp")
        return SmtpBackend(settings.smtp_url, settings.smtp_timeout.total_seconds())
    if settings.email_backend is EmailBackend.CONSOLE:
        return ConsoleBackend()
    return FileBackend(settings.data_dir / "mail")
