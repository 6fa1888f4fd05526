"""The privacy center through HTTP: every page and form, CSRF refusal, the identity-blind
intake, one-click unsubscribe (RFC 8058), preferences by signed link, the rate limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lawful.api import Limit
from tests.api.conftest import Api, code_for, make_api

from .helpers import CSRF, csrf, customer_email, post, unsubscribe_token

REQUEST_PATH = re.compile(r"^/privacy/requests/([0-9a-f]{32})/verify$")


def _submit(api: Api, email: str, kind: str = "erasure", **extra: str) -> str:
    answer = post(api, "/privacy/requests/new", {"kind": kind, "email": email, **extra})
    assert answer.status_code == 303, answer.text
    found = REQUEST_PATH.match(answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def test_home_names_the_controller_and_offers_every_kind(sqlite_api: Api) -> None:
    page = sqlite_api.client.get("/privacy/")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html
    assert "Sample Shop GmbH" in html and "privacy@shop.example" in html
    for kind in sqlite_api.engine.policy.requests.kinds:
        assert f"/privacy/requests/new?kind={kind}" in html
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("lawful_csrf=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert sqlite_api.client.get("/privacy", follow_redirects=False).headers["location"] == (
        "/privacy/"
    )
    css = sqlite_api.client.get("/privacy/static/style.css")
    assert css.status_code == 200 and ":focus-visible" in css.text


def test_form_has_a_label_for_every_field(sqlite_api: Api) -> None:
    html = sqlite_api.client.get("/privacy/requests/new").text
    ids = re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html)
    assert "email" in ids and "kind-erasure" in ids
    for field_id in ids:
        assert f'for="{field_id}"' in html, f"no label for {field_id}"


def test_notice_page(sqlite_api: Api) -> None:
    page = sqlite_api.client.get("/privacy/notice")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Sample Shop GmbH" in page.text
    assert sqlite_api.engine.notices.notice("html") == page.text
    missing = sqlite_api.client.get("/privacy/notice", params={"jurisdiction": "zz"})
    assert missing.status_code == 404 and "This notice has versions for" in missing.text


def test_submit_verify_and_follow_a_request(api: Api) -> None:
    email = customer_email(api)
    ref = _submit(api, email)
    [row] = api.sql("SELECT kind, state, channel FROM requests WHERE ref = :r", r=ref)
    assert (row.kind, row.state, row.channel) == (
        "erasure",
        "awaiting_verification",
        "privacy_center",
    )
    verify = f"/privacy/requests/{ref}/verify"
    page = api.client.get(verify)
    assert page.status_code == 200 and "Check your email" in page.text

    wrong = post(api, verify, {"code": "000000"})
    assert wrong.status_code == 400 and "not right" in wrong.text
    assert api.sql("SELECT state FROM requests WHERE ref = :r", r=ref)[0].state == (
        "awaiting_verification"
    )
    right = post(api, verify, {"code": code_for(api.sender, email)})
    assert right.status_code == 303 and right.headers["location"] == f"/privacy/requests/{ref}"
    # The shop's erasure needs the privacy team's approval (tests/api/conftest.py).
    assert api.sql("SELECT state FROM requests WHERE ref = :r", r=ref)[0].state == (
        "awaiting_approval"
    )
    status = api.client.get(f"/privacy/requests/{ref}")
    assert status.status_code == 200
    view = api.engine.requests.show(ref)
    assert view.status in status.text
    assert f"{view.due_at.day} {view.due_at:%B %Y}" in status.text
    assert email not in status.text  # the status names no one
    # Once verified, the code page leads to the status.
    assert api.client.get(verify, follow_redirects=False).status_code == 303


def test_a_request_awaiting_its_fee_shows_the_amount_and_a_moving_deadline(
    sqlite_api: Api,
) -> None:
    email = customer_email(sqlite_api, 1)
    ref = _submit(sqlite_api, email)
    post(
        sqlite_api, f"/privacy/requests/{ref}/verify", {"code": code_for(sqlite_api.sender, email)}
    )
    sqlite_api.engine.requests.charge_fee(ref, amount="EUR 25")
    page = sqlite_api.client.get(f"/privacy/requests/{ref}").text
    assert 'id="fee">EUR 25<' in page
    assert "moved later by the days the deadline stands still" in page
    sqlite_api.engine.requests.fee_paid(ref, by="Ana")
    page = sqlite_api.client.get(f"/privacy/requests/{ref}").text
    assert 'id="fee">EUR 25, paid<' in page and "stands still" not in page
    assert "Ana" not in page  # who of the team saw it paid is not the person's to read


def test_known_and_unknown_identities_read_alike(sqlite_api: Api) -> None:
    """Nothing on the pages tells whether lawful knows an address."""
    known = _submit(sqlite_api, customer_email(sqlite_api, 1), kind="access")
    unknown = _submit(sqlite_api, "nobody-here@example.org", kind="access")
    pages = [sqlite_api.client.get(f"/privacy/requests/{r}/verify").text for r in (known, unknown)]
    assert pages[0].replace(known, "REF") == pages[1].replace(unknown, "REF")
    status = [sqlite_api.client.get(f"/privacy/requests/{r}").text for r in (known, unknown)]
    assert status[0].replace(known, "REF") == status[1].replace(unknown, "REF")


def test_form_errors_say_what_to_fix(sqlite_api: Api) -> None:
    before = len(sqlite_api.sql("SELECT id FROM requests"))
    bad = post(sqlite_api, "/privacy/requests/new", {"kind": "erasure", "email": "not-an-email"})
    assert bad.status_code == 400 and "Enter your email address" in bad.text
    assert 'value="not-an-email"' in bad.text  # kept for the person to correct
    nothing = post(sqlite_api, "/privacy/requests/new", {"email": "a@example.com"})
    assert nothing.status_code == 400 and "Choose what you want us to do" in nothing.text
    foreign = post(
        sqlite_api, "/privacy/requests/new", {"kind": "teleport", "email": "a@example.com"}
    )
    assert foreign.status_code == 400
    assert len(sqlite_api.sql("SELECT id FROM requests")) == before


def test_forms_refuse_a_missing_or_foreign_csrf_token(sqlite_api: Api) -> None:
    client = sqlite_api.client
    before = len(sqlite_api.sql("SELECT id FROM requests"))
    form = {"kind": "access", "email": "a@example.com"}
    token = csrf(sqlite_api, "/privacy/requests/new")
    assert client.post("/privacy/requests/new", data=form).status_code == 403  # no field
    forged = client.post("/privacy/requests/new", data={**form, "csrf": token[:-2] + "xx"})
    assert forged.status_code == 403 and "This form has expired" in forged.text
    # The right field with another browser's cookie: refused too.
    client.cookies.set("lawful_csrf", "A" * 43)
    assert client.post("/privacy/requests/new", data={**form, "csrf": token}).status_code == 403
    client.cookies.clear()
    assert len(sqlite_api.sql("SELECT id FROM requests")) == before
    # Not a browser form at all.
    assert client.post("/privacy/requests/new", json=form).status_code == 415


def test_unknown_request_and_page(sqlite_api: Api) -> None:
    missing = sqlite_api.client.get(f"/privacy/requests/{'0' * 32}")
    assert missing.status_code == 404 and "Request not found" in missing.text
    assert "<html" in sqlite_api.client.get("/privacy/nowhere").text  # HTML, not JSON
    assert sqlite_api.client.get("/privacy/nowhere").status_code == 404


def _withdrawn(api: Api, topic: str, key: str) -> list[str]:
    return [
        r.state
        for r in api.sql(
            "SELECT state FROM consent_state WHERE topic = :t AND key = :k", t=topic, k=key
        )
    ]


def test_unsubscribe_asks_on_get_and_acts_on_post(api: Api) -> None:
    token = unsubscribe_token(api, f"email:{customer_email(api)}", list_name="weekly")
    confirm = api.client.get(f"/privacy/unsubscribe/{token}")
    assert confirm.status_code == 200 and "weekly" in confirm.text
    assert _withdrawn(api, "list", "weekly") == []  # a GET changes nothing
    done = post(api, f"/privacy/unsubscribe/{token}", {})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert _withdrawn(api, "list", "weekly") == ["withdrawn"]
    kinds = [r.kind for r in api.sql("SELECT kind FROM audit_events ORDER BY seq")]
    assert kinds[-1] == "preference.withdrawn"  # the audit log has it


def test_one_click_post_needs_no_cookie(api: Api) -> None:
    """RFC 8058: the mailbox provider's POST carries no cookie and no CSRF field."""
    token = unsubscribe_token(api, f"email:{customer_email(api)}", channel="email")
    api.client.cookies.clear()
    done = api.client.post(
        f"/privacy/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    assert _withdrawn(api, "channel", "email") == ["withdrawn"]


def test_altered_links_are_refused(sqlite_api: Api) -> None:
    token = unsubscribe_token(sqlite_api, "email:someone@example.com", list_name="offers")
    body, signature = token.split(".")
    altered = f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for path in (f"/privacy/unsubscribe/{altered}", f"/privacy/preferences/{altered}"):
        page = sqlite_api.client.get(path)
        assert page.status_code == 400 and "This link is not valid" in page.text
    one_click = sqlite_api.client.post(
        f"/privacy/unsubscribe/{altered}", data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 400
    assert _withdrawn(sqlite_api, "list", "offers") == []


def test_preferences_per_channel_and_list(api: Api) -> None:
    token = unsubscribe_token(api, f"email:{customer_email(api, 2)}", list_name="offers")
    path = f"/privacy/preferences/{token}"
    page = api.client.get(path)
    assert page.status_code == 200
    for field in ('id="channel-email"', 'id="list-weekly"', 'id="list-offers"'):
        assert field in page.text
    saved = post(api, path, {"channel": "email", "list": "weekly"})
    assert saved.status_code == 200 and "Your choices are saved" in saved.text
    rows = api.sql("SELECT topic, key, state, method FROM consent_state ORDER BY topic, key")
    assert {(r.topic, r.key, r.state, r.method) for r in rows} == {
        ("channel", "email", "given", "form"),
        ("list", "weekly", "given", "form"),
    }
    assert re.search(r'id="list-weekly" value="weekly" checked', saved.text)
    # Unticking records the withdrawal; saving again unchanged records nothing more.
    post(api, path, {"channel": "email"})
    assert _withdrawn(api, "list", "weekly") == ["withdrawn"]
    before = len(api.sql("SELECT id FROM consent_records"))
    post(api, path, {"channel": "email"})
    assert len(api.sql("SELECT id FROM consent_records")) == before


@pytest.fixture
def tight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    yield from make_api(
        f"sqlite:///{tmp_path / 'lawful.db'}",
        shop,
        limits={"write": Limit(2, 1), "read": Limit(1000, 1000)},
    )


def test_pages_share_the_api_rate_limit(tight: Api) -> None:
    token = CSRF.search(tight.client.get("/privacy/requests/new").text).group(1)  # type: ignore[union-attr]
    form = {"csrf": token, "kind": "access", "email": "a@example.com"}
    # One write bucket for the API and the pages: the API call takes the first token.
    assert (
        tight.client.post(
            "/api/v1/requests", json={"kind": "access", "identity": "email:a@example.com"}
        ).status_code
        == 202
    )
    assert (
        tight.client.post("/privacy/requests/new", data=form, follow_redirects=False).status_code
        == 303
    )
    limited = tight.client.post("/privacy/requests/new", data=form)
    assert limited.status_code == 429 and "Too many" in limited.text
    assert int(limited.headers["retry-after"]) >= 1


def test_download_link_serves_the_package(sqlite_api: Api) -> None:
    email = customer_email(sqlite_api, 3)
    ref = _submit(sqlite_api, email, kind="access")
    post(
        sqlite_api, f"/privacy/requests/{ref}/verify", {"code": code_for(sqlite_api.sender, email)}
    )
    sqlite_api.engine.requests.run_pending()
    status = sqlite_api.client.get(f"/privacy/requests/{ref}")
    assert 'data-state="completed"' in status.text and "Your data is ready" in status.text
    body = sqlite_api.sender.last(to=email).body
    link = re.search(r"https?://\S+/requests/download\?token=\S+", body)
    assert link, body
    token = link.group(0).split("token=", 1)[1]
    page = sqlite_api.client.get("/privacy/download", params={"token": token})
    assert page.status_code == 200 and "Download my data" in page.text
    package = sqlite_api.client.get("/requests/download", params={"token": token})
    assert package.status_code == 200 and package.content[:2] == b"PK"


def test_kind_parameters_reach_the_request(sqlite_api: Api) -> None:
    """An objection to direct marketing, ticked on the form, is the request's parameter."""
    email = customer_email(sqlite_api, 4)
    ref = _submit(sqlite_api, email, kind="objection", marketing="yes")
    assert sqlite_api.engine.requests.params(
        sqlite_api.sql("SELECT * FROM requests WHERE ref = :r", r=ref)[0]
    ) == {"marketing": True}


# --- rectification: the fields a person may correct --------------------------------------

CUSTOMER_FIELDS = {
    "shop.customers.email": "email",
    "shop.customers.phone": "tel",
    "shop.customers.first_name": "text",
    "shop.customers.last_name": "text",
    "shop.customers.birth_date": "date",
}
SAMPLES = {"email": "right@example.com", "tel": "+49 30 1234567", "date": "1990-12-31"}
FIELD = re.compile(r'<input type="([a-z]+)" name="change:([^"]+)" id="([^"]+)"')


def _customer(api: Api, n: int) -> tuple[int, str, tuple[Any, ...]]:
    """A customer's id, email, and (first name, last name, phone, birth date)."""
    row = api.shop(
        "SELECT id, email, first_name, last_name, phone, birth_date FROM customers ORDER BY id"
    )[n]
    return row[0], row[1], tuple(row[2:])


def _details(api: Api, customer: int) -> tuple[Any, ...]:
    rows = api.shop(
        "SELECT first_name, last_name, phone, birth_date FROM customers WHERE id = :c",
        c=customer,
    )
    return tuple(rows[0])


def test_the_rectification_form_offers_what_may_be_corrected(sqlite_api: Api) -> None:
    """Labelled inputs for the personal columns of the tables that identify the person,
    each of a type that fits; never a key, a link or a system column; every one a field
    the request accepts."""
    html = sqlite_api.client.get("/privacy/requests/new", params={"kind": "rectification"}).text
    assert 'id="kind-rectification" value="rectification" checked' in html
    assert "<legend>What should we correct?</legend>" in html
    assert "<legend>Customer accounts</legend>" in html
    offered = {target: kind for kind, target, _ in FIELD.findall(html)}
    assert {t: k for t, k in offered.items() if ".customers." in t} == CUSTOMER_FIELDS
    for target in offered:
        table = target.split(".")[1]
        assert table in ("customers", "agents", "newsletter_subscriptions"), target
    for column in ("id", "address_id", "created_at", "last_login_at"):
        assert f"shop.customers.{column}" not in offered
    for _, _, field_id in FIELD.findall(html):
        assert f'<label for="{field_id}">' in html
    # Every field offered is one a rectification request takes, with a value of its type.
    datasets = sqlite_api.engine.datasets
    assert datasets is not None
    values = {target: SAMPLES.get(kind, "Corrected") for target, kind in offered.items()}
    assert datasets.change_problems(values) == {}


def test_a_rectification_from_the_form_corrects_the_shop(api: Api) -> None:
    customer, email, (first, last, _, born) = _customer(api, 5)
    assert last != "Corrected-Name"
    answer = post(
        api,
        "/privacy/requests/new",
        {
            "kind": "rectification",
            "email": email,
            "change:shop.customers.last_name": "  Corrected-Name ",
            "change:shop.customers.phone": "+49 30 1234567",
            "change:shop.customers.first_name": "",  # left empty: left alone
        },
    )
    assert answer.status_code == 303, answer.text
    ref = REQUEST_PATH.match(answer.headers["location"]).group(1)  # type: ignore[union-attr]
    [row] = api.sql("SELECT * FROM requests WHERE ref = :r", r=ref)
    assert row.kind == "rectification" and row.channel == "privacy_center"
    assert api.engine.requests.params(row) == {
        "changes": {
            "shop.customers.last_name": "Corrected-Name",
            "shop.customers.phone": "+49 30 1234567",
        }
    }
    post(api, f"/privacy/requests/{ref}/verify", {"code": code_for(api.sender, email)})
    api.engine.requests.run_pending()
    status = api.client.get(f"/privacy/requests/{ref}")
    assert 'data-state="completed"' in status.text
    # What was filled in changed (the phone as lawful normalises it); nothing else did.
    assert _details(api, customer) == (first, "Corrected-Name", "+49301234567", born)


def test_rectification_errors_name_the_field_and_nothing_is_taken(sqlite_api: Api) -> None:
    customer, email, details = _customer(sqlite_api, 6)
    before = len(sqlite_api.sql("SELECT id FROM requests"))
    bad = post(
        sqlite_api,
        "/privacy/requests/new",
        {
            "kind": "rectification",
            "email": email,
            "change:shop.customers.last_name": "Would-Be-Name",
            "change:shop.customers.birth_date": "31/02/1990",
            "change:shop.customers.phone": "12345",
        },
    )
    assert bad.status_code == 400
    start = bad.text.index('role="alert"')
    alert = bad.text[start : bad.text.index("</div>", start)]
    assert "Birth date (Customer accounts): The value is not a valid date for this field." in alert
    assert "Phone (Customer accounts): The phone number has no country code" in alert
    assert "Last name" not in alert  # nothing wrong with it
    # Each bad field says so next to it, and keeps what was typed, as does the good one.
    assert (
        'aria-describedby="change-shop-customers-birth_date-hint change-shop-customers-birth_date-error" aria-invalid="true"'
        in bad.text
    )
    assert '<p class="error" id="change-shop-customers-phone-error">' in bad.text
    assert 'value="31/02/1990"' in bad.text and 'value="Would-Be-Name"' in bad.text
    assert 'id="kind-rectification" value="rectification" checked' in bad.text
    # Nothing half-applied: no request, the shop as it was.
    assert len(sqlite_api.sql("SELECT id FROM requests")) == before
    assert _details(sqlite_api, customer) == details

    empty = post(sqlite_api, "/privacy/requests/new", {"kind": "rectification", "email": email})
    assert empty.status_code == 400 and "Say what to correct" in empty.text
    both = post(
        sqlite_api,
        "/privacy/requests/new",
        {"kind": "rectification", "email": "nope", "change:shop.customers.birth_date": "soon"},
    )
    assert both.status_code == 400
    assert "Enter your email address" in both.text and "Birth date (Customer accounts)" in both.text
    assert len(sqlite_api.sql("SELECT id FROM requests")) == before


def test_correction_fields_are_only_for_a_rectification(sqlite_api: Api) -> None:
    email = customer_email(sqlite_api, 7)
    ref = _submit(
        sqlite_api, email, kind="access", **{"change:shop.customers.last_name": "Ignored"}
    )
    [row] = sqlite_api.sql("SELECT * FROM requests WHERE ref = :r", r=ref)
    assert sqlite_api.engine.requests.params(row) == {}
