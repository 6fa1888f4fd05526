"""The privacy center: the pages a person uses, without an account.

Submit a request and verify it with the emailed code, follow its status and due date,
read the privacy notice, leave marketing with one click and manage marketing choices per
channel and list through the signed link in every marketing message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from lawful.api.pages.web import HERE, PageError, Site, first, install_errors, read_form
from lawful.consent import ConsentError, Status, Topic
from lawful.consent.service import ChoiceInput
from lawful.consent.unsubscribe import (
    UnsubscribeRequest,
    UnsubscribeScope,
    UnsubscribeTokenError,
    read_token,
)
from lawful.datasets import ConnectError, Correctable, DatasetError
from lawful.requests.service import RequestError, RequestView, UnknownRequest
from lawful.requests.states import RequestState
from lawful.subjects import Identity, IdentityError, registry
from lawful.subjects.registry import Subject

PREFIX = "/privacy"

# What each kind of request asks, in the person's words.
KIND_LABELS = {
    "confirm": "Tell me whether you hold data about me",
    "access": "Send me a copy of my data",
    "portability": "Send me my data in a portable format",
    "rectification": "Correct my data",
    "erasure": "Delete my data",
    "account_closure": "Close my account",
    "restriction": "Restrict how my data is used",
    "objection": "Stop using my data for a purpose I object to",
    "withdraw_consent": "Withdraw my consent",
    "opt_out_sale": "Do not sell or share my data",
    "restrict_recipients": "Stop sharing my data with some recipients",
    "explain_decision": "Explain an automated decision about me",
    "information": "Tell me how you process my data",
}
PACKAGE_KINDS = {"access", "portability"}
INVALID_LINK = (
    "This link is not valid: it may have been cut short or changed. Open it again from the "
    "message we sent you, or write to us at the address below."
)


def kinds(site: Site) -> list[tuple[str, str]]:
    """The kinds of request the policy offers, with their labels."""
    offered = [str(k) for k in site.engine.policy.requests.kinds]
    return [(k, KIND_LABELS.get(k, k.replace("_", " ").capitalize())) for k in offered]


def channels(site: Site) -> list[str]:
    """The marketing channels the policy's purposes use."""
    policy = site.engine.policy
    return sorted({str(c) for p in policy.purposes.values() for c in p.channels})


@dataclass(frozen=True)
class CorrectionField:
    """One input of the rectification part of the request form."""

    target: str  # what the request's `changes` name: dataset.table.column
    group: str  # the table, in words (the fieldset's legend)
    label: str
    type: str  # the input's type: text, email, tel, date
    hint: str | None
    maxlength: int | None

    @property
    def name(self) -> str:
        return f"change:{self.target}"

    @property
    def id(self) -> str:
        return "change-" + self.target.replace(".", "-")


def _field(column: Correctable) -> CorrectionField:
    kind, hint = "text", None
    if column.identity == "email":
        kind = "email"
    elif column.identity == "phone":
        kind = "tel"
        hint = "With the country code, like +49 30 1234567."
    elif column.python_type is dt.date:
        kind, hint = "date", "Like 1990-12-31."
    return CorrectionField(
        target=column.target,
        group=column.table_label,
        label=column.label,
        type=kind,
        hint=hint,
        maxlength=column.max_length,
    )


def correction_fields(site: Site) -> list[CorrectionField] | None:
    """What a person may correct through the form: the personal columns of the tables that
    identify them (their account's own details), which a rectification request accepts.
    None when the databases can't be read right now."""
    engine = site.engine
    offered = {str(k) for k in engine.policy.requests.kinds}
    if "rectification" not in offered or engine.datasets is None:
        return []
    try:
        columns = engine.datasets.correctable()
    except (ConnectError, DatasetError):
        return None
    return [_field(c) for c in columns if c.subject_table]


def _grouped(fields: list[CorrectionField]) -> list[tuple[str, list[CorrectionField]]]:
    """The fields by table, in the annotation's order: (the table in words, its fields)."""
    groups: dict[str, tuple[str, list[CorrectionField]]] = {}
    for f in fields:
        groups.setdefault(f.target.rsplit(".", 1)[0], (f.group, []))[1].append(f)
    return list(groups.values())


def _for_people(problem: str) -> str:
    """A library's wording of a bad value, as the form's reader sees it (a field)."""
    return _sentence(
        problem.replace("the column", "this field").replace("this column", "this field")
    )


def center_app(site: Site) -> FastAPI:
    """The privacy center as an application, mounted at /privacy."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    install_errors(app, site)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    engine = site.engine
    policy = engine.policy
    requests = engine.requests

    def request_or_404(ref: str) -> RequestView:
        try:
            return requests.show(ref)
        except (UnknownRequest, RequestError):
            raise PageError(
                404,
                "Request not found",
                "We have no request with this reference. Check the link in the message we "
                "sent you.",
            ) from None

    @app.get("/")
    def home(request: Request) -> Response:
        site.limit(request, "read")
        return site.render(request, "center/home.html", {"kinds": kinds(site)})

    @app.get("/notice")
    def notice(request: Request, jurisdiction: str | None = None) -> Response:
        """The current privacy notice, as lawful renders it (a whole HTML document)."""
        site.limit(request, "read")
        if jurisdiction is not None and jurisdiction not in policy.jurisdictions:
            raise PageError(
                404,
                "No such notice",
                f"This notice has versions for: {', '.join(policy.jurisdictions)}.",
            )
        html = engine.notices.notice("html", jurisdiction=jurisdiction)
        # The notice's own document carries its styles inline: loosen only style-src.
        return Response(
            html,
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline' 'self'; "
                "frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            },
        )

    # -- requests ------------------------------------------------------------------------

    def form_page(
        request: Request,
        values: dict[str, Any],
        errors: list[str],
        status: int,
        *,
        corrections: list[CorrectionField] | None,
        field_errors: dict[str, str] | None = None,
    ) -> Response:
        return site.render(
            request,
            "center/request_new.html",
            {
                "kinds": kinds(site),
                "jurisdictions": list(policy.jurisdictions),
                "recipients": sorted(policy.recipients),
                "corrections": _grouped(corrections or []),
                "corrections_unavailable": corrections is None,
                "values": {"changes": {}, **values},
                "errors": errors,
                "field_errors": field_errors or {},
            },
            status=status,
        )

    @app.get("/requests/new")
    async def new_request(request: Request, kind: str | None = None) -> Response:
        site.limit(request, "read")
        corrections = await _in_thread(correction_fields, site)
        return form_page(request, {"kind": kind}, [], 200, corrections=corrections)

    @app.post("/requests/new")
    async def submit_request(request: Request) -> Response:
        site.limit(request, "write")
        form = await read_form(request)
        values = first(form)
        site.check_csrf(request, values)
        kind = values.get("kind", "")
        email = values.get("email", "").strip()
        jurisdiction = values.get("jurisdiction", "").strip() or None
        errors = []
        offered = [k for k, _ in kinds(site)]
        if kind not in offered:
            errors.append("Choose what you want us to do.")
        identity = None
        try:
            identity = Identity.parse(f"email:{email}")
        except IdentityError:
            errors.append("Enter your email address, like name@example.com.")
        if jurisdiction is not None and jurisdiction not in policy.jurisdictions:
            errors.append("Choose where you live from the list, or leave it empty.")
        params: dict[str, Any] = {}
        if kind == "objection" and values.get("marketing"):
            params["marketing"] = True
        if kind == "restrict_recipients":
            params["recipients"] = [r for r in form.get("recipients", []) if r]
        corrections = await _in_thread(correction_fields, site)
        typed = {f.name: values.get(f.name, "") for f in corrections or []}
        shown = {"kind": kind, "email": email, "jurisdiction": jurisdiction or "", "changes": typed}
        field_errors: dict[str, str] = {}
        if kind == "rectification":
            changes = {f.target: typed[f.name].strip() for f in corrections or []}
            changes = {target: value for target, value in changes.items() if value}
            if corrections is None:
                errors.append(
                    "We can't show what you may correct right now. Please try again later, "
                    "or write to us at the address below."
                )
            elif not changes:
                errors.append(
                    "Say what to correct: fill in the right value of at least one field under "
                    "“What should we correct?”."
                )
            else:
                assert engine.datasets is not None
                problems = await _in_thread(engine.datasets.change_problems, changes)
                for f in corrections:
                    if f.target in problems:
                        field_errors[f.id] = _for_people(problems[f.target])
                        errors.append(f"{f.label} ({f.group}): {field_errors[f.id]}")
            params["changes"] = changes
        if errors or identity is None:
            return form_page(
                request, shown, errors, 400, corrections=corrections, field_errors=field_errors
            )
        try:
            intake = await _in_thread(
                requests.submit,
                kind,
                identity,
                jurisdiction=jurisdiction,
                params=params or None,
                channel="privacy_center",
            )
        except RequestError as exc:
            # The library's message says what is wrong with the request, never who it is.
            return form_page(request, shown, [_sentence(str(exc))], 400, corrections=corrections)
        return RedirectResponse(f"{PREFIX}/requests/{intake.ref}/verify", status_code=303)

    def verify_page(
        request: Request, view: RequestView, error: str | None, status: int
    ) -> Response:
        return site.render(
            request,
            "center/verify.html",
            {"view": view, "error": error, "label": KIND_LABELS.get(view.kind, view.kind)},
            status=status,
        )

    @app.get("/requests/{ref}/verify")
    def verify_form(request: Request, ref: str) -> Response:
        site.limit(request, "read")
        view = request_or_404(ref)
        if RequestState(view.state) is not RequestState.awaiting_verification:
            return RedirectResponse(f"{PREFIX}/requests/{ref}", status_code=303)
        return verify_page(request, view, None, 200)

    @app.post("/requests/{ref}/verify")
    async def verify(request: Request, ref: str) -> Response:
        site.limit(request, "write")
        values = first(await read_form(request))
        site.check_csrf(request, values)
        view = request_or_404(ref)
        if RequestState(view.state) is not RequestState.awaiting_verification:
            return RedirectResponse(f"{PREFIX}/requests/{ref}", status_code=303)
        code = values.get("code", "").strip()
        if not code:
            return verify_page(request, view, "Enter the code from the message we sent you.", 400)
        try:
            await _in_thread(requests.verify, ref, code)
        except RequestError as exc:
            return verify_page(request, view, _sentence(str(exc)), 400)
        return RedirectResponse(f"{PREFIX}/requests/{ref}", status_code=303)

    @app.get("/requests/{ref}")
    def status(request: Request, ref: str) -> Response:
        site.limit(request, "read")
        view = request_or_404(ref)
        return site.render(
            request,
            "center/status.html",
            {
                "view": view,
                "label": KIND_LABELS.get(view.kind, view.kind),
                "package": view.kind in PACKAGE_KINDS,
                "awaiting_code": view.state == RequestState.awaiting_verification.value,
            },
        )

    @app.get("/download")
    def download(request: Request, token: str = "") -> Response:
        """A page for the package link: the API serves the file at /requests/download."""
        site.limit(request, "read")
        if not token:
            raise PageError(400, "Link incomplete", INVALID_LINK)
        return site.render(request, "center/download.html", {"token": token})

    # -- marketing: one-click unsubscribe and preferences ---------------------------------

    def scope_words(scope: UnsubscribeScope) -> str:
        if scope.kind == "list":
            found = policy.marketing.lists.get(scope.name or "")
            title = (found.name if found else None) or scope.name
            return f"the “{title}” list" if scope.name != "*" else "all our lists"
        if scope.kind == "channel":
            return f"marketing by {scope.name}"
        return "all marketing"

    def token_request(token: str) -> UnsubscribeRequest:
        try:
            return read_token(
                engine.consent._unsubscribe_key(),  # the key the consent service signs links with
                token,
                controller=engine.consent.key,
            )
        except UnsubscribeTokenError:
            raise PageError(400, "This link is not valid", INVALID_LINK) from None

    @app.get("/unsubscribe/{token}")
    def unsubscribe_confirm(request: Request, token: str) -> Response:
        """A GET changes nothing (link scanners fetch links): it asks to confirm."""
        site.limit(request, "read")
        wanted = token_request(token)
        return site.render(
            request,
            "center/unsubscribe.html",
            {"token": token, "what": scope_words(wanted.scope), "done": False},
        )

    @app.post("/unsubscribe/{token}")
    async def unsubscribe(request: Request, token: str) -> Response:
        """The confirm button, or the RFC 8058 one-click POST of a mailbox provider.

        The one-click POST (body `List-Unsubscribe=One-Click`) carries no cookie, so it
        cannot carry a CSRF token: the signed link is what authorises it, as the RFC says.
        """
        site.limit(request, "write")
        values = first(await read_form(request))
        one_click = values.get("List-Unsubscribe") == "One-Click"
        if not one_click:
            site.check_csrf(request, values)
        wanted = token_request(token)
        try:
            await _in_thread(engine.consent.unsubscribe_by_token, token, method="email_link")
        except (UnsubscribeTokenError, ConsentError):
            raise PageError(400, "This link is not valid", INVALID_LINK) from None
        return site.render(
            request,
            "center/unsubscribe.html",
            {"token": token, "what": scope_words(wanted.scope), "done": True},
        )

    def subject_of(token: str) -> Subject:
        wanted = token_request(token)
        with engine.store.engine.connect() as conn:
            found = registry.subject_by_ref(conn, engine.consent.context, wanted.subject_ref)
        if found is None:
            raise PageError(400, "This link is not valid", INVALID_LINK)
        return found

    def preferences(subject: Subject) -> dict[str, list[tuple[str, str, bool]]]:
        state = engine.consent.state(subject)

        def on(topic: str, key: str) -> bool:
            choice = state.get(topic, key)
            return choice is not None and choice.state in ("given", "renewed")

        lists = policy.marketing.lists
        return {
            "channels": [
                (c, c.upper() if c == "sms" else c.capitalize(), on("channel", c))
                for c in channels(site)
            ],
            "lists": [(n, lists[n].name or n, on("list", n)) for n in sorted(lists)],
        }

    def preferences_page(request: Request, token: str, subject: Subject, saved: bool) -> Response:
        return site.render(
            request,
            "center/preferences.html",
            {"token": token, "prefs": preferences(subject), "saved": saved},
        )

    @app.get("/preferences/{token}")
    def preferences_form(request: Request, token: str) -> Response:
        site.limit(request, "read")
        return preferences_page(request, token, subject_of(token), False)

    @app.post("/preferences/{token}")
    async def save_preferences(request: Request, token: str) -> Response:
        site.limit(request, "write")
        form = await read_form(request)
        site.check_csrf(request, first(form))
        subject = subject_of(token)
        now = preferences(subject)
        wanted_channels = set(form.get("channel", []))
        wanted_lists = set(form.get("list", []))
        # Only what changed is recorded: resaving the same choices adds nothing to the ledger.
        items = [
            ChoiceInput(
                subject,
                topic,
                key,
                Status.given if key in wanted else Status.withdrawn,
                method="form",
            )
            for topic, rows, wanted in (
                (Topic.channel, now["channels"], wanted_channels),
                (Topic.list, now["lists"], wanted_lists),
            )
            for key, _, current in rows
            if (key in wanted) != current
        ]
        if items:
            await _in_thread(engine.consent.record_many, items)
        return preferences_page(request, token, subject, True)

    return app


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run blocking engine work off the event loop, as FastAPI runs sync routes."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


__all__ = ["KIND_LABELS", "CorrectionField", "center_app", "correction_fields"]
