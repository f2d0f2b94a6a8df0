"""Integration keys: a tenant's machine credentials, exchanged for short-lived tokens."""
