"""SSRF: a webhook reaches public addresses only, judged on the address actually connected to."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.webhook.addresses import DestinationPolicy, ForbiddenDestination
from tests.conftest import AppFactory, make_settings
from tests.fixtures.workers import wait_for
from tests.webhook.conftest import Hooks, Owner, Receiver, attempts, dispatching, emit

NOT_PUBLIC = [
    "0.0.0.1",  # "this network"
    "10.1.2.3",  # RFC 1918
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # a cloud's metadata service, in CGNAT
    "127.0.0.1",  # loopback
    "169.254.169.254",  # link-local: the cloud metadata address
    "172.16.0.1",  # RFC 1918
    "192.0.0.1",  # IETF protocol assignments
    "192.0.2.1",  # documentation
    "192.168.1.1",  # RFC 1918
    "198.18.0.1",  # benchmarking
    "198.51.100.1",  # documentation
    "203.0.113.1",  # documentation
    "224.0.0.1",  # multicast
    "239.255.255.250",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",  # broadcast
    "::",  # unspecified
    "::1",  # loopback
    "fc00::1",  # unique local
    "fd00:ec2::254",  # a cloud's IPv6 metadata address, unique local
    "fe80::1",  # link-local
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "100::1",  # discard-only
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",  # IPv4-mapped RFC 1918
    "::ffff:169.254.169.254",  # IPv4-mapped metadata address
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_every_non_public_range_is_refused(address: str) -> None:
    assert not DestinationPolicy().address_allowed(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert DestinationPolicy().address_allowed(ip_address(address))


def test_an_allowed_network_passes_and_only_it() -> None:
    policy = DestinationPolicy(allowed_networks=(ip_network("10.0.0.0/8"),))
    assert policy.address_allowed(ip_address("10.1.2.3"))
    assert policy.address_allowed(ip_address("::ffff:10.1.2.3"))
    assert not policy.address_allowed(ip_address("127.0.0.1"))


def test_a_host_allowlist_is_the_only_list_of_hosts() -> None:
    policy = DestinationPolicy(allowed_hosts=("*.example.com", "hooks.partner.io"))
    assert policy.check_url("https://a.example.com/x") == ("a.example.com", 443)
    assert policy.check_url("http://hooks.partner.io:8080/") == ("hooks.partner.io", 8080)
    with pytest.raises(ForbiddenDestination) as refused:
        policy.check_url("https://example.org/")
    assert refused.value.error == "forbidden_host"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.com/", "forbidden_scheme"),
        ("https://user:pass@example.com/", "forbidden_url"),
        ("https:///path", "forbidden_url"),
        ("https://example.com:99999/", "forbidden_url"),
    ],
)
def test_urls_that_are_not_destinations(url: str, error: str) -> None:
    with pytest.raises(ForbiddenDestination) as refused:
        DestinationPolicy().check_url(url)
    assert refused.value.error == error


def test_production_takes_https_only() -> None:
    with pytest.raises(ForbiddenDestination) as refused:
        DestinationPolicy(https_only=True).check_url("http://example.com/")
    assert refused.value.error == "forbidden_scheme"


@dataclass
class StaticDns:
    """The DNS of the test: names answer what the test says (DNS lies outside the machine)."""

    answers: dict[str, list[str]] = field(default_factory=dict)

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.answers:
            raise OSError(f"{host} does not resolve")
        return self.answers[host]


@pytest.fixture
def strict_settings(database_url: str, tmp_path: Path) -> Settings:
    """No network allowed beyond the public ones, as in production."""
    return make_settings(tmp_path / "data", database_url=database_url)


async def _register(
    client_for: AppFactory,
    settings: Settings,
    owner: Owner,
    url: str,
    resolver: StaticDns | None = None,
) -> tuple[int, dict[str, object]]:
    app = create_app(settings)
    async with client_for(app=app) as client:
        if resolver is not None:
            app.state.tenantry.resolver = resolver
        response = await client.post(owner.base, json={"url": url}, headers=owner.headers)
    return response.status_code, response.json()


async def test_registration_refuses_a_loopback_address(
    client_for: AppFactory, strict_settings: Settings, owner: Owner
) -> None:
    status, body = await _register(client_for, strict_settings, owner, "http://127.0.0.1:9/")
    assert status == 400
    assert (body["code"], body["reason"]) == ("WEBHOOK_URL_FORBIDDEN", "forbidden_address")


async def test_registration_refuses_a_name_that_resolves_to_loopback(
    client_for: AppFactory, strict_settings: Settings, owner: Owner
) -> None:
    resolver = StaticDns({"internal.test": ["93.184.216.34", "127.0.0.1"]})
    status, body = await _register(
        client_for, strict_settings, owner, "http://internal.test/hook", resolver
    )
    assert status == 400 and body["code"] == "WEBHOOK_URL_FORBIDDEN"
    assert "127.0.0.1" in str(body["detail"])
    status, body = await _register(
        client_for, strict_settings, owner, "http://nowhere.test/hook", resolver
    )
    assert status == 400 and body["reason"] == "dns_failed"


async def test_a_name_rebound_to_loopback_after_registration_is_refused_at_the_attempt(
    client_for: AppFactory,
    database: Database,
    strict_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    resolver = StaticDns({"rebind.test": ["93.184.216.34"]})
    url = f"http://rebind.test:{receiver.port}/hook"
    status, _ = await _register(client_for, strict_settings, owner, url, resolver)
    assert status == 201
    resolver.answers["rebind.test"] = ["127.0.0.1"]  # where the receiver really listens
    await emit(database, owner.tenant.id)
    async with dispatching(strict_settings, resolver=resolver):
        await _attempt_made(database)
    (attempt,) = await attempts(database)
    assert (attempt.status, attempt.error, attempt.response_status) == (
        "failed",
        "forbidden_address",
        None,
    )
    assert receiver.calls == []


async def _attempt_made(database: Database) -> None:
    async def made() -> bool:
        return len(await attempts(database)) >= 1

    await wait_for(made)


async def test_a_redirect_to_a_private_address_is_not_followed(
    hooks: Hooks,
) -> None:
    hooks.receiver.reply = lambda call: (302, {"Location": "http://10.0.0.1/admin"}, b"")
    await hooks.endpoint()
    await hooks.emit()
    async with hooks.dispatching():
        await _attempt_made(hooks.database)
    (attempt,) = await attempts(hooks.database)
    assert (attempt.status, attempt.response_status, attempt.error) == (
        "failed",
        302,
        "http_status",
    )
    assert len(hooks.receiver.calls) == 1


async def test_an_allowed_network_passes_at_registration_and_at_the_attempt(
    client_for: AppFactory,
    database: Database,
    strict_settings: Settings,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    status, _ = await _register(client_for, strict_settings, owner, receiver.url())
    assert status == 400
    status, _ = await _register(client_for, webhook_settings, owner, receiver.url())
    assert status == 201
    await emit(database, owner.tenant.id)
    async with dispatching(webhook_settings):
        await _attempt_made(database)
    (attempt,) = await attempts(database)
    assert attempt.status == "succeeded" and len(receiver.calls) == 1
