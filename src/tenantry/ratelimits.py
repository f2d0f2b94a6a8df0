"""Every rate limit of the API by name: the setting that sizes it and what its key is (a
client address, an email address, an email domain). Routes take their limits from here, and
`tenantry ratelimit reset` clears an address's or an email's counters across all of them."""

from __future__ import annotations

from enum import StrEnum

from tenantry.config import Settings
from tenantry.kit.ratelimit import Limit


class KeyedBy(StrEnum):
    ADDRESS = "address"  # tenantry.kit.ratelimit.address_key of the client
    EMAIL = "email"
    DOMAIN = "domain"


POLICIES: dict[str, tuple[str, KeyedBy]] = {
    "signup-ip": ("signup_limit_per_ip", KeyedBy.ADDRESS),
    "signup-email": ("signup_limit_per_email", KeyedBy.EMAIL),
    "signup-domain": ("signup_limit_per_domain", KeyedBy.DOMAIN),
    "signup-resend-ip": ("signup_resend_limit_per_ip", KeyedBy.ADDRESS),
    "signup-verify-ip": ("signup_verify_limit_per_ip", KeyedBy.ADDRESS),
    "login-ip": ("login_limit_per_ip", KeyedBy.ADDRESS),
    "login-email": ("login_limit_per_email", KeyedBy.EMAIL),
    "login-verify-ip": ("login_verify_limit_per_ip", KeyedBy.ADDRESS),
    "password-ip": ("password_limit_per_ip", KeyedBy.ADDRESS),
    "password-account": ("password_limit_per_account", KeyedBy.EMAIL),
    "link-failures-ip": ("link_failure_limit_per_ip", KeyedBy.ADDRESS),
}


def policy(settings: Settings, name: str) -> Limit:
    setting, _ = POLICIES[name]
    return Limit.of(name, str(getattr(settings, setting)))


def keyed_by(settings: Settings, kind: KeyedBy) -> list[Limit]:
    return [policy(settings, name) for name, (_, by) in POLICIES.items() if by is kind]
