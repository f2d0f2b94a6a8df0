"""Bodies of the token endpoint: OAuth 2 style, as a form or as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RefreshGrant(BaseModel):
    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["refresh_token"]
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=200)
