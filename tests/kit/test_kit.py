from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.requests import Request

from tenantry.config import Settings
from tenantry.kit.clock import Clock
from tenantry.kit.durations import parse_duration
from tenantry.kit.ids import new_id
from tenantry.kit.ratelimit import address_key, client_ip
from tenantry.kit.tokens import hash_secret, matching, new_secret


class TestIds:
    def test_prefixed_and_long_enough(self) -> None:
        value = new_id("ten")
        assert re.fullmatch(r"ten_[0-9a-z]{25}", value)

    def test_unique(self) -> None:
        assert len({new_id("job") for _ in range(10_000)}) == 10_000


class TestSecrets:
    def test_only_the_digest_is_needed_to_verify(self) -> None:
        raw, digest = new_secret(b"k" * 32, prefix="tnt_sk_")
        assert raw.startswith("tnt_sk_") and raw not in digest
        assert matching(raw, digest, [b"k" * 32]) == digest
        assert matching(raw + "x", digest, [b"k" * 32]) is None

    def test_a_digest_made_under_a_previous_secret_still_matches(self) -> None:
        raw, digest = new_secret(b"old" * 11)
        assert matching(raw, digest, [b"new" * 11, b"old" * 11]) == digest
        assert matching(raw, digest, [b"new" * 11]) is None

    def test_digest_depends_on_the_server_secret(self) -> None:
        assert hash_secret("abc", b"one") != hash_secret("abc", b"two")


class TestClock:
    def test_moves_and_resets(self) -> None:
        clock = Clock()
        before = clock.now()
        clock.advance(timedelta(hours=2))
        assert clock.now() - before >= timedelta(hours=2)
        clock.reset()
        assert clock.now() - before < timedelta(minutes=1)
        assert clock.now().tzinfo is not None


class TestDurations:
    @given(st.integers(min_value=0, max_value=10_000), st.sampled_from(["ms", "s", "m", "h", "d"]))
    def test_round_trip(self, amount: int, unit: str) -> None:
        seconds = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        assert parse_duration(f"{amount}{unit}") == timedelta(seconds=amount * seconds)

    @pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "-1m", "2w"])
    def test_refuses_what_it_cannot_read(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(text)


class TestTrustedProxies:
    def request_from(self, peer: str, forwarded: str) -> Request:
        headers = [(b"x-forwarded-for", forwarded.encode())]
        return Request({"type": "http", "client": (peer, 1234), "headers": headers})

    def test_ranges_are_accepted_and_the_nearest_untrusted_hop_wins(self) -> None:
        settings = Settings(_env_file=None, trusted_proxies="10.0.0.0/8, 127.0.0.1")  # type: ignore[call-arg]
        trusted = settings.trusted_proxies
        chain = "198.51.100.7, 10.1.2.3"
        assert client_ip(self.request_from("10.200.0.1", chain), trusted) == "198.51.100.7"
        assert client_ip(self.request_from("127.0.0.1", chain), trusted) == "198.51.100.7"
        assert client_ip(self.request_from("192.0.2.9", chain), trusted) == "192.0.2.9"

    @pytest.mark.parametrize(
        ("spelling", "canonical"),
        [
            ("2001:DB8:0:0::1", "2001:db8::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("::FFFF:c633:6407", "198.51.100.7"),
        ],
    )
    def test_every_spelling_of_an_address_is_one_key(self, spelling: str, canonical: str) -> None:
        settings = Settings(_env_file=None, trusted_proxies="10.0.0.0/8")  # type: ignore[call-arg]
        trusted = settings.trusted_proxies
        assert client_ip(self.request_from(spelling, ""), trusted) == canonical
        assert client_ip(self.request_from("10.0.0.1", spelling), trusted) == canonical

    @pytest.mark.parametrize(
        ("address", "key"),
        [
            ("198.51.100.7", "198.51.100.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("unknown", "unknown"),
        ],
    )
    def test_limits_count_ipv6_by_its_64(self, address: str, key: str) -> None:
        assert address_key(address) == key

    def test_a_host_address_with_a_range_suffix_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            Settings(_env_file=None, trusted_proxies="10.0.0.1/8")  # type: ignore[call-arg]
