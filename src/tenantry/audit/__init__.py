"""The audit trail: who did what to the deployment, why, and what it changed."""
