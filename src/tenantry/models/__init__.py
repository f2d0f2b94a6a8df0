"""SQLAlchemy models: one file per table, all on one MetaData with a naming convention.

Importing this package registers every table, which Alembic's autogenerate
and the drift check rely on.
"""

from tenantry.models.base import Base

__all__ = ["Base"]
