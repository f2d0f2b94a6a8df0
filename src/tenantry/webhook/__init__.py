"""Outbound webhooks: endpoints per tenant, messages fanned out from events in the same
transaction, Standard Webhooks signing, a retry schedule, SSRF-safe delivery, replay."""
