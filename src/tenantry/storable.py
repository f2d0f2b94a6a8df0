"""What storage can hold: one rule for every text a request carries, applied at the edge.

PostgreSQL refuses a NUL character in `text` and `jsonb` and NaN or Infinity in
`jsonb`; SQLite stores them, and a lone UTF-16 surrogate too, which no JSON
response can then carry, so the row breaks every later read of its list. Checking
the path, the query and the body before any route runs makes both backends answer
`400 VALIDATION` naming the field, and nothing unreadable is ever written.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

MAX_DEPTH = 32  # objects and arrays nested in a JSON body

_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_A_NUMBER = object()  # what NaN, Infinity and -Infinity parse to while checking


class Unstorable(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_text(value: str, field: str) -> None:
    if "\x00" in value:
        raise Unstorable(field, "must not contain a NUL character")
    if _SURROGATE.search(value):
        raise Unstorable(field, "must not contain an unpaired surrogate")


def check_path(path: str) -> None:
    check_text(path, "path")


def check_query(query_string: bytes) -> None:
    """A NUL can only come percent-encoded or raw; decoding turns bad UTF-8 into U+FFFD."""
    if b"%00" in query_string or b"\x00" in query_string:
        _check_pairs(query_string.decode("latin-1"), "query")


def check_form(body: bytes) -> None:
    if b"%00" in body or b"\x00" in body:
        _check_pairs(body.decode("latin-1"), "body")


def _check_pairs(encoded: str, where: str) -> None:
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        check_text(name, where)
        check_text(value, name)


def check_json(body: bytes) -> None:
    """Refuse NUL, lone surrogates, NaN/Infinity and deep nesting anywhere in a JSON body.

    Each of those needs an escape (`\\u0000`, `\\udfff`), a bare word or many brackets,
    so a body without any of them is passed without being parsed a second time.
    """
    if not (
        b"\\u" in body
        or b"NaN" in body
        or b"Infinity" in body
        or body.count(b"[") + body.count(b"{") > MAX_DEPTH
    ):
        return
    try:
        document = json.loads(body, parse_constant=lambda _: _NOT_A_NUMBER)
    except RecursionError:
        raise Unstorable("body", f"must not nest deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        return  # not JSON: the route's own parser answers that
    _walk(document, [], 0)


def _walk(value: Any, path: list[str], depth: int) -> None:
    field = ".".join(path) or "body"
    if value is _NOT_A_NUMBER:
        raise Unstorable(field, "must be a finite number (NaN and Infinity are not JSON)")
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise Unstorable(field, f"must not nest deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                try:
                    check_text(key, field)
                except Unstorable as exc:
                    raise Unstorable(field, f"keys {exc.message}") from None
            _walk(item, [*path, str(key)], depth + 1)
