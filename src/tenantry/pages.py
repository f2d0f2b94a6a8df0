"""Server-rendered pages (the activation form, the status page): one Jinja2 environment over
each domain's templates, autoescaped, with the headers every page is served with."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from tenantry.state import state_of

# A page may be reached from a mail: its token must not leak in a Referer, nothing may be
# framed or scripted, and no cache keeps it.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@cache
def _environment() -> Environment:
    loaders = [
        PackageLoader(f"tenantry.{domain}", "templates") for domain in ("invitation", "incident")
    ]
    return Environment(loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    product_name = state_of(request).settings.product_name
    body = _environment().get_template(template).render(product_name=product_name, **context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
