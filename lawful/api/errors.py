"""JSON errors: `{"code", "message", "field"}` for every failure, whatever raised it.

lawful's own errors keep their message (it says what is wrong and how to fix it) and get
a stable code and status; validation errors (422) are reshaped to the same form, without
the values sent (they may be personal data); anything unexpected is a 500 that says
nothing but a reference to the server log, where the traceback is written without the
exception's message (which could hold personal data).
"""

from __future__ import annotations

import logging
import traceback
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lawful.api.keys import ApiKeyError
from lawful.consent import ConsentError, UnknownName
from lawful.consent.unsubscribe import UnsubscribeTokenError
from lawful.datasets.access import RectifyError
from lawful.disclosure import DisclosureError
from lawful.incidents import IncidentError
from lawful.policy.jurisdictions import UnknownJurisdictionError
from lawful.requests.deadlines import DeadlineError
from lawful.requests.package import LinkRejected, PackageUnavailable
from lawful.requests.refusals import RefusalError
from lawful.requests.service import RequestError, RequestStateError, UnknownRequest
from lawful.requests.verify import OnBehalfError
from lawful.store import StoreError
from lawful.subjects import IdentityConflict, IdentityError, KeyringError, SubjectError

log = logging.getLogger("lawful.api")


class ApiError(Exception):
    """An error the API answers with as it is."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


# lawful's errors: (status, code, field). Looked up along the exception's MRO, so the
# most specific class wins (UnknownRequest before RequestError).
LAWFUL_ERRORS: dict[type[Exception], tuple[int, str, str | None]] = {
    UnknownRequest: (404, "request.not_found", "ref"),
    RequestStateError: (409, "request.state", None),
    RequestError: (400, "request.invalid", None),
    RefusalError: (400, "request.unknown_ground", "rule"),
    DeadlineError: (400, "request.deadline", None),
    OnBehalfError: (400, "request.on_behalf", None),
    RectifyError: (400, "request.params", "params"),
    LinkRejected: (400, "package.link_rejected", "token"),
    PackageUnavailable: (410, "package.unavailable", "token"),
    IdentityError: (400, "identity.invalid", None),
    UnknownJurisdictionError: (400, "jurisdiction.unknown", "jurisdiction"),
    UnknownName: (400, "name.unknown", None),
    ConsentError: (400, "consent.invalid", None),
    UnsubscribeTokenError: (400, "unsubscribe.token", "token"),
    IdentityConflict: (409, "subject.conflict", None),
    SubjectError: (409, "subject.conflict", None),
    DisclosureError: (400, "disclosure.invalid", None),
    IncidentError: (400, "incident.invalid", None),
    ApiKeyError: (400, "key.invalid", None),
}
# The service itself can't work: the caller can only retry later.
UNAVAILABLE: dict[type[Exception], str] = {
    StoreError: "the store is unavailable; try again later",
    DBAPIError: "the store is unavailable; try again later",
    KeyringError: "the keyring cannot be used; an administrator must fix the server",
}


def body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field, **extra}


def install(app: FastAPI) -> None:
    """Register the handlers that give every error its JSON shape."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(body(exc.code, exc.message, exc.field), exc.status, headers=exc.headers)

    async def lawful_error(request: Request, exc: Exception) -> JSONResponse:
        for cls in type(exc).__mro__:
            if cls in LAWFUL_ERRORS:
                status, code, field = LAWFUL_ERRORS[cls]
                return JSONResponse(body(code, str(exc), field), status)
        return await unexpected(request, exc)  # pragma: no cover - every key is mapped

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        for cls in type(exc).__mro__:
            if cls in UNAVAILABLE:
                _log(request, exc, "unavailable")
                return JSONResponse(
                    body("service.unavailable", UNAVAILABLE[cls]), 503, headers={"Retry-After": "5"}
                )
        return await unexpected(request, exc)  # pragma: no cover

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [_problem(e) for e in exc.errors()]
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        message = "; ".join(
            f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems
        )
        return JSONResponse(
            body("request.validation", message, first["field"], errors=problems), 422
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = {
            404: "no such endpoint: see /openapi.json for the API",
            405: "this endpoint does not take that method: see /openapi.json",
        }.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            body(codes.get(exc.status_code, f"http.{exc.status_code}"), message),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = _log(request, exc, "unexpected error")
        return JSONResponse(
            body("internal", f"an unexpected error; the server log has it under {ref}"), 500
        )

    app.add_exception_handler(ApiError, api_error)
    for cls in LAWFUL_ERRORS:
        app.add_exception_handler(cls, lawful_error)
    for cls in UNAVAILABLE:
        app.add_exception_handler(cls, unavailable)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _problem(error: Any) -> dict[str, Any]:
    """One validation problem, without the value sent."""
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
    return {
        "field": ".".join(loc) or None,
        "message": str(error.get("msg", "invalid")),
        "type": str(error.get("type", "")),
    }


def _log(request: Request, exc: BaseException, what: str) -> str:
    """Log the traceback under a reference; the route's template, never its path (which
    can hold an identity), and the exception's type, never its message."""
    ref = uuid.uuid4().hex[:12]
    route = request.scope.get("route")
    where = getattr(route, "path", "?")
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "%s %s on %s %s (ref %s)\n%s",
        what,
        type(exc).__name__,
        request.method,
        where,
        ref,
        frames,
    )
    return ref
