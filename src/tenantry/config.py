"""Settings: one pydantic-settings class read from `TENANTRY_*` variables and `.env`.

Variable names are part of the public contract, so fields stay flat; they are
grouped below by concern. Values derived from others (the default database URL
under the data dir) are properties, never stored twice.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tenantry.kit.durations import parse_duration
from tenantry.kit.email import accept_synthetic_domain


def _human_duration(value: object) -> object:
    """Accept `30s`, `15m`, `2h`, `7d` and bare seconds besides ISO 8601."""
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return timedelta(seconds=int(text))
        try:
            return parse_duration(text)
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(_human_duration)]


class Environment(StrEnum):
    DEV = "dev"
    PROD = "prod"


class EmailBackend(StrEnum):
    FILE = "file"
    SMTP = "smtp"
    CONSOLE = "console"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TENANTRY_", env_file=".env", extra="ignore", frozen=True
    )

    # -- deployment
    env: Environment = Environment.DEV
    data_dir: Path = Path("./.tenantry")
    public_url: str = "http://127.0.0.1:8000"
    product_name: str = "Tenantry"  # how mails and pages name the product
    # The hosted pages' theme: the name they show (default: the product name), a logo (an
    # https or data: URL) and the accent colour.
    brand_name: str | None = None
    brand_logo_url: str | None = None
    brand_color: str = Field(default="#2456c7", pattern=r"^#[0-9a-fA-F]{6}$")
    # Where the hosted signup sends the new owner, with `?code=` to exchange once (60 s)
    # through `grant_type=authorization_code`; unset: the last page says where to sign in.
    handoff_url: str | None = None
    # Where people sign in to the product (the host application's sign-in page): the next
    # step the activation pages link to; unset, they only say how.
    sign_in_url: str | None = None
    log_level: str = "INFO"

    # -- database
    database_url: str | None = None
    migration_database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1)

    # -- rate limits
    redis_url: str | None = None

    # -- mail
    email_backend: EmailBackend = EmailBackend.FILE
    smtp_url: str | None = None
    mail_from: str = "Tenantry <no-reply@tenantry.localhost>"
    smtp_timeout: Duration = timedelta(seconds=10)

    # -- auth: secrets come from here in prod; in dev they are generated into the data dir
    secret_key: str | None = Field(default=None, min_length=32)
    # Keys TENANTRY_SECRET_KEY replaced: digests and sealed values made under them still
    # verify and open; everything new is made under the current key.
    previous_secret_keys: Annotated[list[str], NoDecode] = []
    signing_key: str | None = None  # PEM of the Ed25519 private key that signs
    verification_keys: str | None = None  # PEM public keys that only verify (rotation)

    # -- http
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # A request body must arrive whole within this, before any handler runs (else 408).
    body_read_timeout: Duration = timedelta(seconds=10)
    # Peers whose X-Forwarded-For is believed (like uvicorn's --forwarded-allow-ips):
    # addresses or CIDR ranges, comma-separated.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = [
        IPv4Network("127.0.0.1/32")
    ]

    # -- signup
    signup_enabled: bool = True
    # Each plan names its provisioning steps, in order (JSON in the environment).
    plans: dict[str, list[str]] = {
        "starter": ["create_tenant", "create_owner", "default_settings", "welcome_mail"],
        "pro": ["create_tenant", "create_owner", "default_settings", "notify_host", "welcome_mail"],
    }
    signup_limit_per_ip: str = "20/hour"
    signup_limit_per_email: str = "5/hour"
    signup_limit_per_domain: str = "50/hour"
    signup_resend_limit_per_ip: str = "30/hour"
    # Codes tried from one address: guessing a six-digit code needs ~500,000 tries.
    signup_verify_limit_per_ip: str = "60/hour"
    login_limit_per_ip: str = "30/hour"
    login_limit_per_email: str = "10/hour"
    login_verify_limit_per_ip: str = "60/hour"
    password_limit_per_ip: str = "20/hour"  # noqa: S105 (a rate, not a password)
    password_limit_per_account: str = "10/hour"  # noqa: S105
    block_disposable_email: bool = False
    signup_code_ttl: Duration = timedelta(minutes=10)
    signup_resend_cooldown: Duration = timedelta(seconds=60)
    signup_max_codes: int = Field(default=5, ge=1)
    signup_max_attempts: int = Field(default=5, ge=1)
    signup_session_ttl: Duration = timedelta(hours=24)
    signup_in_flight_deadline: Duration = timedelta(hours=1)
    signup_retention: Duration = timedelta(days=30)
    continuation_token_ttl: Duration = timedelta(hours=1)
    invitation_ttl: Duration = timedelta(hours=72)
    # Failed checks of invitation links per client address, before it is refused for a while.
    link_failure_limit_per_ip: str = "10/minute"
    access_token_ttl: Duration = timedelta(minutes=15)
    refresh_token_ttl: Duration = timedelta(days=7)
    # The longest lifetime any access token may have (`token mint --ttl` included): a
    # retired signing key verifies this long after it last signed.
    max_token_ttl: Duration = timedelta(hours=24)
    # How often each process looks for new revocations and signing-key changes.
    auth_refresh_interval: Duration = timedelta(seconds=1)
    # How often each process reads the operators' flags and degraded mode.
    flag_refresh_interval: Duration = timedelta(seconds=1)

    # -- provisioning: the host application's endpoint called by the `notify_host` step
    provisioning_webhook_url: str | None = None
    provisioning_webhook_secret: str | None = None  # default: derived from the server secret
    provisioning_webhook_timeout: Duration = timedelta(seconds=10)

    # -- outbound webhooks
    # Networks a destination may be in although they are not public (e.g. 127.0.0.0/8 for
    # tests); CIDRs, comma-separated.
    webhook_allowed_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = []
    # When set, the only hosts a destination may name (`*.example.com` globs).
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = []
    webhook_timeout: Duration = timedelta(seconds=15)  # a 2xx within this is a success
    webhook_concurrency: int = Field(default=50, ge=1)  # deliveries in flight per worker
    webhook_max_in_flight_per_endpoint: int = Field(default=10, ge=1)  # over all workers
    # A delivery's claim, renewed while its dispatcher lives; a dead one's is taken back.
    webhook_lease: Duration = timedelta(seconds=30)
    webhook_disable_after: Duration = timedelta(days=5)  # without a success: disabled
    webhook_rotation_grace: Duration = timedelta(hours=24)  # both secrets sign meanwhile

    # -- jobs
    job_modules: Annotated[list[str], NoDecode] = []  # host modules whose @task kinds to load
    worker_concurrency: int = Field(default=10, ge=1)
    job_lease: Duration = timedelta(seconds=30)
    job_poll_interval: Duration = timedelta(seconds=1)  # fallback when no wake-up arrives
    job_backoff_base: Duration = timedelta(seconds=2)
    job_backoff_max: Duration = timedelta(minutes=10)
    job_retention_completed: Duration = timedelta(hours=24)
    job_retention_failed: Duration = timedelta(days=7)
    worker_shutdown_grace: Duration = timedelta(seconds=20)
    # Admission caps over PENDING + PROCESSING jobs submitted through the jobs API.
    enqueue_max_inflight_total: int = Field(default=80, ge=1)
    enqueue_max_inflight_per_tenant: int = Field(default=20, ge=1)
    enqueue_max_inflight_per_kind: dict[str, int] = {}
    # The caps while degraded mode is on (tenantry degraded on).
    degraded_max_inflight_total: int = Field(default=10, ge=1)
    degraded_max_inflight_per_tenant: int = Field(default=5, ge=1)

    # -- observing: the canary and the objectives the SLO check holds the service to
    # Addresses here are the canary's: their mail never leaves, their traffic is counted
    # nowhere but in the canary's own record.
    canary_email_domain: str = "canary.tenantry.invalid"
    # Seconds a canary stage may take before it is an SLO_BREACH, by stage (JSON), over the
    # defaults (auth 3 s, enqueue 5 s, completion 90 s; see tenantry.ops.canary).
    canary_budgets: dict[str, float] = {}
    canary_interval: Duration | None = None  # unset: no in-process canary
    canary_retention: Duration = timedelta(days=90)
    alert_webhook_url: str | None = None  # a chat-style {"text"} POST when a canary run fails
    slo_signup_success: float = Field(default=0.98, gt=0, le=1)
    slo_signup_success_alert: float = Field(default=0.95, gt=0, le=1)
    slo_invite_acceptance: float = Field(default=0.6, gt=0, le=1)
    slo_invite_acceptance_alert: float = Field(default=0.4, gt=0, le=1)
    slo_magic_link_p95: Duration = timedelta(milliseconds=300)
    slo_magic_link_p95_alert: Duration = timedelta(milliseconds=600)
    slo_provisioning_p95: Duration = timedelta(seconds=2)
    slo_provisioning_p95_alert: Duration = timedelta(seconds=3)
    slo_funnel_completion: float = Field(default=0.5, gt=0, le=1)
    slo_funnel_completion_alert: float = Field(default=0.3, gt=0, le=1)
    slo_mail_backlog: int = Field(default=100, ge=0)
    slo_queue_stall: Duration = timedelta(minutes=10)
    slo_error_rate: float = Field(default=0.01, gt=0, le=1)
    slo_error_rate_alert: float = Field(default=0.05, gt=0, le=1)

    def is_canary_address(self, email: str) -> bool:
        return email.rpartition("@")[2].lower() == self.canary_email_domain.lower()

    @field_validator("canary_email_domain")
    @classmethod
    def _canary_addresses_validate(cls, domain: str) -> str:
        """The canary's domain is special-use by default (`.invalid`): addresses there must
        pass the email check in every process that loads these settings."""
        accept_synthetic_domain(domain)
        return domain.lower()

    @field_validator(
        "job_modules",
        "trusted_proxies",
        "previous_secret_keys",
        "webhook_allowed_networks",
        "webhook_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return (
            [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, str)
            else value
        )

    @field_validator("plans")
    @classmethod
    def _plans_name_known_steps(cls, plans: dict[str, list[str]]) -> dict[str, list[str]]:
        """A plan with no steps, or naming a step nobody registered, fails here, at start,
        not at the first signup that uses it."""
        from tenantry.provisioning.steps import step_names  # steps import these settings

        known = step_names()
        for name, steps in plans.items():
            if not steps:
                raise ValueError(f"plan {name!r} has no steps")
            if unknown := [step for step in steps if step not in known]:
                raise ValueError(
                    f"plan {name!r} names unknown steps {unknown}; known: {sorted(known)}"
                )
            if len(set(steps)) != len(steps):
                raise ValueError(f"plan {name!r} names a step twice")
        if not plans:
            raise ValueError("no plan is configured")
        return plans

    @property
    def is_prod(self) -> bool:
        return self.env is Environment.PROD

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'tenantry.db'}"

    @property
    def resolved_migration_database_url(self) -> str:
        return self.migration_database_url or self.resolved_database_url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def dev_only_settings(self) -> list[str]:
        """Name every setting that is fine on a laptop and wrong in production."""
        problems = []
        if self.email_backend is EmailBackend.FILE:
            problems.append("TENANTRY_EMAIL_BACKEND=file (mail would never leave the machine)")
        if self.email_backend is EmailBackend.SMTP and not self.smtp_url:
            problems.append("TENANTRY_SMTP_URL is unset while TENANTRY_EMAIL_BACKEND=smtp")
        if self.secret_key is None:
            problems.append("TENANTRY_SECRET_KEY is unset (a generated secret would be used)")
        if self.signing_key is None:
            problems.append("TENANTRY_SIGNING_KEY is unset (a generated signing key would be used)")
        if not self.public_url.startswith("https://"):
            problems.append(f"TENANTRY_PUBLIC_URL={self.public_url} is not https")
        return problems


class SettingsError(RuntimeError):
    """The settings cannot run in the chosen environment; the message names each problem."""


def check_environment(settings: Settings) -> None:
    if settings.is_prod and (problems := settings.dev_only_settings()):
        raise SettingsError("TENANTRY_ENV=prod refuses dev-only settings: " + "; ".join(problems))
