"""`tenantry flags` and `tenantry degraded`: the operators' switches, from the database host."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Annotated

import typer

from tenantry.cli.console import (
    EXIT_FINDING,
    OPERATOR,
    JsonFlag,
    Reason,
    console,
    in_session,
    metrics_text,
    print_json,
    show,
)
from tenantry.config import Settings
from tenantry.flag import auto, service
from tenantry.flag.board import FLAGS, SwitchState
from tenantry.ops import slo

flags_app = typer.Typer(help="Feature flags (kill switches).", no_args_is_help=True)
degraded_app = typer.Typer(help="Degraded mode: emergency admission caps.", no_args_is_help=True)
COLUMNS = ["name", "enabled", "reason", "changed_by", "changed_at"]


class OnOff(StrEnum):
    ON = "on"
    OFF = "off"


def _followed() -> str:
    interval = Settings().flag_refresh_interval.total_seconds()
    return f"every process follows within {max(1.0, interval):.0f}s"


@flags_app.command("list")
def list_flags(as_json: JsonFlag = False) -> None:
    """Every flag: on unless an operator turned it off."""
    found = in_session(service.flags)
    show([dataclasses.asdict(state) for state in found], COLUMNS, as_json=as_json)


@flags_app.command("set")
def set_flag(
    name: Annotated[str, typer.Argument(help=f"One of {', '.join(FLAGS)}.")],
    state: OnOff,
    reason: Reason,
) -> None:
    """Turn a feature on or off; work already accepted stays queued."""
    enabled = state is OnOff.ON
    in_session(lambda s: service.set_flag(s, name, enabled, reason=reason, by=OPERATOR))
    console.print(f"{name} is {state}; {_followed()}")


def _set_degraded(state: OnOff, reason: str) -> SwitchState:
    enabled = state is OnOff.ON
    return in_session(lambda s: service.set_degraded(s, enabled, reason=reason, by=OPERATOR))


@degraded_app.command("on")
def degraded_on(reason: Reason) -> None:
    """Enter degraded mode: admission caps drop to their emergency values, health says so."""
    _set_degraded(OnOff.ON, reason)
    console.print(f"degraded mode on; {_followed()}")


@degraded_app.command("off")
def degraded_off(reason: Reason) -> None:
    """Leave degraded mode."""
    _set_degraded(OnOff.OFF, reason)
    console.print(f"degraded mode off; {_followed()}")


@degraded_app.command("status")
def degraded_status(as_json: JsonFlag = False) -> None:
    """Whether degraded mode is on, since when, by whom and why."""
    state = in_session(service.degraded)
    show([dataclasses.asdict(state)], COLUMNS, as_json=as_json)


@degraded_app.command("auto")
def degraded_auto(
    metrics_url: Annotated[
        str | None,
        typer.Option(help="A serving process's /metrics, for the request-based conditions."),
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Enter when a condition holds.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Whether the runbook's entry conditions hold (error rate > 5 %, latency > 3x its
    objective, a stalled queue); exit 1 when degraded mode is advised and not entered."""
    settings = Settings()
    metrics = metrics_text(metrics_url) if metrics_url else None
    report = in_session(lambda s: slo.check(s, settings, metrics))
    conditions = auto.entry_conditions(report, settings)
    held = [c.name for c in conditions if c.met]
    entered = False
    if held and apply:
        reason = "degraded auto: " + ", ".join(held)
        _set_degraded(OnOff.ON, reason)
        entered = True
    rows = [dataclasses.asdict(c) for c in conditions]
    if as_json:
        print_json({"enter": bool(held), "entered": entered, "conditions": rows})
    else:
        show(rows, ["name", "value", "threshold", "met"], as_json=False)
        verdict = "entered" if entered else "advised: rerun with --apply" if held else "not needed"
        console.print(f"degraded mode: {verdict}")
    if held and not entered:
        raise typer.Exit(EXIT_FINDING)
