"""What the privacy center and the admin console share: templates, the CSRF check, form
parsing, the rate limiter, HTML error pages and the headers every page carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from lawful.api.errors import _log
from lawful.api.keys import ApiKeys
from lawful.api.pages import security
from lawful.api.ratelimit import RateLimiter
from lawful.engine import Engine

HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 64 * 1024  # the largest form is a few hundred bytes

# Every page: nothing from elsewhere, no framing, no referrer (URLs hold tokens), no
# caching (pages show a person's choices or the privacy team's queue).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PageError(Exception):
    """An error a page answers with: an HTML page saying what is wrong and what to do."""

    def __init__(
        self, status: int, title: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = headers or {}


def _date(value: datetime | str | None) -> str:
    """A date as people read it: 3 March 2026 (UTC)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return f"{value.day} {value:%B %Y}"


def _datetime(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return f"{value:%Y-%m-%d %H:%M} UTC"


@dataclass
class Site:
    """One engine's pages: its templates, signer, limiter and keys."""

    engine: Engine
    env: Environment
    signer: security.Signer
    limiter: RateLimiter
    keys: ApiKeys

    @classmethod
    def build(cls, engine: Engine, limiter: RateLimiter, keys: ApiKeys) -> Site:
        env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["date"] = _date
        env.filters["datetime"] = _datetime
        # A key for the pages alone: rotating it only logs operators out and voids open forms.
        signer = security.Signer(engine.keyring.derive("lawful pages: csrf and sessions"))
        return cls(engine, env, signer, limiter, keys)

    # -- answering ---------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        """A page, with a CSRF token for its forms (and the cookie it is bound to, if new)."""
        cookie = request.cookies.get(security.CSRF_COOKIE)
        fresh = not security.csrf_cookie_ok(cookie)
        if fresh:
            cookie = security.new_csrf_cookie()
        assert cookie is not None
        policy = self.engine.policy
        html = self.env.get_template(template).render(
            controller=policy.controller,
            csrf_field=security.CSRF_FIELD,
            csrf=security.csrf_token(self.signer, cookie),
            **(context or {}),
        )
        response = HTMLResponse(
            html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})}
        )
        if fresh:
            response.set_cookie(
                security.CSRF_COOKIE,
                cookie,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                path="/",
            )
        return response

    def error_page(self, request: Request, exc: PageError) -> HTMLResponse:
        area = "admin" if request.scope.get("root_path", "").startswith("/admin") else "center"
        return self.render(
            request,
            "error.html",
            {"title": exc.title, "message": exc.message, "area": area},
            status=exc.status,
            headers=exc.headers,
        )

    # -- checks ----------------------------------------------------------------------------

    def limit(self, request: Request, kind: str) -> None:
        """Take a token from the client's bucket (the API's limiter, shared with it)."""
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.take(client, kind)
        if wait > 0:
            after = self.limiter.retry_after(wait)
            raise PageError(
                429,
                "Too many attempts",
                f"Too many requests came from your address. Please try again in {after} seconds.",
                {"Retry-After": after},
            )

    def check_csrf(self, request: Request, form: dict[str, str]) -> None:
        if not security.csrf_ok(
            self.signer, request.cookies.get(security.CSRF_COOKIE), form.get(security.CSRF_FIELD)
        ):
            raise PageError(
                403,
                "This form has expired",
                "The form was not sent from this site's own page, or your browser did not "
                "keep its cookie. Go back, reload the page and send the form again "
                "(cookies must be allowed for this site).",
            )


async def read_form(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body, each field with all its values.

    Parsed here rather than with python-multipart: the pages post nothing else.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise PageError(
            415,
            "Unsupported form",
            "This form must be sent as application/x-www-form-urlencoded, as a browser does.",
        )
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "Form too large", "The form is larger than any of these pages send.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PageError(400, "Unreadable form", "The form is not UTF-8 text.") from None
    return parse_qs(text, keep_blank_values=True, max_num_fields=200)


def first(form: dict[str, list[str]]) -> dict[str, str]:
    """Each field's first value."""
    return {k: v[0] for k, v in form.items() if v}


def install_errors(app: FastAPI, site: Site) -> None:
    """HTML error pages for a sub-application (the API's JSON handlers stay the API's)."""

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return site.error_page(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Page not found", 405: "Not allowed"}
        return site.error_page(
            request,
            PageError(
                exc.status_code,
                titles.get(exc.status_code, "Error"),
                "There is no such page here. Check the address, or start from the home page."
                if exc.status_code == 404
                else "This page does not take that kind of request.",
            ),
        )

    async def invalid(request: Request, exc: Exception) -> Response:
        return site.error_page(
            request,
            PageError(400, "Bad request", "The address or form is not one these pages make."),
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Logged as the API logs it: the route's template and the type, never the message.
        ref = _log(request, exc, "unexpected error on a page")
        return site.error_page(
            request,
            PageError(
                500,
                "Something went wrong",
                f"An unexpected error stopped this page. Please try again later; if it "
                f"persists, tell us the reference {ref}.",
            ),
        )

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
