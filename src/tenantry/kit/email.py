"""The one spelling of an email address that lookups, uniqueness and rate-limit keys use."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, EmailStr


def normalise_email(value: str) -> str:
    """Lower-cased, trimmed: `Ada@Example.com` and `ada@example.com` are one account."""
    return value.strip().lower()


Email = Annotated[EmailStr, AfterValidator(normalise_email)]
