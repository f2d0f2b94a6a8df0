"""The Prometheus metrics Tenantry exports, defined once and imported where they are counted.

With several server processes, set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory shared by them before they start: `/metrics` then aggregates every
process's files (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUEST_DURATION = Histogram(
    "tenantry_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route", "method", "status_class"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def render_latest() -> tuple[bytes, str]:
    """Serialise every metric of this process, or of all processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


_FAST_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

JOBS_ENQUEUED = Counter("tenantry_jobs_enqueued_total", "Jobs committed to the queue.", ["kind"])
JOBS_FINISHED = Counter(
    "tenantry_jobs_finished_total",
    "Job attempts that ended, by outcome: completed, retry (will run again), failed.",
    ["kind", "outcome"],
)
JOB_DURATION = Histogram(
    "tenantry_job_duration_seconds", "Time a task handler ran.", ["kind"], buckets=_FAST_BUCKETS
)
JOB_PICKUP_DELAY = Histogram(
    "tenantry_job_pickup_delay_seconds",
    "From the time a job became due (run_at) to its claim by a worker.",
    buckets=_FAST_BUCKETS,
)
JOBS_LEASE_EXPIRED = Counter(
    "tenantry_jobs_lease_expired_total", "Jobs taken back from a worker whose lease ran out."
)
QUEUE_DEPTH = Gauge(
    "tenantry_jobs_queue_depth",
    "Jobs per queue and status, read from the database at scrape time.",
    ["queue", "status"],
    multiprocess_mode="livemax",
)

MAIL_SENT = Counter(
    "tenantry_mail_sent_total",
    "Delivery attempts of outgoing mail, by template and outcome: sent, retry, failed.",
    ["template", "outcome"],
)

MAIL_BACKLOG = Gauge(
    "tenantry_mail_backlog",
    "Mail waiting in the outbox (PENDING), read from the database at scrape time.",
    multiprocess_mode="livemax",
)
SIGNUP_REQUESTS = Counter(
    "tenantry_signup_requests_total",
    "Signup starts by outcome: created, replayed, or the error code.",
    ["outcome"],
)
SIGNUP_SESSIONS_PURGED = Counter(
    "tenantry_signup_sessions_purged_total",
    "Signup sessions the purge expired or deleted.",
    ["action"],
)
SIGNUP_SESSIONS = Gauge(
    "tenantry_signup_sessions",
    "Signup sessions by status, read from the database at scrape time.",
    ["status"],
    multiprocess_mode="livemax",
)
SIGNUP_VERIFICATIONS = Counter(
    "tenantry_signup_verifications_total",
    "Code verifications by outcome: verified, or the error code.",
    ["outcome"],
)
PROVISIONING_DURATION = Histogram(
    "tenantry_provisioning_duration_seconds",
    "From email verification to a terminal provisioning outcome.",
    ["plan", "outcome"],
    buckets=_FAST_BUCKETS,
)
PROVISIONING_STEPS = Counter(
    "tenantry_provisioning_steps_total",
    "Provisioning step attempts by outcome.",
    ["step", "outcome"],
)
RATE_LIMIT_REJECTIONS = Counter(
    "tenantry_ratelimit_rejections_total", "Requests refused by a rate limit.", ["limiter"]
)
RATE_LIMIT_STORE_FALLBACKS = Counter(
    "tenantry_ratelimit_store_fallbacks_total",
    "Times the shared rate-limit store (Redis) failed and limits moved to process memory.",
)
RATE_LIMIT_STORE_DEGRADED = Gauge(
    "tenantry_ratelimit_store_degraded",
    "1 while a process counts rate limits in its own memory because Redis fails.",
    multiprocess_mode="livemax",
)

AUTHZ_DENIALS = Counter(
    "tenantry_authz_denials_total", "Requests refused by authorization.", ["reason"]
)

KEY_EXCHANGE_FAILURES = Counter(
    "tenantry_key_exchange_failures_total", "Refused integration-key exchanges.", ["reason"]
)

AUTHZ_DENIALS_DROPPED = Counter(
    "tenantry_authz_denials_dropped_total",
    "Refusals not written to the denials table because its buffer was full (still logged).",
)

CANARY_SUCCESS = Gauge(
    "tenantry_canary_success",
    "1 when the last canary run passed every stage, 0 when it failed.",
    multiprocess_mode="mostrecent",
)
CANARY_STAGE_DURATION = Gauge(
    "tenantry_canary_stage_duration_seconds",
    "How long each stage of the last canary run took.",
    ["stage"],
    multiprocess_mode="mostrecent",
)
CANARY_LAST_SUCCESS = Gauge(
    "tenantry_canary_last_success_timestamp_seconds",
    "When a canary run last passed (Unix time).",
    multiprocess_mode="max",
)

INTEGRITY_FINDINGS = Gauge(
    "tenantry_integrity_findings",
    "What the last integrity check found, by kind (tenantry integrity check).",
    ["kind"],
    multiprocess_mode="livemax",
)

TOKEN_VALIDATION_FAILURES = Counter(
    "tenantry_token_validation_failures_total",
    "Invitation links refused: invalid, expired, revoked or used.",
    ["kind"],
)

WEBHOOK_ATTEMPTS = Counter(
    "tenantry_webhook_attempts_total",
    "Webhook delivery attempts by outcome: succeeded, failed (an answer that is not 2xx), "
    "error (no answer: timeout, refused connection, forbidden address).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_DURATION = Histogram(
    "tenantry_webhook_attempt_duration_seconds",
    "From sending a webhook delivery to its answer (or its failure).",
    buckets=_FAST_BUCKETS,
)
WEBHOOK_BACKLOG = Gauge(
    "tenantry_webhook_backlog",
    'Webhook deliveries waiting (pending or in flight): endpoint="all", and the ten '
    "endpoints with the most; read from the database at scrape time.",
    ["endpoint"],
    multiprocess_mode="livemax",
)
WEBHOOK_ENDPOINTS_DISABLED = Gauge(
    "tenantry_webhook_endpoints_disabled",
    "Webhook endpoints disabled (by their owners, operators, a 410 or days of failure).",
    multiprocess_mode="livemax",
)
