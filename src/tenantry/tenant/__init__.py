"""Tenants and their members, as their users read them."""
