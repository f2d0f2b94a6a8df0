"""Server-rendered pages (hosted signup, the activation form, the status page): one Jinja2
environment over the shared and each domain's templates, autoescaped, themed by the brand
settings, with the headers every page is served with."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from tenantry.config import Settings
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


@dataclass(frozen=True)
class Brand:
    name: str
    logo_url: str | None
    color: str

    @classmethod
    def of(cls, settings: Settings) -> Brand:
        return cls(
            settings.brand_name or settings.product_name,
            settings.brand_logo_url,
            settings.brand_color,
        )


@cache
def _environment() -> Environment:
    loaders = [PackageLoader("tenantry", "templates")] + [
        PackageLoader(f"tenantry.{domain}", "templates")
        for domain in ("signup", "invitation", "incident", "console", "portal")
    ]
    return Environment(loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined)


def headers_for(settings: Settings) -> dict[str, str]:
    """The page headers. A configured logo is the one image source the policy allows; the
    hand-off URL's origin is a form's allowed destination, since the signup's last form
    submission ends there through redirects."""
    policy = PAGE_HEADERS["Content-Security-Policy"]
    if settings.handoff_url:
        policy = policy.replace(
            "form-action 'self'", f"form-action 'self' {_origin(settings.handoff_url)}"
        )
    if settings.brand_logo_url:
        logo = settings.brand_logo_url
        policy += "; img-src " + ("data:" if logo.startswith("data:") else _origin(logo))
    return {**PAGE_HEADERS, "Content-Security-Policy": policy}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The template rendered with the brand, and a sign-in link (`next_url`) unless the page
    names its own next step."""
    settings = state_of(request).settings
    brand = Brand.of(settings)
    context = {
        "next_url": settings.sign_in_url,
        "next_label": f"Sign in to {brand.name}",
        **context,
    }
    template_ = _environment().get_template(template)
    body = template_.render(product_name=settings.product_name, brand=brand, **context)
    return HTMLResponse(body, status_code=status, headers=headers_for(settings))


def message_page(
    request: Request,
    status: int,
    heading: str,
    message: str,
    *,
    steps: list[dict[str, str]] | None = None,
    refresh: int | None = None,
    **next_step: str | None,
) -> HTMLResponse:
    """A page that says one thing (a refusal, an outcome, progress), with the next step as a
    link (`next_url`, `next_label`; the sign-in link unless told)."""
    return page(
        request,
        "message.html.j2",
        status,
        heading=heading,
        message=message,
        steps=steps or [],
        refresh=refresh,
        **next_step,
    )
