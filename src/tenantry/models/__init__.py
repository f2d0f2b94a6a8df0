"""SQLAlchemy models: one file per table, all on one MetaData with a naming convention.

Importing this package registers every table, which Alembic's autogenerate
and the drift check rely on.
"""

from tenantry.models.abuse_signal import AbuseSignal, RateLimitReset
from tenantry.models.audit_record import AuditHead, AuditRecord
from tenantry.models.auth_revision import AuthRevision
from tenantry.models.authz_denial import AuthzDenial
from tenantry.models.base import Base
from tenantry.models.canary_run import CanaryRun
from tenantry.models.event import Event
from tenantry.models.event_count import EventCount
from tenantry.models.idempotency_record import IdempotencyRecord
from tenantry.models.incident import Incident, IncidentPost, IncidentStatus
from tenantry.models.integration_key import IntegrationKey
from tenantry.models.invitation import Invitation, InvitationStatus
from tenantry.models.job import Job, JobStatus
from tenantry.models.job_tenant_clock import JobTenantClock
from tenantry.models.login_challenge import LoginChallenge
from tenantry.models.mail_message import MailMessage, MailStatus
from tenantry.models.membership import Membership
from tenantry.models.operator import (
    ConsoleSession,
    ConsoleSessionStatus,
    Operator,
    OperatorRole,
)
from tenantry.models.promo_code import PromoCode
from tenantry.models.provisioning_step import ProvisioningStep, StepStatus
from tenantry.models.queue_state import QueueState
from tenantry.models.refresh_token import RefreshToken
from tenantry.models.schedule import Schedule
from tenantry.models.signing_key import KeyStatus, SigningKey
from tenantry.models.signup_session import SignupSession, SignupStatus
from tenantry.models.switch import Switch
from tenantry.models.tenant import Tenant, TenantStatus
from tenantry.models.token_revocation import RevocationKind, TokenRevocation
from tenantry.models.user import User
from tenantry.models.webhook import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

__all__ = [
    "AbuseSignal",
    "AuditHead",
    "AuditRecord",
    "AuthRevision",
    "AuthzDenial",
    "Base",
    "CanaryRun",
    "ConsoleSession",
    "ConsoleSessionStatus",
    "DeliveryStatus",
    "EndpointStatus",
    "Event",
    "EventCount",
    "IdempotencyRecord",
    "Incident",
    "IncidentPost",
    "IncidentStatus",
    "IntegrationKey",
    "Invitation",
    "InvitationStatus",
    "Job",
    "JobStatus",
    "JobTenantClock",
    "KeyStatus",
    "LoginChallenge",
    "MailMessage",
    "MailStatus",
    "Membership",
    "Operator",
    "OperatorRole",
    "PromoCode",
    "ProvisioningStep",
    "QueueState",
    "RateLimitReset",
    "RefreshToken",
    "RevocationKind",
    "Schedule",
    "SigningKey",
    "SignupSession",
    "SignupStatus",
    "StepStatus",
    "Switch",
    "Tenant",
    "TenantStatus",
    "TokenRevocation",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
]
