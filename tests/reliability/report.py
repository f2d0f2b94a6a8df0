"""`make reliability`: the reliability suite at its larger scale, its table written to
docs/reliability.md; `make soak` (argument `soak`): the soak alone for thirty minutes,
written to docs/soak.md.

Each test may say what it ran with pytest's `record_property`: `load` (how much),
`faults` (what was broken on purpose) and `figure` (what it measured); the table adds
the test's first docstring line, its result and its time. The exit status is pytest's.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What the suite runs: the tests of this directory and the fault tests kept beside the
# features they prove.
SUITE = [
    "tests/reliability",
    "tests/ops/test_rate_limit_outage.py",
    "tests/ops/test_disk_full.py",
    "tests/mail/test_mail.py::TestSmtp",
    "tests/tenant/test_unstorable_input.py",
    "tests/provisioning/test_crash.py",
    "tests/worker/test_processes.py",
    "tests/test_races.py",
    "tests/test_slow_bodies.py",
]

# The larger scale; each can be set in the environment instead.
SCALE = {
    "TENANTRY_FUZZ_EXAMPLES": "25",
    "TENANTRY_STATEFUL_RUNS": "100",
    "TENANTRY_STATEFUL_STEPS": "30",
    "TENANTRY_SOAK_SECONDS": "120",
}


@dataclass(frozen=True)
class Run:
    command: str
    title: str
    report: Path
    suite: list[str]
    scale: dict[str, str]


RUNS = {
    "reliability": Run(
        "make reliability", "Reliability", ROOT / "docs" / "reliability.md", SUITE, SCALE
    ),
    "soak": Run(
        "make soak",
        "Soak",
        ROOT / "docs" / "soak.md",
        ["tests/reliability/test_soak.py"],
        {"TENANTRY_SOAK_SECONDS": "1800"},
    ),
}


@dataclass
class Row:
    test: str
    what: str
    outcome: str = "passed"
    seconds: float = 0.0
    load: str = "—"
    faults: str = "—"
    figure: str = "—"


class Collector:
    """A pytest plugin that keeps one row per test."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            self.rows[item.nodeid] = Row(item.nodeid, _first_doc_line(item))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = self.rows[report.nodeid]
        row.seconds += report.duration
        if report.failed or (report.when == "call" and report.outcome != "passed"):
            row.outcome = report.outcome
        for name, value in report.user_properties:
            setattr(row, name, str(value))


def _first_doc_line(item: pytest.Item) -> str:
    """The test's docstring, else its class's, else its module's: the first line."""
    for owner in (getattr(item, "function", None), getattr(item, "cls", None), item.module):  # type: ignore[attr-defined]
        if owner is not None and (doc := (owner.__doc__ or "").strip()):
            return doc.splitlines()[0]
    return ""


def grouped(rows: list[Row]) -> list[Row]:
    """One row per test function: its parametrized cases summed, their figures joined."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.test.split("[", 1)[0], []).append(row)
    merged = []
    for test, cases in groups.items():
        failed = [case.outcome for case in cases if case.outcome != "passed"]
        figures = list(dict.fromkeys(case.figure for case in cases))
        if len(figures) > 1:  # say which case measured what
            figures = [
                f"{case.test.partition('[')[2].rstrip(']')}: {case.figure}" for case in cases
            ]
        merged.append(
            Row(
                test,
                cases[0].what,
                outcome=(failed[0] if failed else "passed")
                + (f", {len(cases)} cases" if len(cases) > 1 else ""),
                seconds=sum(case.seconds for case in cases),
                load=cases[0].load,
                faults=cases[0].faults,
                figure="; ".join(figures),
            )
        )
    return merged


def render(run: Run, rows: list[Row], scale: dict[str, str], started: str, total_s: float) -> str:
    settings = ", ".join(f"`{name}={value}`" for name, value in scale.items())
    lines = [
        f"# {run.title}",
        "",
        f"Written by `{run.command}` (tests/reliability/report.py); do not edit by hand.",
        f"Run {started} on this machine in {total_s / 60:.1f} min with {settings}.",
        "`make test` runs the fuzzer, the outage and edge tests at a smaller scale; the tests",
        "marked `reliability` (state machines, crashes, many processes, soak) run only in",
        "`make reliability`, and the thirty-minute soak in `make soak` (docs/soak.md).",
        "",
        "| Test | What it proves | Load | Faults | Result | Figure | Time |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            f"`{row.test.removeprefix('tests/')}`",
            row.what,
            row.load,
            row.faults,
            row.outcome,
            row.figure,
            f"{row.seconds:.1f} s",
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    run = RUNS[argv.pop(0)] if argv and argv[0] in RUNS else RUNS["reliability"]
    scale = {name: os.environ.get(name, default) for name, default in run.scale.items()}
    os.environ.update(scale)
    collector = Collector()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    began = time.monotonic()
    # `-m ""` lifts the default `not reliability`: here every test of the suite runs.
    arguments = ["-q", "-p", "no:cacheprovider", "-m", "", *argv, *run.suite]
    status = pytest.main(arguments, plugins=[collector])
    rows = grouped([row for row in collector.rows.values() if row.seconds])
    run.report.write_text(render(run, rows, scale, started, time.monotonic() - began))
    print(f"wrote {run.report.relative_to(ROOT)}: {len(rows)} tests")
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
