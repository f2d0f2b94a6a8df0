"""The operator console (`/console`): operators sign in by email code, see the triage views,
and act with a reason, every action audited and CSRF-protected."""
