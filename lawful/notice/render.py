"""Render documents (the notice, the records of processing, change notices) with Jinja2.

HTML is autoescaped; addresses and web links in text become links. Markdown escapes
what would break a table cell or start markup by accident.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

FORMATS = ("md", "html")

_LINK = re.compile(r"(https?://[^\s<>()\"',;]+[^\s<>()\"',;.])|([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")


def linkify(text: object) -> Markup:
    """Escape `text` for HTML and make its web addresses and email addresses links."""
    out: list[str] = []
    last = 0
    raw = str(text)
    for m in _LINK.finditer(raw):
        out.append(str(escape(raw[last : m.start()])))
        if m.group(1):
            url = escape(m.group(1))
            out.append(f'<a href="{url}">{url}</a>')
        else:
            mail = escape(m.group(2))
            out.append(f'<a href="mailto:{mail}">{mail}</a>')
        last = m.end()
    out.append(str(escape(raw[last:])))
    return Markup("".join(out))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md(text: object) -> str:
    """Text for a Markdown paragraph: one line, markup characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def cell(text: object) -> str:
    return md(text) or " "


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("lawful.notice", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["linkify"] = linkify
    env.filters["md"] = md
    env.filters["cell"] = cell
    return env


def render(template: str, fmt: str, **context: Any) -> str:
    """Render `<template>.<fmt>.j2` (fmt: md or html)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    text = environment().get_template(f"{template}.{fmt}.j2").render(**context)
    return re.sub(r"\n{3,}", "\n\n", text) if fmt == "md" else text
