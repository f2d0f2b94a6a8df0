"""The tenant portal (`/portal`): a tenant's owners and admins sign in by email code and manage
integration keys and webhook endpoints (attempts, replay, secret rotation)."""
