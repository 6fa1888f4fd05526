"""OpenDSR 2.0 both ways: lawful as a controller's processor, and forwarding to one.

Followed: the OpenDSR specification, version 2.0 (github.com/opengdpr/OpenDSR,
specification.md): the request object (`subject_request_id`, `subject_request_type`,
`subject_identities` of `identity_type`/`identity_value`/`identity_format`,
`submitted_time`, `regulation`, `status_callback_urls`, `api_version`), the 201
response (`controller_id`, `received_time`, `expected_completion_time`,
`encoded_request`, `subject_request_id`, `processor_signature`), the statuses
(pending, in_progress, completed, cancelled), the discovery object, status callbacks,
and the `X-OpenDSR-Processor-Domain` / `X-OpenDSR-Signature` headers.

Where lawful differs, on purpose: the signature is Ed25519 (not an X.509 RSA
certificate), by a key derived from the keyring (HKDF, purpose
"lawful opendsr signing"); `processor_certificate` in discovery points to its public
key in PEM (`/opendsr/v2/key.pem`). `X-OpenDSR-Signature` signs the exact bytes of the
body; `processor_signature` in a 201 body signs the canonical JSON (sorted keys, no
spaces) of the body without that field. The paths sit under `/opendsr/v2/`.

Which OpenDSR request is which lawful request, and where to call back, is kept in the
audit log (`opendsr.received` events: the controller's `subject_request_id`, lawful's
ref, the callback URLs, never an identity), so it survives restarts without a table.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from lawful.api.errors import ApiError
from lawful.api.keys import ApiKey, Scope
from lawful.api.sweeps import add_route
from lawful.audit import NewEvent, append, lock_head
from lawful.audit.tables import audit_events
from lawful.engine import Engine
from lawful.requests.service import CONTACT, RequestError
from lawful.requests.states import RequestState
from lawful.requests.tables import requests as requests_table
from lawful.subjects import Identity, IdentityError, Keyring

log = logging.getLogger("lawful.api.opendsr")

BASE = "/opendsr/v2"
API_VERSION = "2.0"
SIGNING_PURPOSE = "lawful opendsr signing"
SIGNATURE = "X-OpenDSR-Signature"
DOMAIN = "X-OpenDSR-Processor-Domain"
RECEIVED = "opendsr.received"
CALLBACK = "opendsr.callback"
CANCELLED = "opendsr.cancelled"
FORWARDED = "opendsr.forwarded"
KINDS = ("erasure", "access", "portability")
# OpenDSR identity types lawful can find data by, and the identity kind each maps to.
IDENTITY_TYPES = {"email": "email", "controller_customer_id": "customer"}
CALLBACK_ATTEMPTS = 5
INTERVAL_ENV = "LAWFUL_OPENDSR_CALLBACK_INTERVAL"  # seconds between callback runs (30)


# -- signing -----------------------------------------------------------------------------


def signing_key(keyring: Keyring) -> Ed25519PrivateKey:
    """The Ed25519 key lawful signs OpenDSR answers and callbacks with."""
    return Ed25519PrivateKey.from_private_bytes(keyring.derive(SIGNING_PURPOSE))


def public_pem(keyring: Keyring) -> bytes:
    return (
        signing_key(keyring)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def sign(keyring: Keyring, body: bytes) -> str:
    return base64.b64encode(signing_key(keyring).sign(body)).decode()


def verify_signature(public_key_pem: bytes, body: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is the Ed25519 signature of `body` by that key."""
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), body)
    except (InvalidSignature, ValueError):
        return False
    return True


def canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class HttpFailed(Exception):
    """The other side could not be reached (the message names the error's type only)."""


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,
) -> HttpAnswer:
    """One HTTP call with the standard library (lawful needs no HTTP client for it).
    An error status is an answer; only a failure to talk raises `HttpFailed`."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise HttpFailed(f"not an http(s) URL: {urlsplit(url).scheme or 'no scheme'}")
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return HttpAnswer(answer.status, dict(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, dict(exc.headers.items()), exc.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HttpFailed(type(exc).__name__) from None


def _signed(keyring: Keyring, data: Mapping[str, Any], domain: str, status: int = 200) -> Response:
    body = canonical(data)
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={SIGNATURE: sign(keyring, body), DOMAIN: domain},
    )


# -- the wire objects ----------------------------------------------------------------------


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity_type: str = Field(description="email or controller_customer_id")
    identity_value: str = Field(max_length=320)
    identity_format: str = Field("raw", description="raw: lawful finds data by the value")


class OpenDsrRequestIn(BaseModel):
    """An OpenDSR 2.0 request from a controller (specification section 7.1)."""

    model_config = ConfigDict(extra="forbid")

    subject_request_id: str = Field(description="a UUID v4 the controller made")
    subject_request_type: Literal["erasure", "access", "portability"]
    subject_identities: list[IdentityIn] = Field(min_length=1, max_length=20)
    submitted_time: dt.datetime
    regulation: Literal["gdpr", "ccpa"] = "gdpr"
    api_version: str | None = None
    status_callback_urls: list[str] = Field([], max_length=10)
    extensions: dict[str, Any] | None = None

    @field_validator("subject_request_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("subject_request_id is a UUID, e.g. uuid4()") from None

    @field_validator("status_callback_urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("each status callback URL is an absolute http(s) URL")
        return value


class OpenDsrReceiptOut(BaseModel):
    controller_id: str
    expected_completion_time: str
    received_time: str
    encoded_request: str
    subject_request_id: str
    processor_signature: str


class OpenDsrStatusOut(BaseModel):
    controller_id: str
    expected_completion_time: str
    subject_request_id: str
    request_status: str
    api_version: str


# -- the processor side --------------------------------------------------------------------


def opendsr_status(state: str) -> str:
    """lawful's state in OpenDSR's four words (a denial is reported `cancelled`)."""
    s = RequestState(state)
    if s in (RequestState.completed, RequestState.partially_completed):
        return "completed"
    if s in (RequestState.denied, RequestState.withdrawn):
        return "cancelled"
    if s in (RequestState.in_progress, RequestState.verified):
        return "in_progress"
    return "pending"


@dataclass(frozen=True)
class Received:
    """One OpenDSR request lawful took, as its `opendsr.received` event keeps it."""

    subject_request_id: str
    ref: str
    controller: str  # the API key's ref: the controller in lawful's system
    callbacks: tuple[str, ...]


class OpenDsr:
    """OpenDSR requests received over the API, and their status callbacks."""

    def __init__(self, engine: Engine, domain: str | None = None) -> None:
        self.engine = engine
        self.domain = domain
        self.controller_id = engine.store.ensure_controller(
            engine.policy.key, engine.policy.controller.name
        )
        self._lock = threading.Lock()

    def _events(self, kinds: Iterable[str]) -> list[Any]:
        query = (
            sa.select(audit_events.c.kind, audit_events.c.data)
            .where(
                audit_events.c.controller_id == self.controller_id,
                audit_events.c.kind.in_(list(kinds)),
            )
            .order_by(audit_events.c.seq)
        )
        with self.engine.store.engine.connect() as conn:
            return list(conn.execute(query))

    def received(self) -> dict[str, Received]:
        return {
            r.data["subject_request_id"]: Received(
                r.data["subject_request_id"],
                r.data["ref"],
                r.data["controller"],
                tuple(r.data.get("callbacks") or ()),
            )
            for r in self._events([RECEIVED])
        }

    def find(self, subject_request_id: str, key: ApiKey) -> Received:
        found = self.received().get(subject_request_id)
        if found is None or found.controller != key.ref:  # another controller's: not found
            raise ApiError(
                404,
                "opendsr.not_found",
                f"no OpenDSR request {subject_request_id} from this controller",
                "subject_request_id",
            )
        return found

    def _append(self, events: list[NewEvent]) -> None:
        def work(conn: Any) -> None:
            lock_head(conn, self.controller_id)
            append(conn, self.controller_id, self.engine.policy.key, events)

        self.engine.store.write(work)

    def submit(self, body: OpenDsrRequestIn, key: ApiKey) -> tuple[Received, Any]:
        if body.subject_request_id in self.received():
            raise ApiError(
                409,
                "opendsr.duplicate",
                f"OpenDSR request {body.subject_request_id} was already received",
                "subject_request_id",
            )
        who = self.identity(body.subject_identities)
        controller = f"OpenDSR controller {key.name or key.prefix}"
        try:
            view = self.engine.requests.submit(
                body.subject_request_type, who, channel="opendsr", submitted_by=controller
            )
        except RequestError as exc:
            raise ApiError(400, "opendsr.refused", str(exc), "subject_request_type") from None
        found = Received(
            body.subject_request_id, view.ref, key.ref, tuple(body.status_callback_urls)
        )
        view = self.engine.requests.show(view.ref)
        self._append(
            [
                NewEvent(
                    RECEIVED,
                    data={
                        "subject_request_id": found.subject_request_id,
                        "ref": found.ref,
                        "controller": found.controller,
                        "callbacks": list(found.callbacks),
                        "regulation": body.regulation,
                    },
                )
            ]
        )
        return found, view

    def identity(self, given: list[IdentityIn]) -> Identity:
        """The first identity lawful can find data by (a raw email or customer id)."""
        for i, item in enumerate(given):
            kind = IDENTITY_TYPES.get(item.identity_type)
            if kind is None or item.identity_format != "raw":
                continue
            try:
                return Identity.parse(f"{kind}:{item.identity_value}")
            except IdentityError as exc:
                raise ApiError(
                    400, "identity.invalid", str(exc), f"subject_identities.{i}.identity_value"
                ) from None
        raise ApiError(
            400,
            "opendsr.identity",
            "lawful finds data by a raw email or controller_customer_id: send one of those "
            "in subject_identities (hashed identities can't be matched)",
            "subject_identities",
        )

    def status_body(self, found: Received, view: Any) -> dict[str, Any]:
        return {
            "controller_id": found.controller,
            "expected_completion_time": view.due_at.isoformat(),
            "subject_request_id": found.subject_request_id,
            "request_status": opendsr_status(view.state),
            "api_version": API_VERSION,
        }

    def deliver(self) -> int:
        """POST a signed status callback for each received request that has closed, to
        each of its URLs not yet answered (tried up to 5 times). Returns how many went."""
        with self._lock:
            return self._deliver()

    def _deliver(self) -> int:
        received = self.received()
        attempts: dict[tuple[str, str], int] = {}
        delivered: set[tuple[str, str]] = set()
        for r in self._events([CALLBACK]):
            k = (r.data["subject_request_id"], r.data["url"])
            attempts[k] = attempts.get(k, 0) + 1
            if r.data["delivered"]:
                delivered.add(k)

        def due(found: Received, url: str) -> bool:
            k = (found.subject_request_id, url)
            return k not in delivered and attempts.get(k, 0) < CALLBACK_ATTEMPTS

        waiting = [f for f in received.values() if any(due(f, u) for u in f.callbacks)]
        if not waiting:
            return 0
        query = sa.select(
            requests_table.c.ref, requests_table.c.state, requests_table.c.due_at
        ).where(
            requests_table.c.controller_id == self.controller_id,
            requests_table.c.ref.in_([f.ref for f in waiting]),
        )
        with self.engine.store.engine.connect() as conn:
            rows = {r.ref: r for r in conn.execute(query)}
        events = []
        for found in waiting:
            row = rows.get(found.ref)
            if row is None or not RequestState(row.state).closed:
                continue
            for url in found.callbacks:
                if not due(found, url):
                    continue
                data = {
                    "controller_id": found.controller,
                    "expected_completion_time": row.due_at.isoformat(),
                    "status_callback_url": url,
                    "subject_request_id": found.subject_request_id,
                    "request_status": opendsr_status(row.state),
                    "api_version": API_VERSION,
                }
                body = canonical(data)
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE: sign(self.engine.keyring, body),
                    DOMAIN: self.domain or "lawful",
                }
                try:
                    ok = http("POST", url, body, headers).status_code < 300
                except HttpFailed as exc:
                    log.warning("OpenDSR callback failed: %s", exc)
                    ok = False
                events.append(
                    NewEvent(
                        CALLBACK,
                        data={
                            "subject_request_id": found.subject_request_id,
                            "url": url,
                            "status": data["request_status"],
                            "delivered": ok,
                        },
                    )
                )
        if events:
            self._append(events)
        return sum(1 for e in events if e.data and e.data["delivered"])


def add_opendsr(app: FastAPI, engine: Engine) -> None:
    """The OpenDSR 2.0 endpoints (service keys; discovery and the key are public), and a
    thread that sends status callbacks every LAWFUL_OPENDSR_CALLBACK_INTERVAL seconds."""
    service = OpenDsr(engine)
    app.state.opendsr = service
    keyring = engine.keyring
    stop = threading.Event()

    def domain(request: Request) -> str:
        host = request.url.hostname or "lawful"
        service.domain = service.domain or host
        return host

    def loop() -> None:
        interval = float(os.environ.get(INTERVAL_ENV, "30"))
        while not stop.wait(interval):
            try:
                service.deliver()
            except Exception:  # keep the loop alive; the traceback is in the log
                log.exception("OpenDSR callbacks failed")

    def start() -> None:
        stop.clear()
        threading.Thread(target=loop, name="opendsr-callbacks", daemon=True).start()

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop.set)

    @add_route(
        app,
        "GET",
        f"{BASE}/discovery",
        None,
        tags=["opendsr"],
        summary="What this processor supports (OpenDSR 2.0 discovery)",
    )
    def discovery(request: Request) -> Response:
        offered = {k.value for k in engine.policy.requests.kinds}
        return _signed(
            keyring,
            {
                "api_version": API_VERSION,
                "supported_identities": [
                    {"identity_type": t, "identity_format": "raw"} for t in IDENTITY_TYPES
                ],
                "supported_subject_request_types": [k for k in KINDS if k in offered],
                "processor_certificate": str(request.url_for("opendsr_key")),
                "signature_algorithm": "Ed25519",
            },
            domain(request),
        )

    @add_route(
        app,
        "GET",
        f"{BASE}/key.pem",
        None,
        name="opendsr_key",
        response_class=Response,
        tags=["opendsr"],
        summary="The Ed25519 public key OpenDSR answers and callbacks are signed with",
        responses={200: {"content": {"application/x-pem-file": {}}, "description": "PEM"}},
    )
    def key_pem() -> Response:
        return Response(public_pem(keyring), media_type="application/x-pem-file")

    @add_route(
        app,
        "POST",
        f"{BASE}/requests",
        [Scope.service],
        status_code=201,
        response_model=OpenDsrReceiptOut,
        tags=["opendsr"],
        summary="Take an OpenDSR request from a controller (processor mode)",
    )
    async def submit(request: Request, body: OpenDsrRequestIn) -> Response:
        raw = await request.body()
        # The store is blocking: off the event loop, as FastAPI runs plain endpoints.
        found, view = await run_in_threadpool(service.submit, body, request.state.api_key)
        data = {
            "controller_id": found.controller,
            "expected_completion_time": view.due_at.isoformat(),
            "received_time": view.received_at.isoformat(),
            "encoded_request": base64.b64encode(raw).decode(),
            "subject_request_id": found.subject_request_id,
        }
        data["processor_signature"] = sign(keyring, canonical(data))
        return _signed(keyring, data, domain(request), 201)

    @add_route(
        app,
        "GET",
        f"{BASE}/requests/{{ref}}/status",
        [Scope.service],
        response_model=OpenDsrStatusOut,
        tags=["opendsr"],
        summary="An OpenDSR request's status, by its subject_request_id",
    )
    def status(ref: str, request: Request) -> Response:
        found = service.find(ref, request.state.api_key)
        view = engine.requests.show(found.ref)
        return _signed(keyring, service.status_body(found, view), domain(request))

    @add_route(
        app,
        "POST",
        f"{BASE}/requests/{{ref}}/cancel",
        [Scope.service],
        response_model=OpenDsrStatusOut,
        tags=["opendsr"],
        summary="Cancel an OpenDSR request that has not run",
    )
    def cancel(ref: str, request: Request) -> Response:
        found = service.find(ref, request.state.api_key)
        view = engine.requests.show(found.ref)
        if RequestState(view.state).closed or view.state == RequestState.in_progress:
            raise ApiError(
                409,
                "opendsr.state",
                f"OpenDSR request {ref} is {opendsr_status(view.state)}: too late to cancel",
            )
        view = engine.requests.withdraw(found.ref)
        service._append([NewEvent(CANCELLED, data={"subject_request_id": ref, "ref": found.ref})])
        return _signed(keyring, service.status_body(found, view), domain(request))


# -- the controller side: forwarding ---------------------------------------------------------


@dataclass(frozen=True)
class Forwarded:
    """What a processor answered a forwarded request."""

    subject_request_id: str
    status_code: int
    expected_completion_time: str | None
    signature_valid: bool | None  # None: the processor's key is not Ed25519 or not found


class ForwardError(Exception):
    """A request could not be forwarded; the message says why."""


def forward(
    engine: Engine,
    request_ref: str,
    processor_url: str,
    key: str,
    *,
    callback_urls: Iterable[str] = (),
) -> Forwarded:
    """Send lawful request `request_ref` (access, portability or erasure) to a processor
    that speaks OpenDSR at `processor_url` (its base, e.g. https://p.example/opendsr/v2),
    with the API `key` it gave this controller; check the answer's signature against the
    key its discovery names. Writes an `opendsr.forwarded` audit event."""
    base = processor_url.rstrip("/")
    controller_id = engine.store.ensure_controller(engine.policy.key, engine.policy.controller.name)
    with engine.store.engine.connect() as conn:
        row = conn.execute(
            sa.select(requests_table).where(
                requests_table.c.controller_id == controller_id,
                requests_table.c.ref == request_ref,
            )
        ).first()
    if row is None:
        raise ForwardError(f"no request {request_ref}: see `lawful requests list`")
    if row.kind not in KINDS:
        raise ForwardError(
            f"OpenDSR carries erasure, access and portability requests; {request_ref} is {row.kind}"
        )
    if row.contact_ciphertext is None or row.identity_kind not in ("email", "customer"):
        raise ForwardError(
            f"request {request_ref} names the person by {row.identity_kind}: OpenDSR "
            "processors take an email or a controller customer id"
        )
    value = engine.keyring.decrypt(
        row.key_id, row.contact_ciphertext, context=CONTACT + row.ref.encode()
    )
    kind = "email" if row.identity_kind == "email" else "controller_customer_id"
    subject_request_id = str(uuid.uuid4())
    body = {
        "subject_request_id": subject_request_id,
        "subject_request_type": row.kind,
        "submitted_time": row.received_at.isoformat()
        if row.received_at.tzinfo
        else row.received_at.replace(tzinfo=dt.UTC).isoformat(),
        "subject_identities": [
            {"identity_type": kind, "identity_value": value, "identity_format": "raw"}
        ],
        "regulation": "gdpr",
        "api_version": API_VERSION,
        "status_callback_urls": list(callback_urls),
    }
    try:
        answer = http(
            "POST",
            f"{base}/requests",
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=30,
        )
    except HttpFailed as exc:
        raise ForwardError(f"the processor at {base} could not be reached ({exc})") from None
    if answer.status_code != 201:
        raise ForwardError(
            f"the processor at {base} refused the request: HTTP {answer.status_code}"
        )
    valid = _check(base, answer)
    data = answer.json()
    host = urlsplit(base).netloc

    def work(conn: Any) -> None:
        lock_head(conn, controller_id)
        append(
            conn,
            controller_id,
            engine.policy.key,
            [
                NewEvent(
                    FORWARDED,
                    subject=row.identity_hash,
                    data={
                        "ref": request_ref,
                        "processor": host,
                        "subject_request_id": subject_request_id,
                        "signature_valid": valid,
                    },
                )
            ],
        )

    engine.store.write(work)
    return Forwarded(
        subject_request_id, answer.status_code, data.get("expected_completion_time"), valid
    )


def _check(base: str, answer: HttpAnswer) -> bool | None:
    signature = {k.lower(): v for k, v in answer.headers.items()}.get(SIGNATURE.lower())
    if not signature:
        return False
    try:
        found = http("GET", f"{base}/discovery")
        pem = http("GET", found.json()["processor_certificate"]).content
        return verify_signature(pem, answer.content, signature)
    except (HttpFailed, KeyError, ValueError, TypeError):
        return None


__all__ = [
    "ForwardError",
    "Forwarded",
    "OpenDsr",
    "add_opendsr",
    "forward",
    "opendsr_status",
    "public_pem",
    "verify_signature",
]
