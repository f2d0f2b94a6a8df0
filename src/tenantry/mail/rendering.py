"""Jinja2 mail templates: `<name>.subject.j2`, `<name>.txt.j2` and `<name>.html.j2`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("tenantry.mail", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,  # a missing value is a bug, not an empty string in a mail
        keep_trailing_newline=True,
    )


def render_subject(template: str, context: dict[str, Any]) -> str:
    return _environment().get_template(f"{template}.subject.j2").render(context).strip()


def render(template: str, context: dict[str, Any]) -> Rendered:
    environment = _environment()
    return Rendered(
        subject=render_subject(template, context),
        text=environment.get_template(f"{template}.txt.j2").render(context),
        html=environment.get_template(f"{template}.html.j2").render(context),
    )


def template_exists(template: str) -> bool:
    return f"{template}.txt.j2" in _environment().list_templates()
