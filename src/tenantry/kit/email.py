"""The one spelling of an email address that lookups, uniqueness and rate-limit keys use."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, EmailStr, ValidatorFunctionWrapHandler, WrapValidator

# Special-use domains (RFC 6761: `.invalid`, `.test`, …) an address may still have because
# this deployment's canary writes to them; their mail never leaves (settings register them).
_SYNTHETIC_DOMAINS: set[str] = set()


def accept_synthetic_domain(domain: str) -> None:
    _SYNTHETIC_DOMAINS.add(domain.lower())


def normalise_email(value: str) -> str:
    """Lower-cased, trimmed: `Ada@Example.com` and `ada@example.com` are one account."""
    return value.strip().lower()


def _synthetic_or_checked(value: object, check: ValidatorFunctionWrapHandler) -> object:
    """An address at a registered synthetic domain has its local part checked as any other's
    would be; every other address goes through the ordinary check, which refuses
    special-use domains."""
    if isinstance(value, str):
        local, _, domain = value.strip().rpartition("@")
        if domain.lower() in _SYNTHETIC_DOMAINS:
            check(f"{local}@example.com")
            return f"{local}@{domain}"
    return check(value)


Email = Annotated[EmailStr, WrapValidator(_synthetic_or_checked), AfterValidator(normalise_email)]
