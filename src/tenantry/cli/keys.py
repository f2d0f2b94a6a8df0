"""`tenantry keys`: list a tenant's integration keys; cut one off."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.cli.console import JsonFlag, OptionalReason, audited, console, in_session, show
from tenantry.config import Settings
from tenantry.integration_key import service

app = typer.Typer(help="Integration keys.", no_args_is_help=True)


@app.command("list")
def list_keys(
    tenant: Annotated[str, typer.Option(help="The tenant id.")], as_json: JsonFlag = False
) -> None:
    """Keys with prefix, scopes and last use; never a secret."""
    keys = in_session(lambda s: service.list_keys(s, tenant))
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "last_four": k.last_four,
            "scopes": " ".join(k.scopes),
            "last_used_at": k.last_used_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]
    show(rows, ["id", "name", "prefix", "scopes", "last_used_at", "revoked_at"], as_json=as_json)


@app.command("revoke")
def revoke(key_id: str, reason: OptionalReason = None) -> None:
    """Cut off a compromised or abusive key: its next exchange is refused."""
    settings = Settings()
    key = audited(
        "key.revoke",
        key_id,
        lambda s: service.revoke_key(s, settings, key_id),
        reason=reason,
        after=lambda k: {"tenant_id": k.tenant_id, "revoked_at": k.revoked_at},
    )
    console.print(f"{key.id} ({key.prefix}…{key.last_four}) revoked")
