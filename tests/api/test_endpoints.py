"""Each endpoint's happy path over HTTP, with what it left in the store (and the shop)
checked by plain SQL. On SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from lawful.requests.tables import requests
from lawful.requests.verify import OnBehalf
from lawful.subjects import Identity
from tests.api.conftest import Api, code_for


def customers(api: Api, n: int = 3) -> list[str]:
    return [r.email for r in api.shop("SELECT email FROM customers ORDER BY id")][:n]


def ledger(api: Api, record: str) -> dict[str, object]:
    [row] = api.sql(
        "SELECT topic, key, scope, state, method FROM consent_records WHERE ref = :ref", ref=record
    )
    return dict(row._mapping)


def submit_verified(
    api: Api, kind: str, email: str, *, on_behalf: dict[str, Any] | None = None
) -> str:
    body: dict[str, Any] = {"kind": kind, "identity": f"email:{email}", "jurisdiction": "eu"}
    if on_behalf is not None:
        body["on_behalf"] = on_behalf
    intake = api.client.post("/api/v1/requests", json=body)
    assert intake.status_code == 202, intake.text
    ref = intake.json()["ref"]
    answer = api.client.post(
        f"/api/v1/requests/{ref}/verify", json={"code": code_for(api.sender, email)}
    )
    assert answer.status_code == 200, answer.text
    return ref


def request_row(api: Api, ref: str) -> dict[str, object]:
    [row] = api.sql(
        "SELECT state, due_at, extension_reason, verified_by FROM requests WHERE ref = :ref",
        ref=ref,
    )
    return dict(row._mapping)


# -- decisions and consents ------------------------------------------------------------------


def test_decide_record_consent_and_decide_again(api: Api) -> None:
    alice = f"email:{customers(api)[0]}"
    service = api.headers("service")
    ask = {"subject": alice, "purpose": "newsletter", "channel": "email", "list": "weekly"}
    before = api.client.post("/api/v1/decisions", json=ask, headers=service)
    assert before.status_code == 200
    assert before.json()["allowed"] is False and before.json()["rule"] == "consent.missing"

    given = api.client.post(
        "/api/v1/consents",
        json={"subject": alice, "purpose": "newsletter", "action": "give", "method": "checkbox"},
        headers=service,
    )
    assert given.status_code == 201, given.text
    record = given.json()["record"]
    assert ledger(api, record) == {
        "topic": "consent",
        "key": "newsletter",
        "scope": "",
        "state": "given",
        "method": "checkbox",
    }
    after = api.client.post("/api/v1/decisions", json=ask, headers=service).json()
    assert after["allowed"] is True and after["basis"] == "consent"

    # GPC does not stop an email newsletter; a withdrawal does.
    gpc = api.client.post("/api/v1/decisions", json={**ask, "gpc": True}, headers=service).json()
    assert gpc["allowed"] is True
    withdrawn = api.client.post(
        "/api/v1/consents",
        json={"subject": alice, "purpose": "newsletter", "action": "withdraw"},
        headers=service,
    )
    assert ledger(api, withdrawn.json()["record"])["state"] == "withdrawn"
    refused = api.client.post(
        "/api/v1/consents",
        json={"subject": alice, "purpose": "reviews", "action": "refuse"},
        headers=service,
    )
    assert ledger(api, refused.json()["record"])["state"] == "refused"
    final = api.client.post("/api/v1/decisions", json=ask, headers=service).json()
    assert final["allowed"] is False and final["rule"] == "consent.withdrawn"


def test_batch_decisions_keep_the_order_given(api: Api) -> None:
    emails = customers(api, 3)
    service = api.headers("service")
    api.client.post(
        "/api/v1/consents",
        json={"subject": f"email:{emails[1]}", "purpose": "newsletter", "action": "give"},
        headers=service,
    )
    subjects = [f"email:{e}" for e in emails] + ["email:stranger@example.com"]
    answer = api.client.post(
        "/api/v1/decisions/batch",
        json={"subjects": subjects, "purpose": "newsletter"},
        headers=service,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert [d["allowed"] for d in body["decisions"]] == [False, True, False, False]
    assert (body["allowed"], body["refused"]) == (1, 3)


def test_consent_state_history_and_receipt(api: Api) -> None:
    bob = f"email:{customers(api)[1]}"
    given = api.client.post(
        "/api/v1/consents",
        json={"subject": bob, "purpose": "newsletter", "action": "give", "list": "offers"},
        headers=api.headers("service"),
    ).json()
    state = api.client.get(f"/api/v1/consents/{bob}", headers=api.headers("operator"))
    assert state.status_code == 200
    body = state.json()
    assert body["known"] is True
    assert [h["record"] for h in body["history"]] == [given["record"]]
    assert body["history"][0]["scope"] == "list:offers"
    assert {d["purpose"] for d in body["decisions"]} == set(api.engine.policy.purposes)
    # Reading the state is not a use of the data: no decision events were written.
    decided = api.sql("SELECT count(*) AS n FROM audit_events WHERE kind LIKE 'decision%'")
    assert decided[0].n == 0

    receipt = api.client.get(
        f"/api/v1/consents/records/{given['record']}/receipt", headers=api.headers("service")
    )
    assert receipt.status_code == 200
    assert given["record"] in json.dumps(receipt.json())
    unknown = api.client.get(
        f"/api/v1/consents/records/{'f' * 32}/receipt", headers=api.headers("service")
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "consent.not_found"

    nobody = api.client.get(
        "/api/v1/consents/email:nobody@example.com", headers=api.headers("service")
    )
    assert nobody.json()["known"] is False and nobody.json()["history"] == []


# -- preferences -----------------------------------------------------------------------------


def test_preferences_are_recorded_together(api: Api) -> None:
    carol = f"email:{customers(api)[2]}"
    service = api.headers("service")
    empty = api.client.get(f"/api/v1/preferences/{carol}", headers=service).json()
    assert empty["channels"] == {"email": None}
    assert empty["cookies"] == {"analytics": None, "strictly_necessary": True}

    body = {
        "channels": {"email": False},
        "lists": {"weekly": True},
        "cookies": {"analytics": True, "strictly_necessary": True},
        "opt_outs": {"sale": True},
        "method": "form",
    }
    answer = api.client.put(f"/api/v1/preferences/{carol}", json=body, headers=service)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["channels"] == {"email": False}
    assert out["lists"]["weekly"] is True and out["lists"]["offers"] is None
    assert out["cookies"] == {"analytics": True, "strictly_necessary": True}
    assert out["opt_outs"]["sale"] is True and out["opt_outs"]["share"] is None
    rows = {
        (r.topic, r.key): r.state
        for r in api.sql(
            "SELECT topic, key, state FROM consent_records WHERE ref IN ("
            + ",".join(f"'{r}'" for r in out["records"])
            + ")"
        )
    }
    assert rows == {
        ("channel", "email"): "withdrawn",
        ("list", "weekly"): "given",
        ("cookie", "analytics"): "given",
        ("opt_out", "sale"): "withdrawn",
    }
    assert api.client.get(
        f"/api/v1/preferences/{carol}", headers=api.headers("operator")
    ).json() == {
        **out,
        "records": [],
    }
    # The email channel stopped: a newsletter by email is refused even with consent.
    api.client.post(
        "/api/v1/consents",
        json={"subject": carol, "purpose": "newsletter", "action": "give"},
        headers=service,
    )
    decision = api.client.post(
        "/api/v1/decisions",
        json={"subject": carol, "purpose": "newsletter", "channel": "email"},
        headers=service,
    ).json()
    assert decision["allowed"] is False


def test_preferences_with_one_bad_choice_record_nothing(api: Api) -> None:
    dave = f"email:{customers(api)[0]}"
    before = api.sql("SELECT count(*) AS n FROM consent_records")[0].n
    answer = api.client.put(
        f"/api/v1/preferences/{dave}",
        json={"channels": {"email": False}, "cookies": {"strictly_necessary": False}},
        headers=api.headers("service"),
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "preferences.necessary"
    assert answer.json()["field"] == "cookies.strictly_necessary"
    unknown = api.client.put(
        f"/api/v1/preferences/{dave}",
        json={"channels": {"email": False}, "lists": {"daily": True}},
        headers=api.headers("service"),
    )
    assert unknown.status_code == 400 and unknown.json()["field"] == "lists.daily"
    assert api.sql("SELECT count(*) AS n FROM consent_records")[0].n == before


# -- requests --------------------------------------------------------------------------------


def test_access_request_from_submission_to_download(api: Api) -> None:
    email = customers(api)[0]
    ref = submit_verified(api, "access", email)
    assert request_row(api, ref)["state"] == "in_progress"
    assert request_row(api, ref)["verified_by"] == "email_code"
    api.engine.requests.run_pending()
    status = api.client.get(f"/api/v1/requests/{ref}")
    assert status.status_code == 200
    body = status.json()
    assert body["state"] == "completed" and body["status"] == "Your request is complete."
    assert email not in status.text

    ready = api.sender.last(to=email, template="package_ready").body
    token = re.search(r"token=([A-Za-z0-9_.\-]+)", ready).group(1)  # type: ignore[union-attr]
    package = api.client.get("/api/v1/requests/download", params={"token": token})
    assert package.status_code == 200, package.text
    assert package.headers["content-type"] == "application/zip"
    assert package.headers["cache-control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(package.content)) as zipped:
        data = json.loads(zipped.read("data.json"))
    assert email in json.dumps(data)
    # The link in the message (outside /api/v1) serves the same package.
    assert api.client.get("/requests/download", params={"token": token}).content == package.content
    downloads = api.sql(
        "SELECT count(*) AS n FROM audit_events WHERE kind = 'request.package_downloaded'"
    )
    assert downloads[0].n == 2
    bad = api.client.get("/api/v1/requests/download", params={"token": token[:-3] + "AAA"})
    assert bad.status_code == 400 and bad.json()["code"] == "package.link_rejected"


def test_erasure_waits_for_approval_then_erases(api: Api) -> None:
    email = customers(api)[1]
    ref = submit_verified(api, "erasure", email)
    assert request_row(api, ref)["state"] == "awaiting_approval"
    operator = api.headers("operator")
    queue = api.client.get("/api/v1/requests", params={"due_within": "40d"}, headers=operator)
    assert [r["ref"] for r in queue.json()] == [ref]
    assert (
        api.client.get("/api/v1/requests", params={"due_within": "3d"}, headers=operator).json()
        == []
    )
    assert (
        api.client.get("/api/v1/requests", params={"overdue": "true"}, headers=operator).json()
        == []
    )

    approved = api.client.post(
        f"/api/v1/requests/{ref}/approve", json={"by": "Dana (DPO)"}, headers=operator
    )
    assert approved.status_code == 200, approved.text
    assert request_row(api, ref)["state"] == "in_progress"
    why = api.sql(
        "SELECT data FROM audit_events WHERE kind = 'request.in_progress' ORDER BY seq DESC"
    )[0].data
    assert "Dana (DPO)" in json.dumps(why)
    again = api.client.post(f"/api/v1/requests/{ref}/approve", json={}, headers=operator)
    assert again.status_code == 409 and again.json()["code"] == "request.state"

    api.engine.requests.run_pending()
    assert request_row(api, ref)["state"] in ("completed", "partially_completed")
    assert api.shop("SELECT id FROM customers WHERE email = :e", e=email) == []
    details = api.client.get(f"/api/v1/requests/{ref}/details", headers=api.headers("read"))
    assert details.json()["receipt"] is not None and details.json()["steps"]


def test_deny_and_extend(api: Api) -> None:
    first, second = customers(api, 2)
    operator = api.headers("operator")
    denied_ref = submit_verified(api, "erasure", first)
    bad = api.client.post(
        f"/api/v1/requests/{denied_ref}/deny", json={"rule": "whim"}, headers=operator
    )
    assert bad.status_code == 400 and bad.json()["field"] == "rule"
    assert request_row(api, denied_ref)["state"] == "awaiting_approval"
    denied = api.client.post(
        f"/api/v1/requests/{denied_ref}/deny",
        json={"rule": "legal_claims", "detail": "a court case is pending"},
        headers=operator,
    )
    assert denied.status_code == 200, denied.text
    assert request_row(api, denied_ref)["state"] == "denied"
    assert (
        api.client.get(f"/api/v1/requests/{denied_ref}").json()["refusal"]["rule"] == "legal_claims"
    )

    ref = submit_verified(api, "erasure", second)
    before = request_row(api, ref)["due_at"]
    extended = api.client.post(
        f"/api/v1/requests/{ref}/extend",
        json={"reason": "many systems to search"},
        headers=operator,
    )
    assert extended.status_code == 200, extended.text
    row = request_row(api, ref)
    assert row["extension_reason"] == "many systems to search"
    assert _when(row["due_at"]) > _when(before) + timedelta(days=50)
    closed = api.client.post(
        f"/api/v1/requests/{denied_ref}/extend", json={"reason": "x"}, headers=operator
    )
    assert closed.status_code == 409


def test_clarification_asked_and_answered(api: Api) -> None:
    [email] = customers(api, 1)
    operator = api.headers("operator")
    ref = submit_verified(api, "erasure", email)  # awaiting approval under this policy
    empty = api.client.post(
        f"/api/v1/requests/{ref}/clarify", json={"question": ""}, headers=operator
    )
    assert empty.status_code == 422 and empty.json()["field"] == "question"
    early = api.client.post(f"/api/v1/requests/{ref}/clarified", headers=operator)
    assert early.status_code == 409
    asked = api.client.post(
        f"/api/v1/requests/{ref}/clarify",
        json={"question": "Which of your two accounts?"},
        headers=operator,
    )
    assert asked.status_code == 200, asked.text
    assert request_row(api, ref)["state"] == "awaiting_clarification"
    assert "two accounts" in api.sender.last(to=email, template="awaiting_clarification").body
    back = api.client.post(f"/api/v1/requests/{ref}/clarified", headers=operator)
    assert back.status_code == 200 and request_row(api, ref)["state"] == "awaiting_approval"
    api.client.post(f"/api/v1/requests/{ref}/approve", json={}, headers=operator)
    late = api.client.post(
        f"/api/v1/requests/{ref}/clarify", json={"question": "More?"}, headers=operator
    )
    assert late.status_code == 409 and late.json()["code"] == "request.state"


def test_a_fee_asked_paid_or_left_unpaid(api: Api) -> None:
    first, second = customers(api, 2)
    operator = api.headers("operator")
    ref = submit_verified(api, "erasure", first)  # awaiting approval under this policy
    for body in ({"amount": "25 euros"}, {"amount": "EUR 25", "ground": "legal_claims"}):
        bad = api.client.post(f"/api/v1/requests/{ref}/charge", json=body, headers=operator)
        assert bad.status_code == 400 and bad.json()["code"] == "request.invalid", bad.text
    early = api.client.post(f"/api/v1/requests/{ref}/fee-paid", json={}, headers=operator)
    assert early.status_code == 409 and early.json()["code"] == "request.state"
    charged = api.client.post(
        f"/api/v1/requests/{ref}/charge", json={"amount": "EUR 25"}, headers=operator
    )
    assert charged.status_code == 200, charged.text
    assert charged.json()["state"] == "awaiting_fee" and charged.json()["paused"] is True
    status = api.client.get(f"/api/v1/requests/{ref}").json()  # what the person sees
    assert status["fee"]["amount"] == "EUR 25" and "fee is paid" in status["status"]
    assert "paid_by" not in status["fee"]  # who of the team saw it paid is theirs to know
    assert "EUR 25" in api.sender.last(to=first, template="fee").body
    paid = api.client.post(
        f"/api/v1/requests/{ref}/fee-paid", json={"by": "Dana (DPO)"}, headers=operator
    )
    assert paid.status_code == 200, paid.text
    assert request_row(api, ref)["state"] == "awaiting_approval"
    [event] = api.sql("SELECT data FROM audit_events WHERE kind = 'request.fee_paid'")
    assert "Dana (DPO)" in json.dumps(event.data)
    status = api.client.get(f"/api/v1/requests/{ref}").json()
    assert status["fee"]["paid_at"] and "paid_by" not in status["fee"]
    team = api.client.get(f"/api/v1/requests/{ref}/details", headers=operator).json()
    assert team["fee"]["paid_by"] == "Dana (DPO)"

    other = submit_verified(api, "erasure", second)
    api.client.post(f"/api/v1/requests/{other}/charge", json={"amount": "EUR 5"}, headers=operator)
    unpaid = api.client.post(
        f"/api/v1/requests/{other}/deny", json={"rule": "fee_unpaid"}, headers=operator
    )
    assert unpaid.status_code == 200, unpaid.text
    assert request_row(api, other)["state"] == "denied"
    assert unpaid.json()["refusal"]["rule"] == "fee_unpaid"
    again = api.client.post(
        f"/api/v1/requests/{other}/deny", json={"rule": "fee_unpaid"}, headers=operator
    )
    assert again.status_code == 409
    late = api.client.post(
        f"/api/v1/requests/{other}/charge", json={"amount": "EUR 5"}, headers=operator
    )
    assert late.status_code == 409


AGENT = "email:agent@privacy-firm.example"
PERMISSION = b"%PDF-1.7 I authorise Privacy Firm to ask for my data. Signed, the customer"


def _data(value: object) -> dict[str, Any]:
    """A JSON column as read by plain SQL: text on SQLite, a dict on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


def test_an_authorised_agent_asks_for_a_customer(api: Api) -> None:
    email = customers(api)[0]
    agent = {
        "role": "agent",
        "actor": AGENT,
        "proof": "signed permission",
        "document_sha256": OnBehalf.document_hash(PERMISSION),
    }
    # The customer gets the code and confirms; the agent gets nothing.
    ref = submit_verified(api, "access", email, on_behalf=agent)
    assert not [m for m in api.sender.sent if m.to == AGENT.removeprefix("email:")]
    api.engine.requests.run_pending()
    assert request_row(api, ref)["state"] == "completed"

    [row] = api.sql("SELECT * FROM requests WHERE ref = :ref", ref=ref)
    assert _data(row.on_behalf) == {
        "role": "agent",
        "actor_kind": "email",
        "actor_hash": api.engine.keyring.hash(Identity.parse(AGENT)),
        "proof": "signed permission",
        "document_sha256": OnBehalf.document_hash(PERMISSION),
    }
    received = [
        _data(e.data)
        for e in api.sql("SELECT data FROM audit_events WHERE kind = 'request.received'")
    ]
    assert [d["on_behalf"] for d in received if d["ref"] == ref] == ["agent"]
    # The agent's address is nowhere in lawful's store.
    for table in ("requests", "audit_events", "request_steps", "request_messages"):
        rows = " ".join(str(tuple(r)) for r in api.sql(f"SELECT * FROM {table}"))
        assert "privacy-firm" not in rows, table


def test_a_bad_on_behalf_is_refused_naming_the_field(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    email = customers(api)[0]
    agent = {"role": "agent", "actor": AGENT, "proof": "signed permission"}
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({**agent, "role": "friend"}, 422, "request.validation", "on_behalf.role"),
        (
            {**agent, "actor": "email:agent@privacy-firm"},
            400,
            "identity.invalid",
            "on_behalf.actor",
        ),
        ({**agent, "actor": "agent-privacy-firm"}, 400, "identity.invalid", "on_behalf.actor"),
        ({**agent, "actor": "x" * 321}, 422, "request.validation", "on_behalf.actor"),
        ({"role": "agent", "actor": AGENT}, 422, "request.validation", "on_behalf.proof"),
        ({**agent, "proof": "   "}, 400, "request.on_behalf", "on_behalf"),
        ({**agent, "proof": "x" * 300}, 400, "request.on_behalf", "on_behalf"),
        ({**agent, "proof": "x" * 501}, 422, "request.validation", "on_behalf.proof"),
        (
            {**agent, "document_sha256": "A" * 64},
            422,
            "request.validation",
            "on_behalf.document_sha256",
        ),
        (
            {**agent, "document_sha256": "ab12"},
            422,
            "request.validation",
            "on_behalf.document_sha256",
        ),
        ({**agent, "note": "x"}, 422, "request.validation", "on_behalf.note"),
    ]
    for on_behalf, status, code, field in cases:
        answer = api.client.post(
            "/api/v1/requests",
            json={"kind": "access", "identity": f"email:{email}", "on_behalf": on_behalf},
        )
        assert answer.status_code == status, (on_behalf, answer.text)
        assert answer.json()["code"] == code and answer.json()["field"] == field, answer.text
        assert "privacy-firm" not in answer.text and email not in answer.text
    assert api.sql("SELECT count(*) AS n FROM requests")[0].n == 0
    assert api.sender.sent == []
    assert "privacy-firm" not in caplog.text and email not in caplog.text


def test_a_policy_without_agents_refuses_them_over_the_api(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This policy, but for requests.authorised_agents: the engine's own is left as it is.
    policy = api.engine.requests.policy
    without = policy.model_copy(
        update={"requests": policy.requests.model_copy(update={"authorised_agents": False})}
    )
    monkeypatch.setattr(api.engine.requests, "policy", without)
    email = customers(api)[0]
    agent = {"role": "agent", "actor": AGENT, "proof": "signed permission"}
    refused = api.client.post(
        "/api/v1/requests",
        json={"kind": "access", "identity": f"email:{email}", "on_behalf": agent},
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "request.on_behalf"
    assert refused.json()["field"] == "on_behalf"
    assert "requests.authorised_agents is false" in refused.json()["message"]
    assert api.sql("SELECT count(*) AS n FROM requests")[0].n == 0
    # A parent may still ask for a child.
    parent = {**agent, "role": "parent", "proof": "birth certificate"}
    ref = submit_verified(api, "access", email, on_behalf=parent)
    [row] = api.sql("SELECT on_behalf FROM requests WHERE ref = :ref", ref=ref)
    assert _data(row.on_behalf)["role"] == "parent"


def _when(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- disclosures, incidents, audit, keys, operations ----------------------------------------


def test_disclosure_is_logged(api: Api) -> None:
    email = customers(api)[0]
    answer = api.client.post(
        "/api/v1/disclosures",
        json={
            "subject": f"email:{email}",
            "recipient": "carrier",
            "categories": ["user.name", "user.contact.address"],
            "purpose": "orders",
        },
        headers=api.headers("service"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["allowed"] is True
    [row] = api.sql(
        "SELECT recipient, purpose, country FROM disclosures WHERE ref = :r", r=body["ref"]
    )
    assert (row.recipient, row.purpose, row.country) == ("carrier", "orders", "DE")
    refused = api.client.post(
        "/api/v1/disclosures",
        json={
            "subject": f"email:{email}",
            "recipient": "carrier",
            "categories": ["user.name"],
            "purpose": "newsletter",
        },
        headers=api.headers("service"),
    ).json()
    assert refused["allowed"] is False and refused["ref"] is None


def test_incidents_open_list_show(api: Api) -> None:
    operator = api.headers("operator")
    opened = api.client.post(
        "/api/v1/incidents",
        json={
            "discovered_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            "summary": "A payments export was readable from a public bucket",
            "tables": ["shop.payments"],
            "high_risk": True,
        },
        headers=operator,
    )
    assert opened.status_code == 201, opened.text
    body = opened.json()
    [row] = api.sql("SELECT state, subjects_count FROM incidents WHERE ref = :r", r=body["ref"])
    assert row.state == "open" and row.subjects_count == body["subjects_count"] > 0
    listed = api.client.get(
        "/api/v1/incidents", params={"open": "true"}, headers=api.headers("read")
    )
    assert [i["ref"] for i in listed.json()] == [body["ref"]]
    shown = api.client.get(f"/api/v1/incidents/{body['number']}", headers=operator)
    assert shown.json()["ref"] == body["ref"]
    assert api.client.get(f"/api/v1/incidents/{body['ref']}", headers=operator).status_code == 200
    missing = api.client.get("/api/v1/incidents/99", headers=operator)
    assert missing.status_code == 404 and missing.json()["code"] == "incident.not_found"
    bad = api.client.post(
        "/api/v1/incidents",
        json={"discovered_at": "2026-01-02T10:00:00Z", "summary": "x", "tables": ["shop.nope"]},
        headers=operator,
    )
    assert bad.status_code == 400 and bad.json()["code"] == "incident.invalid"
    assert api.sql("SELECT count(*) AS n FROM incidents")[0].n == 1


def test_audit_verify_and_events_of_one_subject(api: Api) -> None:
    email = customers(api)[0]
    api.client.post(
        "/api/v1/consents",
        json={"subject": f"email:{email}", "purpose": "newsletter", "action": "give"},
        headers=api.headers("service"),
    )
    api.client.post("/api/v1/requests", json={"kind": "access", "identity": f"email:{email}"})
    verified = api.client.get("/api/v1/audit/verify", headers=api.headers("read")).json()
    total = api.sql("SELECT count(*) AS n FROM audit_events")[0].n
    assert verified["ok"] is True and verified["checked"] == total

    events = api.client.get(
        "/api/v1/audit/events",
        params={"subject": f"email:{email}"},
        headers=api.headers("operator"),
    ).json()
    kinds = [e["kind"] for e in events]
    assert "consent.given" in kinds and "request.received" in kinds
    assert all(email not in json.dumps(e) for e in events)
    page = api.client.get(
        "/api/v1/audit/events", params={"after": 2, "limit": 3}, headers=api.headers("operator")
    ).json()
    assert [e["seq"] for e in page] == [3, 4, 5]


def test_numbers_beyond_a_store_column_are_refused_not_a_server_error(api: Api) -> None:
    # Schemathesis found these: PostgreSQL cannot bind an integer past 64 bits.
    operator = api.headers("operator")
    huge = "1532032000888407851008"
    events = api.client.get("/api/v1/audit/events", params={"after": huge}, headers=operator)
    assert events.status_code == 422 and events.json()["field"] == "after"
    for name in (huge, "\u00b2", "0"):
        missing = api.client.get(f"/api/v1/incidents/{name}", headers=operator)
        assert missing.status_code == 404, (name, missing.text)
        assert missing.json()["code"] == "incident.not_found"
    opened = api.client.post(
        "/api/v1/incidents",
        json={"discovered_at": "2026-01-02T10:00:00Z", "summary": "x", "people_estimate": 2**64},
        headers=operator,
    )
    assert opened.status_code == 422 and opened.json()["field"] == "people_estimate"
    assert api.sql("SELECT count(*) AS n FROM incidents")[0].n == 0


def test_keys_listed_without_tokens(api: Api) -> None:
    listed = api.client.get("/api/v1/keys", headers=api.headers("admin"))
    assert listed.status_code == 200
    assert sorted(k["scope"] for k in listed.json()) == ["admin", "operator", "read", "service"]
    assert all(t not in listed.text for t in api.tokens.values())


def test_health_readiness_gpc(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["revision"] == api.engine.store.head_revision()
    gpc = api.client.get("/.well-known/gpc.json").json()
    assert gpc == {"gpc": True, "lastUpdate": "2026-01-01"}
    # A store behind this lawful's migrations is not ready.
    with api.engine.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0009'")
    try:
        behind = api.client.get("/readyz")
        assert behind.status_code == 503 and behind.json()["code"] == "store.migrations"
    finally:
        with api.engine.store.engine.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE alembic_version SET version_num = '{api.engine.store.head_revision()}'"
            )


def test_metrics(api: Api) -> None:
    email = customers(api)[0]
    api.client.post(
        "/api/v1/decisions",
        json={"subject": f"email:{email}", "purpose": "newsletter"},
        headers=api.headers("service"),
    )
    api.client.post(
        "/api/v1/decisions/batch",
        json={"subjects": [f"email:{email}"], "purpose": "newsletter"},
        headers=api.headers("service"),
    )
    api.client.post("/api/v1/requests", json={"kind": "access", "identity": f"email:{email}"})
    ref = api.client.post(
        "/api/v1/requests", json={"kind": "erasure", "identity": "email:someone@example.com"}
    ).json()["ref"]
    # One request past its due date (plain SQL through the table, on either backend).
    with api.engine.store.engine.begin() as conn:
        conn.execute(
            sa.update(requests)
            .where(requests.c.ref == ref)
            .values(due_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    answer = api.client.get("/metrics", headers=api.headers("read"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    assert 'lawful_requests{state="awaiting_verification"} 2' in text
    assert 'lawful_requests{state="completed"} 0' in text
    assert "lawful_requests_overdue 1" in text
    # The same request with its clock stopped (awaiting a fee, a UK clarification) is not late.
    with api.engine.store.engine.begin() as conn:
        conn.execute(
            sa.update(requests)
            .where(requests.c.ref == ref)
            .values(paused_at=datetime(2019, 12, 1, tzinfo=UTC))
        )
    paused = api.client.get("/metrics", headers=api.headers("read")).text
    assert "lawful_requests_overdue 0" in paused
    assert "lawful_incidents_open 0" in text
    assert 'lawful_decision_duration_seconds_count{endpoint="single"} 1' in text
    assert 'lawful_decision_duration_seconds_count{endpoint="batch"} 1' in text
    assert 'lawful_decision_duration_seconds_bucket{endpoint="single",le="+Inf"} 1' in text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+-]+", line), line
