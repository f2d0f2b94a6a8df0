"""Status columns are written only by their state machine's transitions module."""

from __future__ import annotations

import ast
from pathlib import Path

import tenantry

SOURCE = Path(tenantry.__file__).parent
MACHINE_MODULES = ("transitions.py", "_transitions.py", "kit/machine.py")


def status_writes(source: str) -> list[int]:
    """Lines that assign `<row>.status`, or pass `status=` to a statement's `.values()`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [
                element
                for target in node.targets
                for element in (target.elts if isinstance(target, ast.Tuple) else [target])
            ]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets):
            lines.append(node.lineno)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
            and any(keyword.arg == "status" for keyword in node.keywords)
        ):
            lines.append(node.lineno)
    return lines


def test_the_check_sees_each_kind_of_write() -> None:
    source = (
        "job.status = 'x'\n"
        "a.token, b.status = 1, 2\n"
        "await session.execute(update(Job).values(status='x'))\n"
        "job.started_at = now\n"
    )
    assert status_writes(source) == [1, 2, 3]


def test_no_status_column_is_written_outside_a_transitions_module() -> None:
    offenders = [
        f"{path.relative_to(SOURCE)}:{line}"
        for path in sorted(SOURCE.rglob("*.py"))
        if not str(path).endswith(MACHINE_MODULES) and "migrations" not in path.parts
        for line in status_writes(path.read_text())
    ]
    assert offenders == []
    assert len(list(SOURCE.rglob("*transitions.py"))) >= 6
