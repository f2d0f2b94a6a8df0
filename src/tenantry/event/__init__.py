"""The event log: every state change, appended in the transaction that made it."""
