"""get_or_404: a tenant's row is found only for that tenant, and the tenant must be named."""

from __future__ import annotations

import pytest

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import NotFound
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.models import Invitation, PromoCode
from tests.fixtures.factories import create_invitation, create_member, create_tenant


async def test_a_tenant_row_belongs_to_the_tenant_named(
    database: Database, settings: Settings
) -> None:
    mine, other = await create_tenant(database), await create_tenant(database)
    owner = await create_member(database, mine.id, "owner")
    created = await create_invitation(database, settings, mine, invited_by=owner)
    invitation_id = created.invitation.id
    async with database.session() as session:
        found = await get_or_404(session, Invitation, invitation_id, tenant_id=mine.id)
        assert found.id == invitation_id
        assert (await get_or_404(session, Invitation, invitation_id, tenant_id=ANY_TENANT)).id
        with pytest.raises(NotFound, match="no invitation"):
            await get_or_404(session, Invitation, invitation_id, tenant_id=other.id)
        with pytest.raises(TypeError, match="name the tenant"):
            await get_or_404(session, Invitation, invitation_id)
        with pytest.raises(NotFound, match="no promo code"):
            await get_or_404(session, PromoCode, "NOPE")  # platform data: no tenant to name
