"""Every router of the HTTP API, in one list."""

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from tenantry.audit.endpoints import router as audit_router
from tenantry.auth.endpoints import router as auth_router
from tenantry.console.pages import pages as console_pages
from tenantry.event.endpoints import router as event_router
from tenantry.flag.endpoints import router as flag_router
from tenantry.incident.endpoints import pages as status_pages
from tenantry.incident.endpoints import router as status_router
from tenantry.integration_key.endpoints import router as key_router
from tenantry.invitation.endpoints import pages as activation_pages
from tenantry.invitation.endpoints import public as invitation_public_router
from tenantry.invitation.endpoints import router as invitation_router
from tenantry.job.endpoints import router as job_router
from tenantry.ops.admin_endpoints import router as ops_admin_router
from tenantry.ops.canary_endpoints import router as canary_router
from tenantry.ops.endpoints import router as ops_router
from tenantry.portal.pages import pages as portal_pages
from tenantry.signup.admin_endpoints import router as signup_admin_router
from tenantry.signup.endpoints import router as signup_router
from tenantry.signup.pages import pages as signup_pages
from tenantry.tenant.admin_endpoints import router as tenant_admin_router
from tenantry.tenant.endpoints import router as tenant_router
from tenantry.webhook.admin_endpoints import router as webhook_admin_router
from tenantry.webhook.endpoints import router as webhook_router

ROUTERS: tuple[APIRouter, ...] = (
    ops_router,
    ops_admin_router,
    flag_router,
    audit_router,
    canary_router,
    auth_router,
    signup_router,
    signup_pages,
    console_pages,
    portal_pages,
    signup_admin_router,
    tenant_router,
    tenant_admin_router,
    key_router,
    job_router,
    invitation_router,
    invitation_public_router,
    activation_pages,
    event_router,
    webhook_router,
    webhook_admin_router,
    status_router,
    status_pages,
)


def install(app: FastAPI) -> None:
    """Put every route in the app's own route list instead of including the routers.

    FastAPI matches an included router through a chain of wrappers on every
    request, about a tenth of a short authenticated read's time; a route in the
    app's list is matched directly. The operationId is the endpoint's name, as
    `create_app` asks of the routes it declares itself.
    """
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                route.operation_id = route.operation_id or route.name
            app.router.routes.append(route)
