"""When to enter degraded mode, from the SLO check: the runbook's entry conditions (error rate
over 5 %, latency over three times its objective, a stalled queue). `tenantry degraded auto`
says whether they hold; it switches only when told to (`--apply`).

The SLO check judges what it can see now: request objectives over the serving process's
lifetime (from its /metrics), the queue over the stall threshold (10 minutes). The same
conditions held for 10 minutes are the alert rules' job (deploy/prometheus/rules.yml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantry.config import Settings

LATENCY_FACTOR = 3


@dataclass(frozen=True)
class Condition:
    name: str
    value: float | None
    threshold: float
    met: bool


def _value(report: dict[str, Any], name: str) -> float | None:
    found = next((o for o in report["objectives"] if o["name"] == name), None)
    return None if found is None else found["value"]


def entry_conditions(report: dict[str, Any], settings: Settings) -> list[Condition]:
    """Each condition with the SLO check's value; a condition without data is not met."""
    thresholds = {
        "error_rate": settings.slo_error_rate_alert,
        "magic_link_p95": LATENCY_FACTOR * settings.slo_magic_link_p95.total_seconds(),
        "provisioning_p95": LATENCY_FACTOR * settings.slo_provisioning_p95.total_seconds(),
        "queue_stall": settings.slo_queue_stall.total_seconds() / 60,
    }
    conditions = []
    for name, threshold in thresholds.items():
        value = _value(report, name)
        met = value is not None and value > threshold
        conditions.append(Condition(name, value, threshold, met))
    return conditions
