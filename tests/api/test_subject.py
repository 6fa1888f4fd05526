"""The endpoints a person calls without a key: the same answers whether lawful knows them
or not, and a limit per client address."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from lawful.api import Limit
from tests.api.conftest import Api, make_api

IGNORED = {"ref"}  # a fresh random id each time: the only field allowed to differ


def _shape(body: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in body.items() if k not in IGNORED}


def test_submit_answers_the_same_for_known_and_unknown(api: Api) -> None:
    known = api.shop("SELECT email FROM customers ORDER BY id")[0].email
    unknown = "not.a.customer@example.com"
    answers = {}
    for email in (known, unknown):
        answer = api.client.post(
            "/api/v1/requests",
            json={"kind": "erasure", "identity": f"email:{email}", "jurisdiction": "eu"},
        )
        assert answer.status_code == 202
        answers[email] = answer
        # A code went to the address given, known or not.
        assert api.sender.last(to=email, template="code")
    a, b = answers[known], answers[unknown]
    assert _shape(a.json()) == _shape(b.json())
    assert set(a.headers) == set(b.headers)

    # The status and a wrong code read the same too.
    refs = {e: r.json()["ref"] for e, r in answers.items()}
    statuses = [api.client.get(f"/api/v1/requests/{refs[e]}").json() for e in (known, unknown)]
    assert _shape(statuses[0]) == {
        **_shape(statuses[1]),
        "received_at": statuses[0]["received_at"],
    }
    wrong = [
        api.client.post(f"/api/v1/requests/{refs[e]}/verify", json={"code": "000000"})
        for e in (known, unknown)
    ]
    if any(w.status_code == 200 for w in wrong):  # one in a million: the code was 000000
        pytest.skip("a generated code happened to be 000000")
    assert [w.status_code for w in wrong] == [400, 400]
    assert wrong[0].json() == wrong[1].json()
    assert wrong[0].json()["code"] == "verification.failed" and wrong[0].json()["field"] == "code"


def test_submit_takes_the_intake_floor_either_way(api: Api) -> None:
    api.engine.requests.intake_floor = 0.2
    known = api.shop("SELECT email FROM customers ORDER BY id")[0].email
    for email in (known, "not.a.customer@example.com"):
        started = time.monotonic()
        api.client.post("/api/v1/requests", json={"kind": "access", "identity": f"email:{email}"})
        assert time.monotonic() - started >= 0.2


def test_subject_answers_hold_no_personal_data(api: Api) -> None:
    email = api.shop("SELECT email FROM customers ORDER BY id")[0].email
    answer = api.client.post(
        "/api/v1/requests", json={"kind": "access", "identity": f"email:{email}"}
    )
    status = api.client.get(f"/api/v1/requests/{answer.json()['ref']}")
    for text in (answer.text, status.text):
        assert email not in text and email.split("@")[0] not in text
    assert set(status.json()) == {
        "ref",
        "kind",
        "state",
        "status",
        "received_at",
        "due_at",
        "extended",
        "extension_reason",
        "closed_at",
        "refusal",
        "fee",
        "paused",
    }


@pytest.fixture
def limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    yield from make_api(
        f"sqlite:///{tmp_path / 'lawful.db'}",
        shop,
        limits={"write": Limit(burst=3, per_minute=1), "read": Limit(burst=5, per_minute=1)},
    )


def test_rate_limit_per_client_address(limited: Api) -> None:
    body = {"kind": "access", "identity": "email:someone@example.com"}
    answers = [limited.client.post("/api/v1/requests", json=body) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    ref = answers[0].json()["ref"]
    # Verifying draws on the same bucket; reading the status on another.
    assert (
        limited.client.post(f"/api/v1/requests/{ref}/verify", json={"code": "1"}).status_code == 429
    )
    statuses = [limited.client.get(f"/api/v1/requests/{ref}").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    # Only three requests were stored: the refused ones never reached the engine.
    assert limited.sql("SELECT count(*) AS n FROM requests")[0].n == 3

    # Another address has its own buckets.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx`")
        from fastapi.testclient import TestClient
    app = limited.client.app
    with TestClient(app, client=("203.0.113.7", 4000)) as other:
        assert other.post("/api/v1/requests", json=body).status_code == 202
    # Keyed endpoints are not limited by these buckets.
    headers = limited.headers("service")
    for _ in range(5):
        decision = limited.client.post(
            "/api/v1/decisions",
            json={"subject": "email:someone@example.com", "purpose": "newsletter"},
            headers=headers,
        )
        assert decision.status_code == 200
