"""Driving the pages as a browser does: read the CSRF field from a page, post forms."""

from __future__ import annotations

import re
from typing import Any

from tests.api.conftest import Api

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf(api: Api, path: str = "/privacy/") -> str:
    """The CSRF field of a page (its GET also sets the cookie the field is bound to)."""
    page = api.client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, "the page has a form with a CSRF field"
    return found.group(1)


def post(api: Api, path: str, data: dict[str, Any], *, token: str | None = None) -> Any:
    """POST a form with the CSRF field of `path`'s own page, as a browser would."""
    token = token if token is not None else csrf(api, path)
    return api.client.post(path, data={"csrf": token, **data}, follow_redirects=False)


def customer_email(api: Api, n: int = 0) -> str:
    return str(api.shop("SELECT email FROM customers ORDER BY id")[n][0])


def unsubscribe_token(api: Api, identity: str, **scope: str) -> str:
    """The token of a real unsubscribe link, as a marketing message carries it."""
    headers = api.engine.consent.unsubscribe_headers(
        identity, base_url="http://127.0.0.1/privacy/unsubscribe", **scope
    )
    url = headers["List-Unsubscribe"].split(",")[0].strip("<> ")
    return url.rsplit("/", 1)[1]


def login(api: Api, scope: str = "operator") -> Any:
    return post(api, "/admin/login", {"key": api.tokens[scope]})
