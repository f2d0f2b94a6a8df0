"""An Ed25519 key of the deployment's token signing, with its place in the rotation.

`published` keys are in the JWKS and verify; the one `active` key also signs;
a `retired` key verifies until `verify_until` (the end of the longest token it
can have signed), then drops out. The private key is sealed under the server
secret: a database reader cannot sign.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class KeyStatus(StrEnum):
    PUBLISHED = "published"
    ACTIVE = "active"
    RETIRED = "retired"


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_private_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # last moment it signed
    verify_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
