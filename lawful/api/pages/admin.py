"""The admin console: the privacy team's pages, behind an operator or admin API key.

Log in by posting a key; the console then keeps a signed session cookie naming the key
(never the key itself), checked on every page against the key's current state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from lawful.api.keys import ApiKey, Scope
from lawful.api.pages import security
from lawful.api.pages.center import KIND_LABELS
from lawful.api.pages.web import PageError, Site, first, install_errors, read_form
from lawful.audit import AuditLog
from lawful.consent.tables import consent_state
from lawful.requests import refusals
from lawful.requests.service import (
    RequestError,
    RequestStateError,
    RequestView,
    UnknownRequest,
)
from lawful.requests.states import FEE_ASKABLE, MOVES, RequestState
from lawful.requests.tables import requests as requests_table

PREFIX = "/admin"
CONSOLE_SCOPES = frozenset({Scope.admin, Scope.operator})


class _LoginNeeded(Exception):
    """No valid session: send the browser to the login page."""


def admin_app(site: Site) -> FastAPI:
    """The admin console as an application, mounted at /admin."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    install_errors(app, site)
    engine = site.engine
    policy = engine.policy
    requests = engine.requests
    charges = refusals.FEE_TEXT.get(policy.requests.fee.when_excessive) is not None
    audit = AuditLog(engine.store, policy.key)

    async def to_login(request: Request, exc: Exception) -> Response:
        return RedirectResponse(f"{PREFIX}/login", status_code=303)

    app.add_exception_handler(_LoginNeeded, to_login)

    def operator(request: Request) -> ApiKey:
        """The key of the session, still active and of a console scope; else to the login."""
        ref = security.session_key_ref(site.signer, request.cookies.get(security.SESSION_COOKIE))
        if ref is None:
            raise _LoginNeeded()
        key = next((k for k in site.keys.list(include_revoked=True) if k.ref == ref), None)
        if key is None or not key.active or key.scope not in CONSOLE_SCOPES:
            raise _LoginNeeded()
        return key

    def render(
        request: Request, key: ApiKey, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        return site.render(request, template, {"key": key, **context}, status=status)

    # -- login -----------------------------------------------------------------------------

    @app.get("/login")
    def login_form(request: Request) -> Response:
        return site.render(request, "admin/login.html", {"error": None})

    @app.post("/login")
    async def login(request: Request) -> Response:
        site.limit(request, "write")  # a key is 256 bits, but no one needs to guess fast
        values = first(await read_form(request))
        site.check_csrf(request, values)
        token = values.get("key", "").strip()
        key = site.keys.check(token) if token else None
        if key is None:
            return site.render(
                request,
                "admin/login.html",
                {
                    "error": "This key is not valid here: it is unknown or revoked. "
                    "Create one with `lawful keys create --scope operator`."
                },
                status=401,
            )
        if key.scope not in CONSOLE_SCOPES:
            return site.render(
                request,
                "admin/login.html",
                {
                    "error": f"The console needs an operator or admin key; this key's scope is "
                    f"{key.scope.value}."
                },
                status=403,
            )
        audit.record("admin.login", data={"key": key.ref, "scope": key.scope.value})
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(
            security.SESSION_COOKIE,
            security.session_value(site.signer, key.ref),
            max_age=security.SESSION_TTL,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=PREFIX,
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        values = first(await read_form(request))
        site.check_csrf(request, values)
        ref = security.session_key_ref(site.signer, request.cookies.get(security.SESSION_COOKIE))
        if ref is not None:
            audit.record("admin.logout", data={"key": ref})
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(security.SESSION_COOKIE, path=PREFIX)
        return response

    # -- the queue and one request ---------------------------------------------------------

    @app.get("/")
    def queue(request: Request) -> Response:
        key = operator(request)
        views = requests.list(open_only=True)
        # Overdue first (most overdue at the top), then soonest due.
        views.sort(key=lambda v: (not v.overdue, v.due_at))
        return render(
            request,
            key,
            "admin/queue.html",
            {"views": views, "labels": KIND_LABELS, "now": datetime.now(UTC)},
        )

    def view_or_404(ref: str) -> RequestView:
        try:
            return requests.show(ref)
        except (UnknownRequest, RequestError):
            raise PageError(404, "Request not found", f"There is no request {ref}.") from None

    def timeline(ref: str) -> list[Any]:
        """The audit events about this request, in chain order."""
        with engine.store.engine.connect() as conn:
            subject = conn.scalar(
                sa.select(requests_table.c.identity_hash).where(
                    requests_table.c.controller_id == requests.controller_id,
                    requests_table.c.ref == ref,
                )
            )
        if subject is None:
            return []
        return [e for e in audit.events(subject=subject) if (e.data or {}).get("ref") == ref]

    def detail_page(
        request: Request, key: ApiKey, ref: str, message: str | None = None, status: int = 200
    ) -> Response:
        view = view_or_404(ref)
        state = RequestState(view.state)
        return render(
            request,
            key,
            "admin/request.html",
            {
                "view": view,
                "label": KIND_LABELS.get(view.kind, view.kind),
                "events": timeline(ref),
                "grounds": [
                    *([refusals.FEE_UNPAID] if state is RequestState.awaiting_fee else []),
                    *(str(g) for g in policy.requests.exceptions),
                ],
                "can_approve": state is RequestState.awaiting_approval,
                "can_charge": state in FEE_ASKABLE and charges,
                "can_clarify": RequestState.awaiting_clarification in MOVES[state],
                "can_resume": state is RequestState.awaiting_clarification,
                "can_mark_paid": state is RequestState.awaiting_fee
                and bool((view.fee or {}).get("amount")),
                "can_deny": RequestState.denied in MOVES[state],
                "can_extend": not state.closed and not view.extended,
                "message": message,
            },
            status=status,
        )

    @app.get("/requests/{ref}")
    def request_detail(request: Request, ref: str) -> Response:
        return detail_page(request, operator(request), ref)

    async def action(request: Request) -> tuple[ApiKey, dict[str, str]]:
        key = operator(request)
        values = first(await read_form(request))
        site.check_csrf(request, values)
        return key, values

    def refused(request: Request, key: ApiKey, ref: str, text: str, status: int = 409) -> Response:
        return detail_page(request, key, ref, text, status)

    def act(request: Request, key: ApiKey, ref: str, move: Callable[[], object]) -> Response:
        """Make a move on the request and show it again; what the service refuses is shown
        on its page: 409 when the request's state does not allow it, 400 for bad input."""
        view_or_404(ref)
        try:
            move()
        except RequestStateError as exc:
            return refused(request, key, ref, str(exc))
        except RequestError as exc:
            return refused(request, key, ref, str(exc), 400)
        return RedirectResponse(f"{PREFIX}/requests/{ref}", status_code=303)

    @app.post("/requests/{ref}/approve")
    async def approve(request: Request, ref: str) -> Response:
        key, _ = await action(request)
        if RequestState(view_or_404(ref).state) is not RequestState.awaiting_approval:
            return refused(request, key, ref, "This request is not awaiting approval.")
        requests.approve(ref, by=f"admin console: {key.name or key.prefix}")
        return RedirectResponse(f"{PREFIX}/requests/{ref}", status_code=303)

    @app.post("/requests/{ref}/deny")
    async def deny(request: Request, ref: str) -> Response:
        key, values = await action(request)
        rule = values.get("rule", "")
        detail = values.get("detail", "").strip() or None
        try:
            if rule != refusals.FEE_UNPAID:
                refusals.exception_refusal(policy, rule, detail)
        except refusals.RefusalError as exc:
            return refused(request, key, ref, str(exc), 400)
        state = RequestState(view_or_404(ref).state)
        if RequestState.denied not in MOVES[state]:
            return refused(request, key, ref, f"This request is {state.value}: it can't be denied.")
        return act(request, key, ref, lambda: requests.deny(ref, rule, detail=detail))

    @app.post("/requests/{ref}/clarify")
    async def clarify(request: Request, ref: str) -> Response:
        key, values = await action(request)
        question = values.get("question", "")
        return act(request, key, ref, lambda: requests.ask_clarification(ref, question))

    @app.post("/requests/{ref}/clarified")
    async def clarified(request: Request, ref: str) -> Response:
        key, _ = await action(request)
        return act(request, key, ref, lambda: requests.clarified(ref))

    @app.post("/requests/{ref}/charge")
    async def charge(request: Request, ref: str) -> Response:
        key, values = await action(request)
        amount = values.get("amount", "")
        return act(request, key, ref, lambda: requests.charge_fee(ref, amount=amount))

    @app.post("/requests/{ref}/fee-paid")
    async def fee_paid(request: Request, ref: str) -> Response:
        key, _ = await action(request)
        by = f"admin console: {key.name or key.prefix}"
        return act(request, key, ref, lambda: requests.fee_paid(ref, by=by))

    @app.post("/requests/{ref}/extend")
    async def extend(request: Request, ref: str) -> Response:
        key, values = await action(request)
        reason = values.get("reason", "").strip()
        if not reason:
            return refused(
                request,
                key,
                ref,
                "Give the reason for the extension: it is told to the person.",
                400,
            )
        if RequestState(view_or_404(ref).state).closed:
            return refused(request, key, ref, "This request is closed: it can't be extended.")
        try:
            requests.extend(ref, reason)
        except RequestError as exc:
            return refused(request, key, ref, str(exc))
        return RedirectResponse(f"{PREFIX}/requests/{ref}", status_code=303)

    # -- consent, incidents, audit ---------------------------------------------------------

    @app.get("/consent")
    def consent(request: Request) -> Response:
        key = operator(request)
        query = (
            sa.select(
                consent_state.c.topic,
                consent_state.c.key,
                consent_state.c.state,
                sa.func.count().label("n"),
            )
            .where(consent_state.c.controller_id == requests.controller_id)
            .group_by(consent_state.c.topic, consent_state.c.key, consent_state.c.state)
        )
        with engine.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        states = sorted({r.state for r in rows})
        table: dict[tuple[str, str], dict[str, int]] = {}
        for r in rows:
            table.setdefault((r.topic, r.key), {})[r.state] = r.n
        return render(
            request,
            key,
            "admin/consent.html",
            {"states": states, "table": sorted(table.items())},
        )

    @app.get("/incidents")
    def incidents(request: Request) -> Response:
        key = operator(request)
        now = datetime.now(UTC)
        found = engine.incidents.list(open_only=True, now=now)
        return render(request, key, "admin/incidents.html", {"incidents": found, "now": now})

    @app.get("/audit")
    def audit_status(request: Request) -> Response:
        key = operator(request)
        return render(request, key, "admin/audit.html", {"result": audit.verify()})

    return app
