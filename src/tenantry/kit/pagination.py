"""Keyset pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`.

The cursor carries the sort key of the last row served, so pages stay stable
while rows are added, and each page is one index range scan.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from tenantry.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: tuple[datetime, str] | None


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> PageParams:
    return PageParams(limit, decode_cursor(cursor) if cursor else None)


PageQuery = Annotated[PageParams, Depends(_page_params)]

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    """One page of a list: its items and the cursor of the next page (null on the last)."""

    data: list[Item]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), str(row_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed(
            "The cursor is not valid",
            errors=[{"field": "cursor", "message": "not a cursor from this API"}],
        ) from exc


def _created(row: Any) -> tuple[datetime, str]:
    return row.created_at, row.id


def page_of(
    rows: list[Any], limit: int, item: Any, key: Callable[[Any], tuple[datetime, str]] = _created
) -> dict[str, Any]:
    """`{"data", "next_cursor"}` from `limit + 1` rows fetched newest first; `key` is the
    sort key the cursor carries (creation time and id unless told)."""
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return {
        "data": [item(row) for row in rows],
        "next_cursor": encode_cursor(*key(last)) if last is not None else None,
    }
