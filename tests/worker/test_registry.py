"""Task kinds come from Tenantry itself, the `tenantry.job_kinds` entry points and settings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.worker.registry import TaskRegistry, UnknownJobKind, load_task_modules, registry
from tests.conftest import make_settings


@pytest.fixture
def host_package(tmp_path: Path) -> Iterator[Path]:
    """An installed host distribution declaring a task module through its entry points."""
    (tmp_path / "hostapp_jobs.py").write_text(
        "from tenantry.worker.registry import registry\n"
        "@registry.task('hostapp.ping')\n"
        "async def ping(context):\n"
        "    return 'pong'\n"
    )
    dist_info = tmp_path / "hostapp-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostapp\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[tenantry.job_kinds]\nhostapp = hostapp_jobs\n")
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("hostapp_jobs", None)


def test_entry_point_kinds_are_loaded(host_package: Path) -> None:
    with pytest.raises(UnknownJobKind):
        registry.get("hostapp.ping")
    load_task_modules(make_settings(host_package))
    assert registry.get("hostapp.ping").max_attempts == 5


def test_built_in_kinds() -> None:
    load_task_modules(make_settings(Path("unused")))
    assert registry.get("canary.ping").tenant_submittable
    assert not registry.get("jobs.cleanup").tenant_submittable


def test_schedules_refuse_bad_cron() -> None:
    with pytest.raises(ValueError, match="not a cron expression"):
        TaskRegistry().schedule("bad", "every tuesday", "canary.ping")
