"""docs/errors.md lists every code the API can answer, so clients can rely on the list."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import tenantry
from tenantry.auth.oauth import OAuthRefusal
from tenantry.errors import _STATUS_CODES, TenantryError

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def documented_codes() -> set[tuple[int, str]]:
    """(status, code) pairs; one code may come with two statuses (an API and a page)."""
    rows = re.findall(r"^\| (\d{3}) \| `([A-Z_]+)` \|", DOC.read_text(), re.MULTILINE)
    return {(int(status), code) for status, code in rows}


def raised_codes() -> set[tuple[int, str]]:
    for module in pkgutil.walk_packages(tenantry.__path__, "tenantry."):
        importlib.import_module(module.name)
    found = {(status, code) for status, code in _STATUS_CODES.items()}
    found |= {(408, "REQUEST_TIMEOUT")}  # answered by the body reader, before any route
    pending = [TenantryError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # OAuthRefusal carries the status and code of what it wraps; tests define their own.
        if cls is not OAuthRefusal and cls.__module__.startswith("tenantry."):
            found.add((cls.status, cls.code))
    return found


def test_every_code_the_code_raises_is_documented_with_its_status() -> None:
    missing = raised_codes() - documented_codes()
    assert not missing, f"add to docs/errors.md: {sorted(missing)}"
