"""Refusing what a flag switched off: `503 FEATURE_DISABLED` naming the flag (signup keeps its
own `503 SIGNUP_DISABLED`). Only new work is refused; what was accepted stays queued."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from tenantry.errors import TenantryError
from tenantry.flag.board import Switchboard
from tenantry.state import state_of


class FeatureDisabled(TenantryError):
    status, code, title = 503, "FEATURE_DISABLED", "This feature is switched off"
    headers = {"Retry-After": "60"}


def ensure_on(board: Switchboard, flag: str) -> None:
    if not board.enabled(flag):
        reason = board.switches[flag].reason
        detail = f"{flag} is switched off by the operators" + (f": {reason}" if reason else "")
        raise FeatureDisabled(detail, flag=flag)


def feature(flag: str) -> Any:
    """A route dependency: the route answers 503 while `flag` is off."""

    async def check(request: Request) -> None:
        ensure_on(state_of(request).switches, flag)

    return Depends(check)
