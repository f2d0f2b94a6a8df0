"""The portal's tests deliver webhooks to the same real receivers as the webhook tests."""

from tests.webhook.conftest import receiver  # noqa: F401 (a fixture)
