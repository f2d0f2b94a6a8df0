"""A status column's state machine: the allowed moves in one table, each move one conditional
UPDATE on the status the row was read in.

Two writers that read the same row race on that UPDATE: the database lets one match
(PostgreSQL re-checks the WHERE after waiting for the other's row lock; SQLite has one
writer), so the loser sees no row and knows it lost, instead of overwriting the winner.
Each domain's `transitions` module builds one `Machine` and is the only code that writes
its status column (tests/test_transitions.py checks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, inspect, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tenantry.errors import TenantryError


class Stateful(Protocol):
    status: Any


Row = TypeVar("Row", bound=Stateful)
State = TypeVar("State", bound=str)


class Machine(Generic[Row, State]):
    def __init__(
        self,
        model: type[Row],
        allowed: Mapping[State, Iterable[State]],
        refusal: type[TenantryError],
    ) -> None:
        self.model = model
        self.allowed = {str(k): frozenset(map(str, targets)) for k, targets in allowed.items()}
        self.refusal = refusal
        self._key = inspect(model).primary_key[0]

    def check(self, current: str, to: State) -> None:
        """Raise the machine's refusal when `current` may not become `to`."""
        if str(to) not in self.allowed[str(current)]:
            name = self.model.__name__.lower()
            raise self.refusal(f"the {name} is {current}; it cannot become {to}")

    async def move(
        self,
        session: AsyncSession,
        row: Row,
        to: State,
        *conditions: ColumnElement[bool],
        **changes: Any,
    ) -> bool:
        """Move `row` from the status it was read in to `to`, if it is still in it and meets
        `conditions`; True when this call won. The row is refreshed either way."""
        current = str(row.status)
        self.check(current, to)
        model: Any = self.model
        status: InstrumentedAttribute[Any] = model.status
        won = await session.execute(
            update(model)
            .where(self._key == getattr(row, self._key.key), status == current, *conditions)
            .values(status=to, **changes)
            .returning(self._key)
            .execution_options(synchronize_session=False)
        )
        moved = won.scalar_one_or_none() is not None
        await session.refresh(row)
        return moved
