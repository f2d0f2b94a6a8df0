"""Every router of the HTTP API, in one list."""

from fastapi import APIRouter

from tenantry.auth.endpoints import router as auth_router
from tenantry.event.endpoints import router as event_router
from tenantry.integration_key.endpoints import router as key_router
from tenantry.invitation.endpoints import pages as activation_pages
from tenantry.invitation.endpoints import public as invitation_public_router
from tenantry.invitation.endpoints import router as invitation_router
from tenantry.job.endpoints import router as job_router
from tenantry.ops.endpoints import router as ops_router
from tenantry.signup.admin_endpoints import router as signup_admin_router
from tenantry.signup.endpoints import router as signup_router
from tenantry.tenant.admin_endpoints import router as tenant_admin_router
from tenantry.tenant.endpoints import router as tenant_router

# Included into the app one by one (see tenantry.app): each level of router nesting
# costs FastAPI's matcher time on every request.
ROUTERS: tuple[APIRouter, ...] = (
    ops_router,
    auth_router,
    signup_router,
    signup_admin_router,
    tenant_router,
    tenant_admin_router,
    key_router,
    job_router,
    invitation_router,
    invitation_public_router,
    activation_pages,
    event_router,
)
