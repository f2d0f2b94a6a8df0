"""The SLO check: each objective of the runbooks, its value now, and whether it breaches.

Two sources. What the database holds is the same from every process and from the CLI:
provisioning p95, invite acceptance, funnel completion, mail backlog, queue stall. What
only requests know comes from Prometheus metrics, as text (this process's own `/metrics`,
or a deployment's through `--metrics-url`): signup success, magic-link p95, error rate;
those counters are cumulative, so their window is the serving processes' lifetime, and the
windowed view is the alert rules' (deploy/prometheus/rules.yml). An objective breaches when
its value is past the alert threshold; `target` is what the service aims for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.kit.clock import utcnow
from tenantry.mail import service as mail_service
from tenantry.models import Job, JobStatus
from tenantry.ops import funnel

OK, BREACH, NO_DATA = "ok", "breach", "no_data"
MAGIC_LINK_ROUTES = frozenset({"/v1/invitations/accept", "/v1/invitations/lookup", "/activate"})
PROCESS_LIFETIME = "since the serving processes started"
OBJECTIVES = (  # in the contract's order
    "signup_success",
    "invite_acceptance_72h",
    "magic_link_p95",
    "provisioning_p95",
    "funnel_completion",
    "mail_backlog",
    "queue_stall",
    "error_rate",
)


@dataclass(frozen=True)
class Objective:
    name: str
    value: float | None
    target: float
    alert: float
    window: str
    status: str


def _judged(
    name: str, value: float | None, target: float, alert: float, window: str, *, low_is_bad: bool
) -> Objective:
    if value is None:
        status = NO_DATA
    elif low_is_bad:
        status = BREACH if value < alert else OK
    else:
        status = BREACH if value > alert else OK
    return Objective(name, value, target, alert, window, status)


# -- from the database


async def _provisioning_p95(session: AsyncSession, settings: Settings) -> Objective:
    now = utcnow()
    took = await funnel.provisioning_ms(session, funnel.Window(now - timedelta(hours=1), now))
    p95 = None if took["p95"] is None else took["p95"] / 1000
    target, alert = settings.slo_provisioning_p95, settings.slo_provisioning_p95_alert
    return _judged(
        "provisioning_p95",
        p95,
        target.total_seconds(),
        alert.total_seconds(),
        "1h",
        low_is_bad=False,
    )


async def _invite_acceptance(session: AsyncSession, settings: Settings) -> Objective:
    """Invitations sent 3 to 10 days ago: each has had its whole 72 hours."""
    end = utcnow() - funnel.ACCEPTANCE_WINDOW
    window = funnel.Window(end - timedelta(days=7), end)
    return _judged(
        "invite_acceptance_72h",
        await funnel.invite_acceptance(session, settings, window),
        settings.slo_invite_acceptance,
        settings.slo_invite_acceptance_alert,
        "7d sent, 72h to accept",
        low_is_bad=True,
    )


async def _funnel_completion(session: AsyncSession, settings: Settings) -> Objective:
    """Of the signups started in the last day, the share already a provisioned tenant."""
    now = utcnow()
    counts = await funnel.stage_counts(session, funnel.Window(now - timedelta(hours=24), now))
    started, provisioned = counts[funnel.STAGES[0]], counts[funnel.STAGES[2]]
    return _judged(
        "funnel_completion",
        round(provisioned / started, 4) if started else None,
        settings.slo_funnel_completion,
        settings.slo_funnel_completion_alert,
        "24h",
        low_is_bad=True,
    )


async def _mail_backlog(session: AsyncSession, settings: Settings) -> Objective:
    pending = float(await mail_service.backlog(session, settings))
    limit = float(settings.slo_mail_backlog)
    return _judged("mail_backlog", pending, limit, limit, "now", low_is_bad=False)


async def queue_stall(session: AsyncSession, settings: Settings) -> Objective:
    """Minutes since a job last finished, while due jobs wait; 0 when nothing is due."""
    now = utcnow()
    due = select(func.count()).where(Job.status == JobStatus.PENDING, Job.run_at <= now)
    finished = select(func.max(Job.finished_at)).where(Job.status == JobStatus.COMPLETED)
    waiting = int((await session.execute(due)).scalar_one())
    last = (await session.execute(finished)).scalar_one()
    stalled_s = 0.0
    if waiting:
        oldest = select(func.min(Job.run_at)).where(Job.status == JobStatus.PENDING)
        since = last or (await session.execute(oldest)).scalar_one()
        stalled_s = max(0.0, (now - since).total_seconds()) if since else 0.0
    limit = settings.slo_queue_stall.total_seconds() / 60
    return _judged("queue_stall", round(stalled_s / 60, 2), limit, limit, "now", low_is_bad=False)


# -- from metrics


def _series(families: Iterable[Metric], name: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in families
        if family.name == name
        for sample in family.samples
    ]


def _requests(
    samples: list[tuple[str, dict[str, str], float]], *, route: str | None = None
) -> tuple[float, float]:
    """(all, 5xx) requests counted by the request-duration histogram."""
    total = bad = 0.0
    for name, labels, value in samples:
        if not name.endswith("_count") or (route and labels.get("route") != route):
            continue
        total += value
        bad += value if labels.get("status_class") == "5xx" else 0.0
    return total, bad


def _quantile(samples: list[tuple[str, dict[str, str], float]], q: float) -> float | None:
    """histogram_quantile over the magic-link routes' buckets, merged: linear in a bucket."""
    buckets: dict[float, float] = {}
    for name, labels, value in samples:
        if name.endswith("_bucket") and labels.get("route") in MAGIC_LINK_ROUTES:
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank, lower, below = q * buckets[bounds[-1]], 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / (buckets[bound] - below) if buckets[bound] > below else 1
            return round(lower + (bound - lower) * share, 4)
        lower, below = bound, buckets[bound]
    return lower


def from_metrics(settings: Settings, text: str | None) -> list[Objective]:
    families = list(text_string_to_metric_families(text)) if text is not None else []
    samples = _series(families, "tenantry_http_request_duration_seconds")
    signups, failed_signups = _requests(samples, route="/v1/signup")
    everything, errors = _requests(samples)
    return [
        _judged(
            "signup_success",
            round(1 - failed_signups / signups, 4) if signups else None,
            settings.slo_signup_success,
            settings.slo_signup_success_alert,
            PROCESS_LIFETIME,
            low_is_bad=True,
        ),
        _judged(
            "magic_link_p95",
            _quantile(samples, 0.95),
            settings.slo_magic_link_p95.total_seconds(),
            settings.slo_magic_link_p95_alert.total_seconds(),
            PROCESS_LIFETIME,
            low_is_bad=False,
        ),
        _judged(
            "error_rate",
            round(errors / everything, 4) if everything else None,
            settings.slo_error_rate,
            settings.slo_error_rate_alert,
            PROCESS_LIFETIME,
            low_is_bad=False,
        ),
    ]


async def check(session: AsyncSession, settings: Settings, metrics: str | None) -> dict[str, Any]:
    """Every objective, in the contract's order; `metrics` is Prometheus text, or None."""
    measured = [
        *from_metrics(settings, metrics),
        await _invite_acceptance(session, settings),
        await _provisioning_p95(session, settings),
        await _funnel_completion(session, settings),
        await _mail_backlog(session, settings),
        await queue_stall(session, settings),
    ]
    objectives = sorted(measured, key=lambda o: OBJECTIVES.index(o.name))
    breached = any(o.status == BREACH for o in objectives)
    return {
        "status": BREACH if breached else OK,
        "objectives": [asdict(o) for o in objectives],
    }
