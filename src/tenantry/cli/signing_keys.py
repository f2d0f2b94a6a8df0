"""`tenantry signing-keys`: rotate the keys that sign access tokens without refusing any."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenantry.auth import signing_keys as service
from tenantry.auth.jwt import VerificationKey, load_private_key
from tenantry.cli.console import JsonFlag, audited, console, in_session, show
from tenantry.config import Settings
from tenantry.datadir import signing_key_pem
from tenantry.kit.clock import utcnow
from tenantry.models import SigningKey

app = typer.Typer(
    help="Rotate token signing keys: add, wait, promote, retire the old one.",
    no_args_is_help=True,
)


COLUMNS = ["kid", "status", "signs", "in_jwks", "created_at", "deactivated_at", "verify_until"]


def _row(key: SigningKey) -> dict[str, Any]:
    trusted = key.verify_until is None or utcnow() < key.verify_until
    return {
        "kid": key.kid,
        "status": key.status,
        "signs": key.status == "active",
        "in_jwks": trusted,
        "created_at": key.created_at,
        "activated_at": key.activated_at,
        "deactivated_at": key.deactivated_at,
        "verify_until": key.verify_until,
    }


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """Every key, the one that signs, and until when retired keys verify."""
    rows = [_row(key) for key in in_session(service.list_keys)]
    if not rows and not as_json:
        configured = VerificationKey.of(load_private_key(signing_key_pem(Settings())).public_key())
        console.print(
            f"no rotation yet: the configured key {configured.kid} signs "
            "(`signing-keys add` starts one)"
        )
        return
    show(rows, COLUMNS, as_json=as_json)


@app.command()
def add() -> None:
    """Publish a new key in the JWKS; it signs nothing until promoted."""
    settings = Settings()
    key = audited(
        "signing_key.add", "signing-keys", lambda s: service.add_key(s, settings), after=_row
    )
    console.print(
        f"{key.kid} published; promote it after {service.promotable_at(key):%H:%M:%S} UTC, "
        "once verifiers' JWKS caches have it"
    )


# A kid is a base64url thumbprint and may start with "-": never read it as an option.
TAKES_KID = {"ignore_unknown_options": True}


@app.command(context_settings=TAKES_KID)
def promote(
    kid: str,
    force: Annotated[
        bool, typer.Option(help="Skip the wait for JWKS caches (no verifier caches it).")
    ] = False,
) -> None:
    """Sign new tokens with this published key; the previous one keeps verifying."""
    audited(
        "signing_key.promote",
        kid,
        lambda s: service.promote_key(s, kid, force=force),
        after=lambda _: {"force": force},
    )
    console.print(f"{kid} signs new tokens (every process within a second)")


@app.command(context_settings=TAKES_KID)
def retire(kid: str) -> None:
    """Stop trusting a key that no longer signs, once every token it signed has expired."""
    settings = Settings()
    key = audited("signing_key.retire", kid, lambda s: service.retire_key(s, settings, kid))
    console.print(f"{kid} retired; it verifies until {key.verify_until:%Y-%m-%d %H:%M:%S} UTC")
