"""Operators' switches: feature flags (kill switches) and degraded mode, stored in the
database and followed by every process within about a second."""
