"""Host applications add provisioning steps through the `tenantry.provisioning_steps` group."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.provisioning import steps


@pytest.fixture
def host_steps(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "hostapp_steps.py").write_text(
        "from tenantry.provisioning.steps import step\n"
        "@step('hostapp.seed_demo_data')\n"
        "async def seed(context):\n"
        "    return {'seeded': True}\n"
    )
    dist_info = tmp_path / "hostapp_steps-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hostapp-steps\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[tenantry.provisioning_steps]\nhostapp = hostapp_steps\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("hostapp_steps", None)
    steps._steps.pop("hostapp.seed_demo_data", None)


def test_entry_point_steps_are_registered(host_steps: None) -> None:
    with pytest.raises(steps.StepFatal, match="no provisioning step"):
        steps.get_step("hostapp.seed_demo_data")
    steps.load_step_modules()
    assert not steps.get_step("hostapp.seed_demo_data").outside


def test_built_in_steps() -> None:
    steps.load_step_modules()
    assert steps.get_step("notify_host").outside
    for name in ("create_tenant", "create_owner", "default_settings", "welcome_mail"):
        assert not steps.get_step(name).outside
