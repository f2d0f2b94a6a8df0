"""SQLAlchemy models: one file per table, all on one MetaData with a naming convention.

Importing this package registers every table, which Alembic's autogenerate
and the drift check rely on.
"""

from tenantry.models.base import Base
from tenantry.models.job import Job, JobStatus
from tenantry.models.job_tenant_clock import JobTenantClock
from tenantry.models.mail_message import MailMessage, MailStatus
from tenantry.models.queue_state import QueueState
from tenantry.models.schedule import Schedule

__all__ = [
    "Base",
    "Job",
    "JobStatus",
    "JobTenantClock",
    "MailMessage",
    "MailStatus",
    "QueueState",
    "Schedule",
]
