"""Fixtures for the job engine: the test kinds and their run log."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.worker.kinds  # noqa: F401  (registers the test kinds)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """The file test kinds append their runs to."""
    path = tmp_path / "runs.log"
    path.touch()
    return path
