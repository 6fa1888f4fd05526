"""Every error has the same JSON shape: a stable code, a message, the field at fault; and
the OpenAPI document lists every route."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.routing import APIRoute

from lawful.store import StoreError
from tests.api.conftest import Api

SHAPE = {"code", "message", "field"}


def _error(answer: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) >= SHAPE
    assert body["code"] == code and body["message"]
    assert body["field"] == field
    return body


def test_validation_errors_name_the_field_without_the_value(sqlite_api: Api) -> None:
    service = sqlite_api.headers("service")
    answer = sqlite_api.client.post(
        "/api/v1/decisions", json={"subject": ["secret@example.com"]}, headers=service
    )
    body = _error(answer, 422, "request.validation", "subject")
    assert {e["field"] for e in body["errors"]} == {"subject", "purpose"}
    assert "secret@example.com" not in answer.text
    extra = sqlite_api.client.post(
        "/api/v1/decisions",
        json={"subject": "email:a@example.com", "purpose": "newsletter", "chanel": "email"},
        headers=service,
    )
    _error(extra, 422, "request.validation", "chanel")
    query = sqlite_api.client.get(
        "/api/v1/audit/events", params={"limit": 0}, headers=sqlite_api.headers("operator")
    )
    _error(query, 422, "request.validation", "limit")
    window = sqlite_api.client.get(
        "/api/v1/requests", params={"due_within": "3"}, headers=sqlite_api.headers("operator")
    )
    _error(window, 400, "request.window", "due_within")


def test_lawful_errors_keep_their_message(sqlite_api: Api) -> None:
    service = sqlite_api.headers("service")
    post = sqlite_api.client.post
    body = _error(
        post(
            "/api/v1/decisions",
            json={"subject": "email:a@example.com", "purpose": "nope"},
            headers=service,
        ),
        400,
        "name.unknown",
        "purpose",
    )
    assert "newsletter" in body["message"]  # the names it could have been
    _error(
        post(
            "/api/v1/decisions", json={"subject": "alice", "purpose": "newsletter"}, headers=service
        ),
        400,
        "identity.invalid",
        "subject",
    )
    _error(
        post(
            "/api/v1/decisions",
            json={"subject": "email:a@example.com", "purpose": "newsletter", "jurisdiction": "xx"},
            headers=service,
        ),
        400,
        "jurisdiction.unknown",
        "jurisdiction",
    )
    # Consent to a purpose whose basis is a contract: the consent capability's own error.
    _error(
        post(
            "/api/v1/consents",
            json={"subject": "email:a@example.com", "purpose": "orders", "action": "give"},
            headers=service,
        ),
        400,
        "consent.invalid",
    )
    _error(sqlite_api.client.get(f"/api/v1/requests/{'a' * 32}"), 404, "request.not_found", "ref")
    _error(
        post("/api/v1/requests", json={"kind": "teleport", "identity": "email:a@example.com"}),
        400,
        "name.unknown",
        "kind",
    )
    # A request by account id cannot be verified by a code: the requests capability says so.
    _error(
        post("/api/v1/requests", json={"kind": "access", "identity": "account:42"}),
        400,
        "request.invalid",
    )
    _error(sqlite_api.client.get("/api/v1/nothing"), 404, "not_found")
    _error(sqlite_api.client.delete("/healthz"), 405, "method_not_allowed")


def test_unexpected_errors_say_nothing_personal(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(subject: Any, *args: Any, **kwargs: Any) -> None:
        # The traceback's source lines are code, never data: the identity is in the message.
        raise RuntimeError(f"cannot read {subject}")

    monkeypatch.setattr(sqlite_api.engine.consent, "state", broken)
    with caplog.at_level(logging.ERROR, logger="lawful.api"):
        answer = sqlite_api.client.get(
            "/api/v1/consents/email:alice@example.com", headers=sqlite_api.headers("operator")
        )
    body = _error(answer, 500, "internal")
    assert "alice" not in answer.text
    ref = body["message"].rsplit(" ", 1)[-1]
    assert ref in caplog.text and "RuntimeError" in caplog.text
    assert "alice" not in caplog.text  # neither the message nor the path: the route template
    assert "/api/v1/consents/{identity}" in caplog.text


def test_an_unusable_store_is_a_503(sqlite_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise StoreError("cannot use the store at postgresql://lawful@db/lawful: refused")

    monkeypatch.setattr(sqlite_api.engine.consent, "history", down)
    answer = sqlite_api.client.get(
        "/api/v1/consents/email:a@example.com", headers=sqlite_api.headers("operator")
    )
    _error(answer, 503, "service.unavailable")
    assert "postgresql" not in answer.text and answer.headers["Retry-After"] == "5"


def test_openapi_lists_every_route(sqlite_api: Api) -> None:
    answer = sqlite_api.client.get("/openapi.json")
    assert answer.status_code == 200
    spec = answer.json()
    assert spec["openapi"].startswith("3.")
    app = sqlite_api.client.app
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for route in app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods:
                assert (method, route.path) in documented
    assert ("GET", "/requests/download") not in documented  # the message link's alias
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    # Keyed operations say so; the person's own do not.
    for (method, path), access in app.state.access.items():  # type: ignore[attr-defined]
        if (method, path) not in documented:
            continue
        operation = spec["paths"][path][method.lower()]
        assert bool(operation.get("security")) is (not access.public), (method, path)
        if not access.public:
            assert {"401", "403"} <= set(operation["responses"])
    _check_refs(spec, spec)


def _check_refs(spec: dict[str, Any], node: Any) -> None:
    """Every $ref in the document resolves."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target: Any = spec
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
        for value in node.values():
            _check_refs(spec, value)
    elif isinstance(node, list):
        for value in node:
            _check_refs(spec, value)
