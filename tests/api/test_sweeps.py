"""The sweeps resource: plan and run retention sweeps over HTTP, checked with SQL."""

from __future__ import annotations

import json

from tests.api.conftest import Api


def _logins(api: Api) -> int:
    return api.shop("SELECT COUNT(*) FROM login_events")[0][0]


def _swept(api: Api) -> list[dict]:
    rows = api.sql("SELECT data FROM audit_events WHERE kind = 'retention.swept' ORDER BY seq")
    return [json.loads(r.data) if isinstance(r.data, str) else r.data for r in rows]


def _security(report: dict) -> dict:
    [rule] = [r for r in report["rules"] if r["rule"] == "security"]
    return rule


def test_plan_counts_without_deleting(api: Api) -> None:
    before = _logins(api)
    answer = api.client.get(
        "/api/v1/sweeps/plan", params={"rule": "security"}, headers=api.headers("read")
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["dry_run"] is True
    assert [r["rule"] for r in report["rules"]] == ["security"]
    planned = _security(report)["rows"]
    assert 0 < planned <= before
    assert _logins(api) == before
    assert _swept(api) == []
    dry = api.client.post(
        "/api/v1/sweeps", json={"dry_run": True}, headers=api.headers("operator")
    ).json()
    assert _security(dry)["rows"] == planned and _logins(api) == before and _swept(api) == []


def test_sweep_deletes_what_expired_and_audits_it(api: Api) -> None:
    before = _logins(api)
    planned = _security(
        api.client.get("/api/v1/sweeps/plan", headers=api.headers("operator")).json()
    )
    answer = api.client.post(
        "/api/v1/sweeps", json={"rules": ["security"]}, headers=api.headers("operator")
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["dry_run"] is False
    swept = _security(report)
    assert swept["rows"] == planned["rows"] > 0
    [table] = swept["tables"]
    assert table["table"] == "login_events" and table["action"] == "delete"
    # Exactly those rows are gone: none older than the cutoff remain.
    assert _logins(api) == before - swept["rows"]
    again = api.client.get(
        "/api/v1/sweeps/plan", params={"rule": "security"}, headers=api.headers("operator")
    )
    assert _security(again.json())["rows"] == 0
    [event] = _swept(api)
    assert event["rule"] == "security"


def test_unknown_rules_are_refused_naming_the_field(api: Api) -> None:
    answer = api.client.post(
        "/api/v1/sweeps", json={"rules": ["securty"]}, headers=api.headers("operator")
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "sweep.unknown_rule" and body["field"] == "rules"
    assert "security" in body["message"]  # did you mean
    plan = api.client.get(
        "/api/v1/sweeps/plan", params={"rule": "nope"}, headers=api.headers("read")
    )
    assert plan.status_code == 400 and plan.json()["field"] == "rule"
    extra = api.client.post("/api/v1/sweeps", json={"dry": True}, headers=api.headers("operator"))
    assert extra.status_code == 422
    assert _swept(api) == []


def test_a_service_key_may_not_sweep(api: Api) -> None:
    before = _logins(api)
    answer = api.client.post("/api/v1/sweeps", json={}, headers=api.headers("service"))
    assert answer.status_code == 403
    read = api.client.post("/api/v1/sweeps", json={}, headers=api.headers("read"))
    assert read.status_code == 403
    assert _logins(api) == before
