"""The admin console through HTTP: login, sessions, the queue, one request's timeline,
approve/deny/extend, consent statistics, incidents, the audit chain; CSRF and scopes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from lawful.api.pages import security
from tests.api.conftest import Api, code_for

from .helpers import csrf, customer_email, login, post

PAGES = ["/admin/", "/admin/consent", "/admin/incidents", "/admin/audit"]


def _request(api: Api, n: int = 0, kind: str = "erasure") -> str:
    """A verified request of a shop customer, submitted through the privacy center."""
    email = customer_email(api, n)
    answer = post(api, "/privacy/requests/new", {"kind": kind, "email": email})
    ref = answer.headers["location"].split("/")[3]
    verified = post(api, f"/privacy/requests/{ref}/verify", {"code": code_for(api.sender, email)})
    assert verified.status_code == 303
    return ref


def _state(api: Api, ref: str) -> str:
    return str(api.sql("SELECT state FROM requests WHERE ref = :r", r=ref)[0].state)


def test_every_page_needs_a_login(sqlite_api: Api) -> None:
    sqlite_api.client.cookies.clear()
    for path in [*PAGES, f"/admin/requests/{'0' * 32}"]:
        page = sqlite_api.client.get(path, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/admin/login", path
    for action in ("approve", "deny", "extend"):
        token = csrf(sqlite_api, "/admin/login")
        page = sqlite_api.client.post(
            f"/admin/requests/{'0' * 32}/{action}", data={"csrf": token}, follow_redirects=False
        )
        assert page.status_code == 303 and page.headers["location"] == "/admin/login"
    assert sqlite_api.client.get("/admin", follow_redirects=False).status_code == 308


@pytest.mark.parametrize(
    ("scope", "status", "says"),
    [("read", 403, "scope is read"), ("service", 403, "scope is service")],
)
def test_wrong_scope_keys_are_refused(sqlite_api: Api, scope: str, status: int, says: str) -> None:
    sqlite_api.client.cookies.clear()
    answer = login(sqlite_api, scope)
    assert answer.status_code == status and says in answer.text
    assert security.SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert sqlite_api.client.get("/admin/", follow_redirects=False).status_code == 303


def test_unknown_key_and_missing_csrf_are_refused(sqlite_api: Api) -> None:
    sqlite_api.client.cookies.clear()
    bad = post(sqlite_api, "/admin/login", {"key": "lawful_" + "x" * 43})
    assert bad.status_code == 401 and "not valid" in bad.text
    no_csrf = sqlite_api.client.post("/admin/login", data={"key": sqlite_api.tokens["operator"]})
    assert no_csrf.status_code == 403
    assert security.SESSION_COOKIE not in no_csrf.headers.get("set-cookie", "")


def test_login_sets_a_strict_session_and_logout_ends_it(sqlite_api: Api) -> None:
    sqlite_api.client.cookies.clear()
    answer = login(sqlite_api, "operator")
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{security.SESSION_COOKIE}=")
    for attribute in (
        "HttpOnly",
        "SameSite=strict",
        "Path=/admin",
        f"Max-Age={security.SESSION_TTL}",
    ):
        assert attribute in cookie
    assert sqlite_api.tokens["operator"] not in cookie  # the key itself never leaves the server
    [event] = sqlite_api.sql(
        "SELECT data FROM audit_events WHERE kind = 'admin.login' ORDER BY seq DESC LIMIT 1"
    )
    assert event is not None
    for path in PAGES:
        page = sqlite_api.client.get(path)
        assert page.status_code == 200 and "operator test key" in page.text, path
    token = csrf(sqlite_api, "/admin/")
    out = sqlite_api.client.post("/admin/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    kinds = [r.kind for r in sqlite_api.sql("SELECT kind FROM audit_events ORDER BY seq")]
    assert kinds[-1] == "admin.logout"
    assert sqlite_api.client.get("/admin/", follow_redirects=False).status_code == 303


def test_altered_expired_and_revoked_sessions_are_refused(sqlite_api: Api) -> None:
    site = sqlite_api.client.app.state.pages  # type: ignore[attr-defined]
    keys = sqlite_api.client.app.state.keys  # type: ignore[attr-defined]
    operator = next(k for k in keys.list() if k.scope.value == "operator")
    client = sqlite_api.client
    client.cookies.clear()
    good = security.session_value(site.signer, operator.ref)
    client.cookies.set(security.SESSION_COOKIE, good, path="/admin")
    assert client.get("/admin/", follow_redirects=False).status_code == 200
    expired = security.session_value(site.signer, operator.ref, now=0)
    client.cookies.set(security.SESSION_COOKIE, expired, path="/admin")
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    ref, expiry, signature = good.split(".")
    client.cookies.set(
        security.SESSION_COOKIE, f"{ref}.{int(expiry) + 999999}.{signature}", path="/admin"
    )
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    # A revoked key's sessions end at once.
    admin, _ = keys.create("operator", name="soon revoked")
    client.cookies.set(
        security.SESSION_COOKIE, security.session_value(site.signer, admin.ref), path="/admin"
    )
    assert client.get("/admin/", follow_redirects=False).status_code == 200
    keys.revoke(admin.ref)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    client.cookies.clear()


def test_queue_puts_overdue_first(api: Api) -> None:
    first, second, third = (_request(api, n, kind="access") for n in range(3))
    now = datetime.now(UTC)
    for ref, due in (
        (first, now + timedelta(days=3)),
        (second, now - timedelta(days=1)),
        (third, now + timedelta(days=1)),
    ):
        with api.engine.store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE requests SET due_at = :d WHERE ref = :r"), {"d": due, "r": ref}
            )
    login(api)
    html = api.client.get("/admin/").text
    order = re.findall(r"/admin/requests/([0-9a-f]{32})", html)
    assert order == [second, third, first]
    assert html.count("overdue</strong>") == 1


def test_approve_from_the_console(api: Api) -> None:
    ref = _request(api)
    assert _state(api, ref) == "awaiting_approval"
    login(api)
    page = api.client.get(f"/admin/requests/{ref}")
    assert page.status_code == 200 and "Approve" in page.text
    assert "request.received" in page.text and "request.awaiting_approval" in page.text
    # Without the CSRF field nothing happens.
    refused = api.client.post(f"/admin/requests/{ref}/approve", data={"by": "x"})
    assert refused.status_code == 403 and _state(api, ref) == "awaiting_approval"
    done = post(
        api, f"/admin/requests/{ref}/approve", {}, token=csrf(api, f"/admin/requests/{ref}")
    )
    assert done.status_code == 303
    assert _state(api, ref) == "in_progress"  # approved: its steps are queued
    again = post(
        api, f"/admin/requests/{ref}/approve", {}, token=csrf(api, f"/admin/requests/{ref}")
    )
    assert again.status_code == 409 and "not awaiting approval" in again.text
    timeline = api.client.get(f"/admin/requests/{ref}").text
    assert "request.in_progress" in timeline
    [row] = api.sql("SELECT data FROM audit_events WHERE kind = 'request.in_progress'")
    assert "admin console: operator test key" in str(row.data)


def test_deny_and_extend_from_the_console(api: Api) -> None:
    ref = _request(api, 1)
    login(api)
    page = f"/admin/requests/{ref}"
    unknown = post(api, f"{page}/deny", {"rule": "no_reason"}, token=csrf(api, page))
    assert unknown.status_code == 400 and _state(api, ref) == "awaiting_approval"
    empty = post(api, f"{page}/extend", {"reason": " "}, token=csrf(api, page))
    assert empty.status_code == 400
    before = api.engine.requests.show(ref).due_at
    extended = post(
        api, f"{page}/extend", {"reason": "many systems to search"}, token=csrf(api, page)
    )
    assert extended.status_code == 303
    [row] = api.sql("SELECT extension_reason FROM requests WHERE ref = :r", r=ref)
    assert row.extension_reason == "many systems to search"
    assert api.engine.requests.show(ref).due_at > before
    denied = post(
        api,
        f"{page}/deny",
        {"rule": "legal_claims", "detail": "pending lawsuit"},
        token=csrf(api, page),
    )
    assert denied.status_code == 303 and _state(api, ref) == "denied"
    closed = post(api, f"{page}/extend", {"reason": "again"}, token=csrf(api, page))
    assert closed.status_code == 409 and "closed" in closed.text


def test_a_fee_from_the_console(api: Api) -> None:
    ref = _request(api, 2)
    login(api)
    page = f"/admin/requests/{ref}"
    shown = api.client.get(page).text
    assert "Ask the fee" in shown and "The fee is paid" not in shown
    bad = post(api, f"{page}/charge", {"amount": "a lot"}, token=csrf(api, page))
    assert bad.status_code == 400 and "currency code" in bad.text
    asked = post(api, f"{page}/charge", {"amount": "EUR 25"}, token=csrf(api, page))
    assert asked.status_code == 303 and _state(api, ref) == "awaiting_fee"
    shown = api.client.get(page).text
    assert "EUR 25" in shown and "The fee is paid" in shown
    assert '<option value="fee_unpaid">' in shown
    paid = post(api, f"{page}/fee-paid", {}, token=csrf(api, page))
    assert paid.status_code == 303 and _state(api, ref) == "awaiting_approval"
    again = post(api, f"{page}/fee-paid", {}, token=csrf(api, page))
    assert again.status_code == 409 and "not awaiting a fee" in again.text
    unpaid = post(api, f"{page}/deny", {"rule": "fee_unpaid"}, token=csrf(api, page))
    assert unpaid.status_code == 409 and _state(api, ref) == "awaiting_approval"


def test_clarification_from_the_console(api: Api) -> None:
    ref = _request(api, 3)
    login(api)
    page = f"/admin/requests/{ref}"
    assert "Ask for clarification" in api.client.get(page).text
    empty = post(api, f"{page}/clarify", {"question": " "}, token=csrf(api, page))
    assert empty.status_code == 400 and _state(api, ref) == "awaiting_approval"
    early = post(api, f"{page}/clarified", {}, token=csrf(api, page))
    assert early.status_code == 409
    asked = post(api, f"{page}/clarify", {"question": "Which account?"}, token=csrf(api, page))
    assert asked.status_code == 303 and _state(api, ref) == "awaiting_clarification"
    assert "Which account?" in api.sender.last(template="awaiting_clarification").body
    shown = api.client.get(page).text
    assert "The person replied: go on" in shown and "Ask for clarification" not in shown
    back = post(api, f"{page}/clarified", {}, token=csrf(api, page))
    assert back.status_code == 303 and _state(api, ref) == "awaiting_approval"


def test_consent_statistics(api: Api) -> None:
    for n in range(3):
        api.engine.consent.give(f"email:{customer_email(api, n)}", "newsletter", channel="email")
    api.engine.consent.withdraw(f"email:{customer_email(api, 0)}", "newsletter", channel="email")
    expected = {
        r.state: r.n
        for r in api.sql(
            "SELECT state, COUNT(*) AS n FROM consent_state WHERE topic = 'consent' "
            "AND key = 'newsletter' GROUP BY state"
        )
    }
    assert expected == {"given": 2, "withdrawn": 1}
    login(api)
    html = api.client.get("/admin/consent").text
    row = re.search(r"<th scope=\"row\">newsletter</th>(.*?)</tr>", html, re.S)
    assert row, html
    heads = re.findall(r'<th scope="col">([a-z_]+)</th>', html)  # the states
    cells = [int(c) for c in re.findall(r"<td>(\d+)</td>", row.group(1))]
    assert dict(zip(heads, cells, strict=True)) == {s: expected.get(s, 0) for s in heads}


def test_incidents_and_audit_status(api: Api) -> None:
    login(api)
    assert "No open incidents" in api.client.get("/admin/incidents").text
    incident = api.engine.incidents.open(
        datetime.now(UTC) - timedelta(hours=80),
        "Backup copied to a public bucket",
        tables=["shop.payments"],
        high_risk=True,
    )
    html = api.client.get("/admin/incidents").text
    assert f"#{incident.number}: Backup copied to a public bucket" in html
    assert "authority" in html and "overdue</strong>" in html  # 72 hours have passed
    audit = api.client.get("/admin/audit").text
    assert 'class="ok"' in audit and "intact" in audit
    # Tamper with one event: the console says where the chain breaks.
    with api.engine.store.engine.begin() as conn:
        seq = conn.scalar(sa.text("SELECT MAX(seq) FROM audit_events")) - 1
        conn.execute(
            sa.text("UPDATE audit_events SET kind = 'tampered' WHERE seq = :s"), {"s": seq}
        )
    broken = api.client.get("/admin/audit").text
    assert "broken at event" in broken


def test_an_admin_key_may_log_in_too(sqlite_api: Api) -> None:
    sqlite_api.client.cookies.clear()
    assert login(sqlite_api, "admin").status_code == 303
    assert "admin test key (admin)" in sqlite_api.client.get("/admin/").text
    sqlite_api.client.cookies.clear()
