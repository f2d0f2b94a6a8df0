"""What operators see of webhooks: the doctor's warning, the metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.fixtures.cli import run_tenantry
from tests.fixtures.workers import wait_for
from tests.ops.test_doctor import doctor
from tests.webhook.conftest import Hooks, Receiver, attempts, dispatching, register


async def test_an_endpoint_its_receiver_gave_up_on_is_a_warning_and_a_metric(
    hooks: Hooks,
) -> None:
    hooks.receiver.reply = lambda call: (410, {}, b"")
    async with hooks.client_for(hooks.settings) as client:
        gone = await register(client, hooks.owner, hooks.receiver.url("/gone"))
        await register(client, hooks.owner, hooks.receiver.url("/paused"), enabled=False)
        await hooks.emit()
        async with hooks.dispatching():

            async def attempted() -> bool:
                return len(await attempts(hooks.database)) == 1

            await wait_for(attempted)
        await hooks.emit()  # waits for nobody: both are off
        metrics = (await client.get("/metrics")).text
    assert 'tenantry_webhook_attempts_total{outcome="failed"}' in metrics
    assert "tenantry_webhook_endpoints_disabled 2.0" in metrics
    assert 'tenantry_webhook_backlog{endpoint="all"} 0.0' in metrics
    assert "tenantry_webhook_attempt_duration_seconds_count" in metrics
    code, checks = await doctor(hooks.settings)
    assert code == 0
    warning = checks["webhook_endpoints_disabled"]
    assert warning["status"] == "warn"
    assert gone["id"] in warning["detail"] and "gone" in warning["detail"]
    assert "webhooks enable" in warning["action"]
    assert checks["webhook_backlog"]["status"] == "ok"


async def test_endpoint_secrets_outlive_a_server_secret_rotation(
    hooks: Hooks,
) -> None:
    old, new = "o" * 40, "n" * 40
    before = hooks.settings.model_copy(update={"secret_key": old})
    rotated = hooks.settings.model_copy(update={"secret_key": new, "previous_secret_keys": [old]})
    forgotten = hooks.settings.model_copy(update={"secret_key": new})
    async with hooks.client_for(before) as client:
        endpoint = await register(client, hooks.owner, hooks.receiver.url())
    hooks.receiver.secrets = [endpoint["secret"]]
    rotation = {"TENANTRY_SECRET_KEY": new, "TENANTRY_PREVIOUS_SECRET_KEYS": old}
    _, checks = await doctor(rotated, **rotation)
    assert "1 webhook endpoints still need a previous key" in checks["secret_rotation"]["detail"]
    await hooks.emit()
    async with dispatching(rotated):
        await wait_for(_calls(hooks.receiver, 1))
    code, output = await run_tenantry(rotated, "webhooks", "reseal", env=rotation)
    assert code == 0 and "1 endpoints sealed again" in output
    await hooks.emit()
    async with dispatching(forgotten):  # the old secret is no longer needed
        await wait_for(_calls(hooks.receiver, 2))
    assert [call.verified_with for call in hooks.receiver.calls] == [[endpoint["secret"]]] * 2


def _calls(receiver: Receiver, n: int) -> Callable[[], Awaitable[bool]]:
    async def arrived() -> bool:
        return len(receiver.calls) >= n

    return arrived
