"""Every route checks its key: none refused (401), another scope refused (403), its own
scope let through. Parametrised over the app's route table: a route added without a
sample request here fails `test_every_route_has_a_sample`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from lawful.api import Scope
from tests.api import routes_extra as extra
from tests.api.conftest import Api

REF = "0" * 32
# One request per keyed route: enough for the route to get past its key check.
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/decisions"): {
        "json": {"subject": "email:nobody@example.com", "purpose": "newsletter"}
    },
    ("POST", "/api/v1/decisions/batch"): {
        "json": {"subjects": ["email:nobody@example.com"], "purpose": "newsletter"}
    },
    ("POST", "/api/v1/consents"): {
        "json": {"subject": "email:nobody@example.com", "purpose": "newsletter", "action": "give"}
    },
    ("GET", "/api/v1/consents/{identity}"): {},
    ("GET", "/api/v1/consents/records/{ref}/receipt"): {},
    ("PUT", "/api/v1/preferences/{identity}"): {"json": {"channels": {"email": False}}},
    ("GET", "/api/v1/preferences/{identity}"): {},
    ("GET", "/api/v1/requests"): {},
    ("GET", "/api/v1/requests/{ref}/details"): {},
    ("POST", "/api/v1/requests/{ref}/approve"): {"json": {}},
    ("POST", "/api/v1/requests/{ref}/deny"): {"json": {"rule": "legal_claims"}},
    ("POST", "/api/v1/requests/{ref}/extend"): {"json": {"reason": "many systems"}},
    ("POST", "/api/v1/requests/{ref}/charge"): {"json": {"amount": "EUR 25"}},
    ("POST", "/api/v1/requests/{ref}/clarify"): {"json": {"question": "Which account?"}},
    ("POST", "/api/v1/requests/{ref}/clarified"): {},
    ("POST", "/api/v1/requests/{ref}/fee-paid"): {"json": {}},
    ("POST", "/api/v1/disclosures"): {
        "json": {
            "subject": "email:nobody@example.com",
            "recipient": "carrier",
            "categories": ["user.name"],
            "purpose": "orders",
        }
    },
    ("POST", "/api/v1/incidents"): {
        "json": {"discovered_at": "2026-01-02T10:00:00Z", "summary": "lost laptop"}
    },
    ("GET", "/api/v1/incidents"): {},
    ("GET", "/api/v1/incidents/{incident}"): {},
    ("GET", "/api/v1/audit/verify"): {},
    ("GET", "/api/v1/audit/events"): {},
    ("GET", "/api/v1/keys"): {},
    ("DELETE", "/api/v1/keys/{ref}"): {},
    ("GET", "/metrics"): {},
}
# Routes anyone may call: the person's own request, and operations.
PUBLIC = {
    ("POST", "/api/v1/requests"),
    ("GET", "/api/v1/requests/download"),
    ("GET", "/requests/download"),
    ("POST", "/api/v1/requests/{ref}/verify"),
    ("GET", "/api/v1/requests/{ref}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/.well-known/gpc.json"),
}
# Who may call what: the documented table (docs/api.md), checked against the app.
EXPECTED = {
    "admin only": {("GET", "/api/v1/keys"), ("DELETE", "/api/v1/keys/{ref}")},
    "service": {
        ("POST", "/api/v1/decisions"),
        ("POST", "/api/v1/decisions/batch"),
        ("POST", "/api/v1/consents"),
        ("PUT", "/api/v1/preferences/{identity}"),
        ("POST", "/api/v1/disclosures"),
        ("GET", "/api/v1/consents/{identity}"),
        ("GET", "/api/v1/consents/records/{ref}/receipt"),
        ("GET", "/api/v1/preferences/{identity}"),
    },
    "operator": {
        ("GET", "/api/v1/consents/{identity}"),
        ("GET", "/api/v1/consents/records/{ref}/receipt"),
        ("GET", "/api/v1/preferences/{identity}"),
        ("GET", "/api/v1/requests"),
        ("GET", "/api/v1/requests/{ref}/details"),
        ("POST", "/api/v1/requests/{ref}/approve"),
        ("POST", "/api/v1/requests/{ref}/deny"),
        ("POST", "/api/v1/requests/{ref}/extend"),
        ("POST", "/api/v1/requests/{ref}/charge"),
        ("POST", "/api/v1/requests/{ref}/fee-paid"),
        ("POST", "/api/v1/requests/{ref}/clarify"),
        ("POST", "/api/v1/requests/{ref}/clarified"),
        ("POST", "/api/v1/incidents"),
        ("GET", "/api/v1/incidents"),
        ("GET", "/api/v1/incidents/{incident}"),
        ("GET", "/api/v1/audit/verify"),
        ("GET", "/api/v1/audit/events"),
        ("GET", "/metrics"),
    },
    "read": {
        ("GET", "/api/v1/requests"),
        ("GET", "/api/v1/requests/{ref}/details"),
        ("GET", "/api/v1/incidents"),
        ("GET", "/api/v1/incidents/{incident}"),
        ("GET", "/api/v1/audit/verify"),
        ("GET", "/metrics"),
    },
}
SAMPLES.update(extra.SAMPLES)
PUBLIC |= extra.PUBLIC
for _scope, _routes in extra.EXPECTED.items():
    EXPECTED[_scope] |= _routes


def _url(path: str) -> str:
    return (
        path.replace("{identity}", "email:nobody@example.com")
        .replace("{ref}", REF)
        .replace("{incident}", "1")
    )


def _call(api: Api, method: str, path: str, headers: dict[str, str]) -> Any:
    return api.client.request(method, _url(path), headers=headers, **SAMPLES[(method, path)])


def test_every_route_has_a_sample(sqlite_api: Api) -> None:
    app = sqlite_api.client.app
    access = app.state.access  # type: ignore[attr-defined]
    served = {
        (method, r.path)
        for r in app.routes  # type: ignore[attr-defined]
        if isinstance(r, APIRoute)
        for method in r.methods
    }
    assert served == set(access), "every route is declared through the access table"
    keyed = {k for k, a in access.items() if not a.public}
    assert keyed == set(SAMPLES), "a keyed route without a sample request in this test"
    assert {k for k, a in access.items() if a.public} == PUBLIC


def test_scopes_match_the_documented_table(sqlite_api: Api) -> None:
    access = sqlite_api.client.app.state.access  # type: ignore[attr-defined]
    for route in SAMPLES:
        scopes = access[route].scopes
        assert Scope.admin in scopes
        expected = {Scope.admin}
        for scope in ("service", "operator", "read"):
            if route in EXPECTED[scope]:
                expected.add(Scope(scope))
        assert scopes == expected, route


@pytest.mark.parametrize("route", sorted(SAMPLES), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_missing_key_is_refused(sqlite_api: Api, route: tuple[str, str]) -> None:
    answer = _call(sqlite_api, *route, headers={})
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "auth.missing"
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("route", sorted(SAMPLES), ids=lambda r: f"{r[0]} {r[1]}")
def test_an_unknown_key_is_refused(sqlite_api: Api, route: tuple[str, str]) -> None:
    answer = _call(sqlite_api, *route, headers={"X-API-Key": "lawful_" + "x" * 43})
    assert answer.status_code == 401
    assert answer.json()["code"] == "auth.invalid"


@pytest.mark.parametrize("route", sorted(SAMPLES), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_key_of_the_wrong_scope_is_refused(sqlite_api: Api, route: tuple[str, str]) -> None:
    allowed = sqlite_api.client.app.state.access[route].scopes  # type: ignore[attr-defined]
    wrong = [s for s in Scope if s not in allowed]
    assert wrong, f"{route} takes every scope: no key is ever refused"
    for scope in wrong:
        answer = _call(sqlite_api, *route, headers=sqlite_api.headers(scope.value))
        assert answer.status_code == 403, (scope, answer.text)
        body = answer.json()
        assert body["code"] == "auth.scope"
        assert scope.value in body["message"]


@pytest.mark.parametrize("route", sorted(SAMPLES), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_key_of_the_right_scope_gets_through(sqlite_api: Api, route: tuple[str, str]) -> None:
    allowed = sqlite_api.client.app.state.access[route].scopes  # type: ignore[attr-defined]
    for scope in allowed:
        if route == ("DELETE", "/api/v1/keys/{ref}"):
            headers = sqlite_api.headers(scope.value)  # revokes nothing: the ref is unknown
        else:
            headers = {"X-API-Key": sqlite_api.tokens[scope.value]}  # the other header
        answer = _call(sqlite_api, *route, headers=headers)
        assert answer.status_code not in (401, 403, 500), (scope, answer.text)


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=lambda r: f"{r[0]} {r[1]}")
def test_public_routes_need_no_key(sqlite_api: Api, route: tuple[str, str]) -> None:
    method, path = route
    body = {"json": {"code": "123456"}} if path.endswith("verify") else {}
    if path == "/api/v1/requests":
        body = {"json": {"kind": "access", "identity": "email:nobody@example.com"}}
    answer = sqlite_api.client.request(method, _url(path), params={"token": "x"}, **body)
    assert answer.status_code not in (401, 403, 500), answer.text


def test_a_revoked_key_stops_working(sqlite_api: Api) -> None:
    keys = sqlite_api.client.app.state.keys  # type: ignore[attr-defined]
    key, token = keys.create("read", name="short-lived")
    headers = {"Authorization": f"Bearer {token}"}
    assert sqlite_api.client.get("/api/v1/audit/verify", headers=headers).status_code == 200
    revoked = sqlite_api.client.delete(
        f"/api/v1/keys/{key.ref}", headers=sqlite_api.headers("admin")
    )
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    [row] = sqlite_api.sql("SELECT revoked_at FROM api_keys WHERE ref = :ref", ref=key.ref)
    assert row.revoked_at is not None
    answer = sqlite_api.client.get("/api/v1/audit/verify", headers=headers)
    assert answer.status_code == 401 and answer.json()["code"] == "auth.invalid"
    again = sqlite_api.client.delete(f"/api/v1/keys/{key.ref}", headers=sqlite_api.headers("admin"))
    assert again.status_code == 409 and again.json()["code"] == "key.revoked"


def test_keys_are_stored_hashed(sqlite_api: Api) -> None:
    rows = sqlite_api.sql("SELECT token_hash, prefix, scope FROM api_keys")
    for token in sqlite_api.tokens.values():
        assert all(token not in (r.token_hash, r.prefix) for r in rows)
    import hashlib

    hashes = {r.token_hash for r in rows}
    assert {hashlib.sha256(t.encode()).hexdigest() for t in sqlite_api.tokens.values()} <= hashes
    events = sqlite_api.sql("SELECT kind, data FROM audit_events WHERE kind LIKE 'api_key.%'")
    assert len(events) >= len(Scope)
    assert all(t not in str(e.data) for e in events for t in sqlite_api.tokens.values())


def test_a_key_of_another_controller_is_refused(sqlite_api: Api) -> None:
    from lawful.api import ApiKeys

    other = ApiKeys(sqlite_api.engine.store, "another-shop", "Another Shop")
    _, token = other.create("admin")
    answer = sqlite_api.client.get("/api/v1/audit/verify", headers={"X-API-Key": token})
    assert answer.status_code == 401
