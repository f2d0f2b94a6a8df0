"""Logs carry request context and never the secrets that pass through them."""

from __future__ import annotations

import io
import logging
import string

import httpx
import structlog
from hypothesis import given
from hypothesis import strategies as st

from tenantry.logging import REDACTED, build_formatter, configure_logging, redact
from tests.conftest import LogCapture


class TestRedactKeys:
    def test_sensitive_keys_are_blanked_at_any_depth(self) -> None:
        event = {
            "password": "hunter2",
            "headers": {"Authorization": "Bearer abc", "Cookie": "s=1", "accept": "json"},
            "items": [{"refresh_token": "r1"}, {"client_secret": "c1"}, {"otp": "123456"}],
            "code": "654321",
            "error_code": "SLUG_TAKEN",
        }
        assert redact(event) == {
            "password": REDACTED,
            "headers": {"Authorization": REDACTED, "Cookie": REDACTED, "accept": "json"},
            "items": [{"refresh_token": REDACTED}, {"client_secret": REDACTED}, {"otp": REDACTED}],
            "code": REDACTED,
            "error_code": "SLUG_TAKEN",
        }


class TestRedactValues:
    def test_integration_key_inside_text(self) -> None:
        assert (
            redact("exchange failed for tnt_sk_AbC-123_xyz_0123456789 here")
            == f"exchange failed for {REDACTED} here"
        )

    def test_jwt_inside_text(self) -> None:
        jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        assert jwt not in redact(f"token was {jwt}")

    def test_bearer_and_url_parameters(self) -> None:
        text = redact("GET /activate?token=s3cr3t&x=1 with Bearer abc.def")
        assert "s3cr3t" not in text and "abc.def" not in text
        assert "x=1" in text

    @given(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=12, max_size=60))
    def test_any_key_shaped_secret_is_removed(self, secret: str) -> None:
        raw = "tnt_sk_" + secret
        assert raw not in redact({"message": f"before {raw} after", "nested": [raw]}).__repr__()


class TestRendering:
    async def test_request_lines_carry_context_and_no_secret(
        self, client: httpx.AsyncClient, logs: LogCapture
    ) -> None:
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        await client.get(
            "/v1/whoami?token=rawtoken123",
            headers={
                "X-Request-ID": "req-42",
                "traceparent": traceparent,
                "Authorization": "Bearer rawjwt.x.y",
            },
        )
        line = logs.events("http_request")[-1]
        assert line["request_id"] == "req-42"
        assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert line["route"] == "/v1/whoami"
        assert line["status"] == 401
        assert line["duration_ms"] >= 0
        assert "rawtoken123" not in logs.text
        assert "rawjwt" not in logs.text

    def test_stdlib_loggers_are_redacted_too(self, logs: LogCapture) -> None:
        configure_logging(json=True)
        logging.getLogger("some.library").warning("leaked tnt_sk_leakleakleakleak in a message")
        assert "tnt_sk_leakleakleakleak" not in logs.text
        assert logs.events()[-1]["level"] == "warning"

    def test_structlog_keys_are_redacted_in_output(self, logs: LogCapture) -> None:
        configure_logging(json=True)
        structlog.get_logger("t").info(
            "login", email_domain="example.com", code="123456", secret="s"
        )
        event = logs.events("login")[-1]
        assert event["code"] == REDACTED and event["secret"] == REDACTED
        assert event["email_domain"] == "example.com"


def test_console_tracebacks_show_no_local_variables() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(json=False))
    logger = logging.getLogger("console.probe")
    logger.addHandler(handler)
    try:
        password = "local-hunter2"
        raise ValueError(len(password))
    except ValueError:
        logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert "ValueError" in stream.getvalue()
    assert "local-hunter2" not in stream.getvalue()
