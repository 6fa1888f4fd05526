"""Server-rendered pages over the API: the privacy center (/privacy/) for people and the
admin console (/admin/) for the privacy team. Jinja2 templates, one stylesheet, no
JavaScript; see docs/privacy-center.md.

`add_pages(app, engine)` mounts both on an app made by `create_app`, sharing its rate
limiter and API keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from lawful.api.keys import ApiKeys
from lawful.api.ratelimit import READ_LIMIT, WRITE_LIMIT, RateLimiter
from lawful.engine import Engine

__all__ = ["add_pages"]


def add_pages(app: FastAPI, engine: Engine) -> None:
    """Mount the privacy center at /privacy and the admin console at /admin on `app`.

    They are mounted applications, not API routes: they stay out of /openapi.json and of
    the API's access table, and answer errors with HTML pages rather than JSON.
    """
    from lawful.api.pages.admin import admin_app
    from lawful.api.pages.center import center_app
    from lawful.api.pages.web import Site

    limiter = getattr(app.state, "limiter", None) or RateLimiter(
        {"write": WRITE_LIMIT, "read": READ_LIMIT}
    )
    keys = getattr(app.state, "keys", None) or ApiKeys(
        engine.store, engine.policy.key, engine.policy.controller.name
    )
    site = Site.build(engine, limiter, keys)
    app.state.pages = site
    app.mount("/privacy", center_app(site), name="privacy")
    app.mount("/admin", admin_app(site), name="admin")

    # The bare prefixes lead to the pages (a Mount only matches below its path).
    for path in ("/privacy", "/admin"):
        app.add_route(path, _redirect(path + "/"), include_in_schema=False)


def _redirect(to: str) -> Callable[[Request], Awaitable[Response]]:
    async def go(request: Request) -> Response:
        return RedirectResponse(to, status_code=308)

    return go
