"""Outgoing mail: an outbox row per message, rendered and sent by the worker."""
