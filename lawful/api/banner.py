"""The cookie banner: `/banner.js` and the endpoints it calls.

A website includes one tag, `<script src="https://lawful.example/banner.js" defer>`.
The script reads the policy's cookie categories (`GET /api/v1/cookies/categories`),
shows the banner, and stores the visitor's choice (`POST /api/v1/cookies/choice`)
under a device identity (`device:<random id>`) it keeps in a first-party cookie on
the website. Those endpoints need no key and are rate-limited per client address.

Why they are safe from cross-site request forgery: nothing ambient identifies the
visitor to lawful. The device id travels in the JSON body (never in a lawful cookie),
so a forging page cannot name it; and only `application/json` bodies are taken, which a
plain HTML form cannot send. Answers allow any origin (without credentials), since the
banner runs on the controller's own websites.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lawful.api.app import PREFIX
from lawful.api.errors import ApiError
from lawful.api.sweeps import add_route
from lawful.consent import Signals, Status, Topic
from lawful.engine import Engine
from lawful.policy.model import Policy, SignalHandling
from lawful.policy.vocabulary import unknown
from lawful.subjects import Identity

SCRIPT = Path(__file__).parent / "static" / "banner.js"
COOKIES = f"{PREFIX}/cookies"
DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SALE_SHARE = "sale_share"  # the mark on categories a GPC signal refuses


def sale_share_categories(policy: Policy) -> set[str]:
    """Cookie categories serving a purpose that sells or shares personal information
    (CCPA sale, share, or targeted advertising): refused when the browser sends GPC."""
    marked = set()
    for name, category in policy.cookies.items():
        purposes = set(category.purposes) | {
            p for p, purpose in policy.purposes.items() if name in purpose.cookies
        }
        for p in purposes:
            purpose = policy.purposes.get(p)
            if purpose is not None and (
                purpose.sale or purpose.share or purpose.targeted_advertising
            ):
                marked.add(name)
    return marked


def categories(engine: Engine) -> dict[str, Any]:
    """What the banner shows: the policy's categories, and how GPC is treated."""
    policy = engine.policy
    marked = sale_share_categories(policy)
    return {
        "controller": policy.controller.name,
        "policy_version": engine.policy_version.number,
        "gpc": policy.signals.gpc == SignalHandling.honor,
        "categories": [
            {
                "key": key,
                "name": c.name or key.replace("_", " ").capitalize(),
                "description": c.description,
                "optional": c.optional,
                "third_party": c.third_party,
                "lifetime": str(c.lifetime) if c.lifetime is not None else None,
                "sale_share": key in marked,
            }
            for key, c in policy.cookies.items()
        ],
    }


class CategoryOut(BaseModel):
    key: str
    name: str
    description: str | None
    optional: bool = Field(description="false: strictly necessary, always on")
    third_party: bool
    lifetime: str | None
    sale_share: bool = Field(description="refused by default when the browser sends GPC")


class CategoriesOut(BaseModel):
    controller: str
    policy_version: int
    gpc: bool = Field(description="whether the policy honours Global Privacy Control")
    categories: list[CategoryOut]


class ChoiceIn(BaseModel):
    """A visitor's cookie choice, per optional category."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(description="The banner's device id (16 to 64 of A-Z a-z 0-9 _ -)")
    choices: dict[str, bool] = Field(description="category key: accepted")
    gpc: bool = Field(False, description="navigator.globalPrivacyControl in the browser")


class ChoiceOut(BaseModel):
    device: str
    decided: bool = Field(description="whether this device has made a choice")
    choices: dict[str, bool]
    gpc: bool


def _device(text: str, field: str) -> Identity:
    if not DEVICE_ID.fullmatch(text):
        raise ApiError(
            400,
            "device.invalid",
            "the device id is 16 to 64 letters, digits, '_' or '-': the banner makes one; "
            "clear the `lawful_device` cookie to get a new one",
            field,
        )
    return Identity.parse(f"device:{text}")


_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST"),
    (b"access-control-allow-headers", b"Content-Type"),
    (b"access-control-max-age", b"600"),
]


class _Cors:
    """Let the controller's websites call the cookie endpoints (no credentials).

    Plain ASGI, not BaseHTTPMiddleware: every other path passes straight through, so
    the decision endpoints pay nothing for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(COOKIES):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await Response(status_code=204, headers={k.decode(): v.decode() for k, v in _CORS})(
                scope, receive, send
            )
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_CORS]
            await send(message)

        await self.app(scope, receive, with_headers)


def add_banner(app: FastAPI, engine: Engine) -> None:
    """`/banner.js`, `GET /api/v1/cookies/categories`, `GET|POST /api/v1/cookies/choice`."""
    app.add_middleware(_Cors)
    policy = engine.policy
    optional = [k for k, c in policy.cookies.items() if c.optional]

    @add_route(
        app,
        "GET",
        "/banner.js",
        None,
        response_class=Response,
        tags=["cookies"],
        summary="The cookie banner script a website includes with one script tag",
        responses={200: {"content": {"text/javascript": {}}, "description": "JavaScript"}},
    )
    def banner_js() -> Response:
        return Response(
            SCRIPT.read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @add_route(
        app,
        "GET",
        f"{COOKIES}/categories",
        None,
        limit="read",
        response_model=CategoriesOut,
        tags=["cookies"],
        summary="The policy's cookie categories, as the banner shows them",
    )
    def cookie_categories() -> dict[str, Any]:
        return categories(engine)

    def current(who: Identity, device: str, gpc: bool) -> dict[str, Any]:
        state = engine.consent.state(who)
        found = {
            k: c.state == Status.given.value
            for k in optional
            if (c := state.get(Topic.cookie.value, k)) is not None
        }
        return {"device": device, "decided": bool(found), "choices": found, "gpc": gpc}

    @add_route(
        app,
        "GET",
        f"{COOKIES}/choice",
        None,
        limit="read",
        response_model=ChoiceOut,
        tags=["cookies"],
        summary="This device's cookie choice (no key; by the banner's device id)",
    )
    def get_choice(
        device: Annotated[str, Query(description="The banner's device id")],
    ) -> dict[str, Any]:
        return current(_device(device, "device"), device, False)

    @add_route(
        app,
        "POST",
        f"{COOKIES}/choice",
        None,
        limit="write",
        response_model=ChoiceOut,
        tags=["cookies"],
        summary="Store this device's cookie choice (no key; JSON only; rate-limited)",
    )
    def set_choice(body: ChoiceIn, request: Request) -> dict[str, Any]:
        """Strictly necessary categories can't be refused; with GPC (the body's `gpc` or
        a `Sec-GPC: 1` header) the policy's sale/share opt-outs are recorded too."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":  # a cross-site form can't send JSON
            raise ApiError(
                415, "content_type", "send the choice as application/json", "content-type"
            )
        who = _device(body.device, "device")
        for key in body.choices:
            if key not in policy.cookies:
                raise ApiError(
                    400,
                    "cookie.unknown",
                    unknown(key, "a cookie category of the policy", policy.cookies),
                    f"choices.{key}",
                )
            if not policy.cookies[key].optional and not body.choices[key]:
                raise ApiError(
                    400,
                    "cookie.necessary",
                    f"'{key}' cookies are strictly necessary: always on, they can't be refused",
                    f"choices.{key}",
                )
        if not any(k in optional for k in body.choices):
            raise ApiError(
                400,
                "cookie.empty",
                f"choose at least one optional category: {', '.join(optional) or '(none)'}",
                "choices",
            )
        gpc = body.gpc or request.headers.get("sec-gpc") == "1"
        engine.consent.set_cookies(who, body.choices, method="banner")
        if gpc:
            engine.consent.apply_signals(who, Signals(gpc=True))
        return current(who, body.device, gpc)
