"""The HTTP API: `create_app(engine)` gives a FastAPI application over one Engine.

Resources live under `/api/v1/`; `/openapi.json` describes them. Each route declares who
may call it (`ROUTE_ACCESS`): the scopes of the API keys it accepts, or none for the
endpoints a person calls about their own request (rate-limited per client address).
`/healthz`, `/readyz`, `/metrics` and `/.well-known/gpc.json` serve operations.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from lawful import __version__
from lawful.api import models as m
from lawful.api.errors import ApiError, install
from lawful.api.keys import ApiKey, ApiKeys, Scope
from lawful.api.metrics import CONTENT_TYPE, Metrics
from lawful.api.pages import add_pages
from lawful.api.ratelimit import READ_LIMIT, WRITE_LIMIT, Limit, RateLimiter
from lawful.audit import AuditLog
from lawful.audit.tables import audit_events
from lawful.consent import ConsentError, Signals, Status, Topic, UnknownName
from lawful.consent.decide import NO_SIGNALS, OPT_OUTS
from lawful.consent.ledger import merged_refs
from lawful.consent.service import ChoiceInput
from lawful.engine import Engine
from lawful.policy.jurisdictions import UnknownJurisdictionError
from lawful.policy.vocabulary import unknown
from lawful.requests import refusals
from lawful.requests.deadlines import parse_window
from lawful.requests.service import RequestError
from lawful.requests.states import MOVES, RequestState
from lawful.requests.verify import OnBehalf, OnBehalfError
from lawful.subjects import Identity, IdentityError, registry

PREFIX = "/api/v1"
ROUTE_PREFIX = PREFIX
A, OP, SV, R = Scope.admin, Scope.operator, Scope.service, Scope.read


@dataclass(frozen=True)
class Access:
    """Who may call a route: API keys of `scopes` (admin always), or anyone (`scopes`
    None), then limited per client address by the bucket `limit`."""

    scopes: frozenset[Scope] | None
    limit: str | None = None

    @property
    def public(self) -> bool:
        return self.scopes is None


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


class _NeedKey:
    """The dependency that checks the caller's key and its scope."""

    def __init__(self, keys: ApiKeys, scopes: frozenset[Scope]) -> None:
        self.keys = keys
        self.scopes = scopes

    def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
        header: Annotated[str | None, Security(_header)] = None,
    ) -> ApiKey:
        token = header or (bearer.credentials if bearer is not None else None)
        challenge = {"WWW-Authenticate": "Bearer"}
        if not token:
            raise ApiError(
                401,
                "auth.missing",
                "this endpoint needs an API key: send `Authorization: Bearer KEY` or "
                "`X-API-Key: KEY` (create one with `lawful keys create`)",
                headers=challenge,
            )
        key = self.keys.check(token)
        if key is None:
            raise ApiError(
                401,
                "auth.invalid",
                "this API key is not valid here (unknown, revoked, or another controller's)",
                headers=challenge,
            )
        if key.scope not in self.scopes:
            needed = " or ".join(sorted(s.value for s in self.scopes))
            raise ApiError(
                403,
                "auth.scope",
                f"this endpoint needs a key with scope {needed}; this key's scope is {key.scope.value}",
            )
        request.state.api_key = key
        return key


class _Limited:
    """The dependency that takes a token from the client's bucket."""

    def __init__(self, limiter: RateLimiter, kind: str) -> None:
        self.limiter = limiter
        self.kind = kind

    def __call__(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.take(client, self.kind)
        if wait > 0:
            after = self.limiter.retry_after(wait)
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests from your address; try again in {after} s",
                headers={"Retry-After": after},
            )


def create_app(
    engine: Engine,
    *,
    keys: ApiKeys | None = None,
    limits: dict[str, Limit] | None = None,
) -> FastAPI:
    """The HTTP API over `engine` (which the caller opens and closes).

    `limits` sets the per-client buckets of the endpoints that need no key: `write`
    (submit, verify; default 10 at once then 10 a minute) and `read` (status, download;
    default 60 at once then 60 a minute).
    """
    app = FastAPI(
        title=f"lawful: {engine.policy.controller.name}",
        version=__version__,
        description=(
            "The privacy policy of "
            f"{engine.policy.controller.name} as running code: decisions, consent, "
            "preferences, data-subject requests, disclosures, incidents and the audit log."
        ),
    )
    keys = keys or ApiKeys(engine.store, engine.policy.key, engine.policy.controller.name)
    limiter = RateLimiter({"write": WRITE_LIMIT, "read": READ_LIMIT, **(limits or {})})
    metrics = Metrics(engine.store, keys.controller_id)
    access: dict[tuple[str, str], Access] = {}
    app.state.engine = engine
    app.state.keys = keys
    app.state.limiter = limiter
    app.state.metrics = metrics
    app.state.access = access
    install(app)

    def route(
        method: str,
        path: str,
        scopes: Iterable[Scope] | None,
        *,
        limit: str | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a route with its access rule (admin keys may call every keyed route)."""
        allowed = None if scopes is None else frozenset({A, *scopes})
        dependencies = []
        if allowed is not None:
            dependencies.append(Depends(_NeedKey(keys, allowed)))
        if limit is not None:
            dependencies.append(Depends(_Limited(limiter, limit)))
        access[(method, path)] = Access(allowed, limit)
        responses = {
            400: {"model": m.ErrorOut, "description": "Bad input: the message says what to fix"},
            422: {"model": m.ErrorOut, "description": "The body or query is malformed"},
        }
        if allowed is not None:
            responses[401] = {"model": m.ErrorOut, "description": "No valid API key"}
            responses[403] = {
                "model": m.ErrorOut,
                "description": "The key's scope does not allow it",
            }
        if limit is not None:
            responses[429] = {"model": m.ErrorOut, "description": "Rate-limited: see Retry-After"}
        return app.api_route(
            path,
            methods=[method],
            dependencies=dependencies,
            responses={**responses, **kwargs.pop("responses", {})},
            **kwargs,
        )

    _decisions(route, engine, metrics)
    _consents(route, engine)
    _requests(route, engine)
    _operations(route, engine, keys, metrics)
    from lawful.api import banner, opendsr, sweeps  # they register through app.state

    sweeps.add_sweeps(app, engine)
    banner.add_banner(app, engine)
    opendsr.add_opendsr(app, engine)
    add_pages(app, engine)
    return app


# -- checks shared by the routes ---------------------------------------------------------


def _identity(text: str, field: str) -> Identity:
    try:
        return Identity.parse(text)
    except IdentityError as exc:
        raise ApiError(400, "identity.invalid", str(exc), field) from None


def _on_behalf(body: m.OnBehalfIn | None) -> OnBehalf | None:
    """The request's `on_behalf`, checked; errors name the field, never the actor."""
    if body is None:
        return None
    actor = _identity(body.actor, "on_behalf.actor")
    try:
        return OnBehalf(body.role, actor, body.proof, body.document_sha256)
    except OnBehalfError as exc:
        raise ApiError(400, "request.on_behalf", str(exc), "on_behalf") from None


def _known(value: str | None, names: Iterable[str], field: str, noun: str) -> None:
    options = sorted(set(names))
    if value is not None and value not in options:
        raise ApiError(400, "name.unknown", unknown(value, noun, options), field)


def _jurisdiction(engine: Engine, value: str | None, field: str = "jurisdiction") -> None:
    if value is None:
        return
    try:
        engine.consent.decider.check_jurisdiction(value)
    except (UnknownName, UnknownJurisdictionError, ConsentError) as exc:
        raise ApiError(400, "jurisdiction.unknown", str(exc), field) from None


def _channels(engine: Engine) -> list[str]:
    return sorted({str(c) for p in engine.policy.purposes.values() for c in p.channels})


def _options(engine: Engine, body: m.DecisionOptions) -> None:
    policy = engine.policy
    _known(body.channel, _channels(engine), "channel", "a marketing channel of the policy")
    _known(body.list_name, policy.marketing.lists, "list", "a marketing list of the policy")
    _known(body.recipient, policy.recipients, "recipient", "a recipient of the policy")
    _jurisdiction(engine, body.jurisdiction)


def _decision(decision: Any) -> dict[str, Any]:
    return decision.to_dict()


def _record(record: Any) -> dict[str, Any]:
    return {
        "record": record.ref,
        "subject": record.subject_ref,
        "topic": str(record.topic),
        "key": record.key,
        "scope": record.scope or None,
        "state": str(record.state),
        "method": record.method,
        "at": record.at,
        "expires_at": record.expires_at,
        "policy_version": record.policy_version,
    }


# -- decisions ---------------------------------------------------------------------------


def _decisions(route: Any, engine: Engine, metrics: Metrics) -> None:
    @route(
        "POST",
        f"{PREFIX}/decisions",
        [SV],
        response_model=m.DecisionOut,
        tags=["decisions"],
        summary="May a purpose use this subject's data now?",
    )
    def decide(body: m.DecisionIn) -> Response:
        """The answer with its reason (`rule` is a stable code); refusals are answers (200)."""
        started = time.perf_counter()
        who = _identity(body.subject, "subject")
        _known(body.purpose, engine.policy.purposes, "purpose", "a purpose of the policy")
        _options(engine, body)
        decision = engine.decide(
            who,
            body.purpose,
            channel=body.channel,
            list_name=body.list_name,
            jurisdiction=body.jurisdiction,
            recipient=body.recipient,
            signals=Signals(gpc=body.gpc, dnt=body.dnt) if body.gpc or body.dnt else NO_SIGNALS,
        )
        metrics.decisions.observe("single", time.perf_counter() - started)
        # Answered as it is: the model documents the shape; validating it again per call
        # would cost more than the decision.
        return JSONResponse(decision.to_dict())

    @route(
        "POST",
        f"{PREFIX}/decisions/batch",
        [SV],
        response_model=m.BatchDecisionOut,
        tags=["decisions"],
        summary="Decisions for up to 10,000 subjects and one purpose",
    )
    def decide_many(body: m.BatchDecisionIn) -> Response:
        started = time.perf_counter()
        subjects = [_identity(s, f"subjects.{i}") for i, s in enumerate(body.subjects)]
        _known(body.purpose, engine.policy.purposes, "purpose", "a purpose of the policy")
        _options(engine, body)
        decisions = engine.decide_many(
            subjects,
            body.purpose,
            channel=body.channel,
            list_name=body.list_name,
            jurisdiction=body.jurisdiction,
            recipient=body.recipient,
            signals=Signals(gpc=body.gpc, dnt=body.dnt),
        )
        metrics.decisions.observe("batch", time.perf_counter() - started)
        allowed = sum(1 for d in decisions if d.allowed)
        return JSONResponse(
            {
                "decisions": [d.to_dict() for d in decisions],
                "allowed": allowed,
                "refused": len(decisions) - allowed,
            }
        )


# -- consents and preferences ------------------------------------------------------------


def _consents(route: Any, engine: Engine) -> None:
    policy = engine.policy

    @route(
        "POST",
        f"{PREFIX}/consents",
        [SV],
        status_code=201,
        response_model=m.ConsentRecordOut,
        tags=["consents"],
        summary="Record consent given, withdrawn or refused",
    )
    def record_consent(body: m.ConsentIn) -> dict[str, Any]:
        who = _identity(body.subject, "subject")
        _known(body.purpose, policy.purposes, "purpose", "a purpose of the policy")
        _known(body.channel, _channels(engine), "channel", "a marketing channel of the policy")
        _known(body.list_name, policy.marketing.lists, "list", "a marketing list of the policy")
        _jurisdiction(engine, body.jurisdiction)
        parent = _identity(body.parent, "parent") if body.parent else None
        consent = engine.consent
        if body.action == "give":
            record = consent.give(
                who,
                body.purpose,
                channel=body.channel,
                list_name=body.list_name,
                method=body.method,
                notice_hash=body.notice_hash,
                language=body.language,
                jurisdiction=body.jurisdiction,
                evidence=body.evidence,
                parent=parent,
            )
        elif body.action == "withdraw":
            record = consent.withdraw(
                who,
                body.purpose,
                channel=body.channel,
                list_name=body.list_name,
                method=body.method,
            )
        else:
            if body.channel or body.list_name:
                raise ApiError(
                    400,
                    "consent.invalid",
                    "a refusal is of the whole purpose: leave out channel and list",
                    "channel" if body.channel else "list",
                )
            record = consent.refuse(who, body.purpose, method=body.method)
        return _record(record)

    @route(
        "GET",
        f"{PREFIX}/consents/{{identity}}",
        [SV, OP],
        response_model=m.ConsentStateOut,
        tags=["consents"],
        summary="A subject's current choices, what each purpose may do now, and the history",
    )
    def consent_state(identity: str) -> dict[str, Any]:
        who = _identity(identity, "identity")
        state = engine.consent.state(who)
        history = engine.consent.history(who)
        # Showing what each purpose may do is not a use of the data: decided without
        # writing decision events.
        decider = engine.consent.decider
        return {
            "known": bool(history),
            "decisions": [_decision(decider.decide(state, p)) for p in policy.purposes],
            "history": [_record(r) for r in history],
        }

    @route(
        "GET",
        f"{PREFIX}/consents/records/{{ref}}/receipt",
        [SV, OP],
        tags=["consents"],
        summary="The ISO/IEC TS 27560 consent record of one ledger record",
    )
    def consent_receipt(ref: str) -> dict[str, Any]:
        if not re.fullmatch(r"[0-9a-f]{32}", ref):
            raise ApiError(404, "consent.not_found", f"no consent record {ref!r}", "ref")
        try:
            return engine.consent.receipt(ref)
        except ConsentError as exc:
            raise ApiError(404, "consent.not_found", str(exc), "ref") from None

    def preferences_of(who: Identity) -> dict[str, Any]:
        state = engine.consent.state(who)

        def value(topic: str, key: str, *, on: tuple[str, ...]) -> bool | None:
            choice = state.get(topic, key)
            return None if choice is None else choice.state in on

        permitted = ("given", "renewed")
        return {
            "channels": {c: value("channel", c, on=permitted) for c in _channels(engine)},
            "lists": {
                n: value("list", n, on=permitted) for n in [*sorted(policy.marketing.lists), "*"]
            },
            "cookies": {
                c: (True if not spec.optional else value("cookie", c, on=permitted))
                for c, spec in sorted(policy.cookies.items())
            },
            "opt_outs": {
                k: value("opt_out", k, on=("withdrawn",)) for k in _offered_opt_outs(engine)
            },
        }

    @route(
        "PUT",
        f"{PREFIX}/preferences/{{identity}}",
        [SV],
        response_model=m.PreferencesOut,
        tags=["preferences"],
        summary="Set marketing channels and lists, cookie categories and opt-outs at once",
    )
    def set_preferences(identity: str, body: m.PreferencesIn) -> dict[str, Any]:
        """All the choices given are recorded in one transaction, or none is."""
        who = _identity(identity, "identity")
        items: list[ChoiceInput] = []

        def add(topic: Topic, key: str, state: Status) -> None:
            items.append(ChoiceInput(who, topic, key, state, method=body.method))

        channels = _channels(engine)
        for channel, on in body.channels.items():
            _known(channel, channels, f"channels.{channel}", "a marketing channel of the policy")
            add(Topic.channel, channel, Status.given if on else Status.withdrawn)
        lists = [*policy.marketing.lists, "*"]
        for name, on in body.lists.items():
            _known(name, lists, f"lists.{name}", "a marketing list of the policy ('*': all)")
            add(Topic.list, name, Status.given if on else Status.withdrawn)
        for category, on in body.cookies.items():
            _known(
                category, policy.cookies, f"cookies.{category}", "a cookie category of the policy"
            )
            if not policy.cookies[category].optional:
                if not on:
                    raise ApiError(
                        400,
                        "preferences.necessary",
                        f"'{category}' cookies are strictly necessary: they are always on "
                        "and cannot be refused",
                        f"cookies.{category}",
                    )
                continue
            add(Topic.cookie, category, Status.given if on else Status.refused)
        offered = _offered_opt_outs(engine)
        for kind, out in body.opt_outs.items():
            _known(kind, offered, f"opt_outs.{kind}", "an opt-out the policy offers")
            add(Topic.opt_out, kind, Status.withdrawn if out else Status.given)
        if not items and not body.cookies:
            raise ApiError(
                400,
                "preferences.empty",
                "nothing to change: give channels, lists, cookies or opt_outs",
            )
        records = engine.consent.record_many(items) if items else []
        return {**preferences_of(who), "records": [r.ref for r in records]}

    @route(
        "GET",
        f"{PREFIX}/preferences/{{identity}}",
        [SV, OP],
        response_model=m.PreferencesOut,
        tags=["preferences"],
        summary="A subject's marketing, cookie and opt-out choices",
    )
    def get_preferences(identity: str) -> dict[str, Any]:
        return preferences_of(_identity(identity, "identity"))


def _offered_opt_outs(engine: Engine) -> list[str]:
    return [k for k in OPT_OUTS if k != "ad_tracking" or engine.policy.marketing.limit_ad_tracking]


# -- data-subject requests ---------------------------------------------------------------


_STATUS_FIELDS = tuple(m.RequestStatusOut.model_fields)


def _requests(route: Any, engine: Engine) -> None:
    requests = engine.requests

    def status_of(ref: str) -> dict[str, Any]:
        view = requests.show(ref).to_dict()
        return {k: view[k] for k in _STATUS_FIELDS}

    @route(
        "POST",
        f"{PREFIX}/requests",
        None,
        limit="write",
        status_code=202,
        response_model=m.IntakeOut,
        tags=["requests"],
        summary="Submit a data-subject request (no key; rate-limited)",
    )
    def submit(body: m.RequestIn) -> dict[str, Any]:
        """The answer is the same (but for its ref) whether lawful knows the identity or not,
        and takes as long: a code goes to the address given either way."""
        _known(
            body.kind,
            [str(k) for k in engine.policy.requests.kinds],
            "kind",
            "a kind of request the policy offers",
        )
        who = _identity(body.identity, "identity")
        _jurisdiction(engine, body.jurisdiction)
        acting = _on_behalf(body.on_behalf)
        try:
            intake = requests.submit(
                body.kind,
                who,
                jurisdiction=body.jurisdiction,
                params=body.params,
                channel="api",
                assertion=body.assertion,
                on_behalf=acting,
            )
        except OnBehalfError as exc:  # an agent the policy does not accept
            raise ApiError(400, "request.on_behalf", str(exc), "on_behalf") from None
        return {
            "ref": intake.ref,
            "state": intake.state,
            "status": intake.status,
            "due_at": intake.due_at,
            "code_sent_to": intake.code_sent_to,
        }

    def download(token: str) -> Response:
        data = requests.download(token)
        return Response(
            data,
            media_type="application/zip",
            headers={
                "Content-Disposition": 'attachment; filename="my-data.zip"',
                "Cache-Control": "no-store",
            },
        )

    # The link in the person's message (`Requests.link`) and the API path serve the same.
    for path in (f"{PREFIX}/requests/download", "/requests/download"):
        route(
            "GET",
            path,
            None,
            limit="read",
            tags=["requests"],
            summary="Download an access or portability package by the link's token",
            response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "The zip"}},
            include_in_schema=path.startswith(PREFIX),
        )(lambda token: download(token))

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/verify",
        None,
        limit="write",
        response_model=m.RequestStatusOut,
        tags=["requests"],
        summary="Enter the verification code (no key; rate-limited)",
    )
    def verify(ref: str, body: m.VerifyIn) -> dict[str, Any]:
        state = RequestState(requests.show(ref).state)
        if state is not RequestState.awaiting_verification:
            raise ApiError(
                409,
                "request.state",
                f"request {ref} is {state.value}, not awaiting verification: nothing to verify",
            )
        try:
            requests.verify(ref, body.code.strip())
        except RequestError as exc:
            # The request was awaiting verification: what failed is the code.
            raise ApiError(400, "verification.failed", str(exc), "code") from None
        return status_of(ref)

    @route(
        "GET",
        f"{PREFIX}/requests/{{ref}}",
        None,
        limit="read",
        response_model=m.RequestStatusOut,
        tags=["requests"],
        summary="A request's status in plain words and its due date (no key; no personal data)",
    )
    def status(ref: str) -> dict[str, Any]:
        return status_of(ref)

    @route(
        "GET",
        f"{PREFIX}/requests",
        [OP, R],
        response_model=list[m.RequestOut],
        tags=["requests"],
        summary="The request queue, soonest due first",
    )
    def queue(
        due_within: Annotated[
            str | None, Query(description="Only those due within this window: 12h, 3d, 2w")
        ] = None,
        overdue: Annotated[bool, Query(description="Only those past due")] = False,
        state: Annotated[str | None, Query(description="Only those in this state")] = None,
        closed: Annotated[bool, Query(description="Closed requests too")] = False,
    ) -> list[dict[str, Any]]:
        window = None
        if due_within is not None:
            try:
                window = parse_window(due_within)
            except ValueError as exc:
                raise ApiError(400, "request.window", str(exc), "due_within") from None
        _known(state, [s.value for s in RequestState], "state", "a request state")
        views = requests.list(due_within=window, overdue=overdue, state=state, open_only=not closed)
        return [v.to_dict() for v in views]

    @route(
        "GET",
        f"{PREFIX}/requests/{{ref}}/details",
        [OP, R],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="A request as the privacy team sees it: steps, outcome, receipt",
    )
    def details(ref: str) -> dict[str, Any]:
        return requests.show(ref).to_dict()

    def must_move(ref: str, to: RequestState, what: str) -> None:
        state = RequestState(requests.show(ref).state)
        if to not in MOVES[state]:
            raise ApiError(
                409, "request.state", f"request {ref} is {state.value}: it can't be {what}"
            )

    def who(request: Request, by: str | None) -> str:
        key: ApiKey = request.state.api_key
        return (by or "").strip() or f"API key {key.name or key.prefix}"

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/approve",
        [OP],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="Let a request that needs approval run",
    )
    def approve(ref: str, body: m.ApproveIn, request: Request) -> dict[str, Any]:
        if RequestState(requests.show(ref).state) is not RequestState.awaiting_approval:
            raise ApiError(409, "request.state", f"request {ref} is not awaiting approval")
        return requests.approve(ref, by=who(request, body.by)).to_dict()

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/deny",
        [OP],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="Refuse a request on a ground the policy lists",
    )
    def deny(ref: str, body: m.DenyIn) -> dict[str, Any]:
        if body.rule != refusals.FEE_UNPAID:  # which the service checks against the state
            try:
                refusals.exception_refusal(engine.policy, body.rule, body.detail)
            except refusals.RefusalError as exc:
                raise ApiError(400, "request.unknown_ground", str(exc), "rule") from None
        must_move(ref, RequestState.denied, "denied")
        return requests.deny(ref, body.rule, detail=body.detail).to_dict()

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/clarify",
        [OP],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="Ask the person for more; under UK law the clock stops until they reply",
    )
    def clarify(ref: str, body: m.ClarifyIn) -> dict[str, Any]:
        return requests.ask_clarification(ref, body.question).to_dict()

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/clarified",
        [OP],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="The person replied: the request goes on where it was",
    )
    def clarified(ref: str) -> dict[str, Any]:
        return requests.clarified(ref).to_dict()

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/charge",
        [OP],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="Ask the fee the policy allows for an excessive request, instead of refusing it",
    )
    def charge(ref: str, body: m.ChargeIn) -> dict[str, Any]:
        return requests.charge_fee(ref, amount=body.amount, ground=body.ground).to_dict()

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/fee-paid",
        [OP],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="The fee was paid: the request goes on",
    )
    def fee_paid(ref: str, body: m.FeePaidIn, request: Request) -> dict[str, Any]:
        return requests.fee_paid(ref, by=who(request, body.by)).to_dict()

    @route(
        "POST",
        f"{PREFIX}/requests/{{ref}}/extend",
        [OP],
        response_model=m.RequestOut,
        tags=["requests"],
        summary="Use the extension the law allows, once, with a reason",
    )
    def extend(ref: str, body: m.ExtendIn) -> dict[str, Any]:
        if RequestState(requests.show(ref).state).closed:
            raise ApiError(409, "request.state", f"request {ref} is closed: it can't be extended")
        return requests.extend(ref, body.reason).to_dict()


# -- disclosures, incidents, audit, keys, operations -------------------------------------


def _operations(route: Any, engine: Engine, keys: ApiKeys, metrics: Metrics) -> None:
    policy = engine.policy

    @route(
        "POST",
        f"{PREFIX}/disclosures",
        [SV],
        response_model=m.DisclosureOut,
        tags=["disclosures"],
        summary="Check one disclosure to a recipient and log it when allowed",
    )
    def disclose(body: m.DisclosureIn) -> dict[str, Any]:
        """A refusal is an answer (200, `allowed: false`, its `rule`), audited like a disclosure."""
        who = _identity(body.subject, "subject")
        _known(body.recipient, policy.recipients, "recipient", "a recipient of the policy")
        _known(body.purpose, policy.purposes, "purpose", "a purpose of the policy")
        _jurisdiction(engine, body.jurisdiction)
        return engine.disclosures.disclose(
            who,
            body.recipient,
            body.categories,
            body.purpose,
            at=body.at,
            jurisdiction=body.jurisdiction,
        ).to_dict()

    @route(
        "POST",
        f"{PREFIX}/incidents",
        [OP],
        status_code=201,
        response_model=m.IncidentOut,
        tags=["incidents"],
        summary="Record a breach; lawful finds the people affected and counts the deadlines",
    )
    def open_incident(body: m.IncidentIn) -> dict[str, Any]:
        incident = engine.incidents.open(
            body.discovered_at,
            body.summary,
            tables=body.tables,
            categories=body.categories,
            systems=body.systems,
            people_estimate=body.people_estimate,
            high_risk=body.high_risk,
            jurisdictions=body.jurisdictions,
            consequences=body.consequences,
        )
        return incident.to_dict()

    @route(
        "GET",
        f"{PREFIX}/incidents",
        [OP, R],
        response_model=list[m.IncidentOut],
        tags=["incidents"],
        summary="The breach register: overdue first, then by next deadline",
    )
    def incidents(open_only: Annotated[bool, Query(alias="open")] = False) -> list[dict[str, Any]]:
        return [i.to_dict() for i in engine.incidents.list(open_only=open_only)]

    @route(
        "GET",
        f"{PREFIX}/incidents/{{incident}}",
        [OP, R],
        response_model=m.IncidentOut,
        tags=["incidents"],
        summary="One incident (by number or ref) with its deadlines and timeline",
    )
    def incident(incident: str) -> dict[str, Any]:
        from lawful.incidents import IncidentError

        try:
            return engine.incidents.show(incident).to_dict()
        except IncidentError as exc:
            raise ApiError(404, "incident.not_found", str(exc), "incident") from None

    @route(
        "GET",
        f"{PREFIX}/audit/verify",
        [OP, R],
        response_model=m.VerificationOut,
        tags=["audit"],
        summary="Recompute the audit hash chain",
    )
    def audit_verify() -> dict[str, Any]:
        result = AuditLog(engine.store, policy.key).verify()
        broken = (
            {"seq": result.broken.seq, "reason": result.broken.reason} if result.broken else None
        )
        return {
            "controller": result.controller,
            "ok": result.ok,
            "checked": result.checked,
            "head": result.head_seq,
            "broken": broken,
        }

    @route(
        "GET",
        f"{PREFIX}/audit/events",
        [OP],
        response_model=list[m.EventOut],
        tags=["audit"],
        summary="Audit events in chain order, optionally of one subject",
    )
    def audit_events_(
        subject: Annotated[
            str | None,
            Query(description="An identity, or a subject's audit pseudonym (64 hex digits)"),
        ] = None,
        after: Annotated[
            int, Query(ge=0, le=m.MAX_BIGINT, description="Only events after this seq")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        controller_id = keys.controller_id
        query = sa.select(audit_events).where(
            audit_events.c.controller_id == controller_id, audit_events.c.seq > after
        )
        if subject is not None:
            query = query.where(audit_events.c.subject.in_(_pseudonyms(engine, subject)))
        with engine.store.engine.connect() as conn:
            rows = conn.execute(query.order_by(audit_events.c.seq).limit(limit)).all()
        return [
            {
                "seq": r.seq,
                "at": r.at,
                "kind": r.kind,
                "subject": r.subject,
                "data": r.data,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
            }
            for r in rows
        ]

    @route(
        "GET",
        f"{PREFIX}/keys",
        [],
        response_model=list[m.KeyOut],
        tags=["keys"],
        summary="The API keys (never their tokens)",
    )
    def list_keys(
        revoked: Annotated[bool, Query(description="Revoked keys too")] = False,
    ) -> list[dict[str, Any]]:
        return [k.to_dict() for k in keys.list(include_revoked=revoked)]

    @route(
        "DELETE",
        f"{PREFIX}/keys/{{ref}}",
        [],
        response_model=m.KeyOut,
        tags=["keys"],
        summary="Revoke an API key",
    )
    def revoke_key(ref: str) -> dict[str, Any]:
        from lawful.api.keys import ApiKeyError

        try:
            return keys.revoke(ref).to_dict()
        except ApiKeyError as exc:
            status = 409 if "already revoked" in str(exc) else 404
            raise ApiError(
                status, "key.not_found" if status == 404 else "key.revoked", str(exc), "ref"
            ) from None

    @route(
        "GET",
        "/metrics",
        [R, OP],
        response_class=Response,
        tags=["operations"],
        summary="Prometheus metrics",
        responses={200: {"content": {"text/plain": {}}, "description": "Text format 0.0.4"}},
    )
    def metrics_() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @route("GET", "/healthz", None, tags=["operations"], summary="The process is up")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @route(
        "GET",
        "/readyz",
        None,
        tags=["operations"],
        summary="The store is reachable and its tables are at this lawful's version",
        responses={503: {"model": m.ErrorOut, "description": "Not ready"}},
    )
    def readyz() -> Response:
        store = engine.store
        try:
            current, head = store.current_revision(), store.head_revision()
        except Exception as exc:
            return JSONResponse(
                {
                    "code": "store.unreachable",
                    "message": f"the store can't be reached ({type(exc).__name__})",
                    "field": None,
                },
                503,
            )
        if current != head:
            return JSONResponse(
                {
                    "code": "store.migrations",
                    "message": f"the store is at revision {current}, not {head}: run `lawful store upgrade`",
                    "field": None,
                },
                503,
            )
        return JSONResponse({"status": "ready", "revision": current})

    @route(
        "GET",
        "/.well-known/gpc.json",
        None,
        tags=["operations"],
        summary="Global Privacy Control support (the GPC specification's well-known resource)",
    )
    def gpc() -> dict[str, Any]:
        decider = engine.consent.decider
        honoured = decider.gpc_everywhere or any(decider.gpc_required.values())
        when = engine.policy_version.loaded_at
        return {
            "gpc": bool(honoured),
            "lastUpdate": (policy.effective or when.date()).isoformat(),
        }


def _pseudonyms(engine: Engine, subject: str) -> list[str]:
    """The audit pseudonyms of a subject named by an identity (its identity hash and the
    subject hashes of it and the subjects merged into it), or the pseudonym given."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", subject):
        return [subject.lower()]
    who = _identity(subject, "subject")
    ring = engine.keyring
    names = [ring.hash(who)]
    with engine.store.engine.connect() as conn:
        found = registry.find(conn, engine.consent.context, who)
        if found is not None:
            names += [
                ring.subject_hash(ref) for ref in merged_refs(conn, found.id, found.ref).values()
            ]
    return names
