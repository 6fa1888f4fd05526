"""The cookie banner: its endpoints (TestClient, SQLite and PostgreSQL), then banner.js
in real headless Chromium on a test page served by a second local server.

The policy adds an `advertising` category serving a purpose that shares personal
information (CCPA), which a browser's Global Privacy Control refuses by default.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.api import conftest
from tests.api.conftest import Api, make_api

DEVICE = "dev1ce-id-0123456789ab"
AD_PURPOSE = """purposes:
  ad_sharing:
    description: Share what people browse with advertising partners
    use: marketing.advertising.third_party.targeted
    basis: consent
    consent: {via: [banner]}
    categories: [user.device.cookie_id]
    share: true
    cookies: [advertising]
"""
AD_COOKIES = """  advertising: {optional: true, name: Advertising, description: Ads by our partners}

sale: {shares: true}
"""


def banner_policy_text() -> str:
    text = PLAIN_POLICY()
    text = text.replace("purposes:\n", AD_PURPOSE, 1)
    return text + AD_COOKIES


PLAIN_POLICY = conftest.policy_text


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def banner_api(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    monkeypatch.setattr(conftest, "policy_text", banner_policy_text)
    if request.param == "sqlite":
        store, shop = f"sqlite:///{tmp_path / 'lawful.db'}", f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        store = shop = request.getfixturevalue("pg_url")
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    yield from make_api(store, shop)


def _cookie_rows(api: Api) -> dict[str, str]:
    """The device's current cookie choices, by plain SQL on the consent ledger."""
    rows = api.sql("SELECT key, state FROM consent_records WHERE topic = 'cookie' ORDER BY id")
    return {r.key: r.state for r in rows}


def test_categories_list_the_policy_and_mark_sale_share(banner_api: Api) -> None:
    answer = banner_api.client.get("/api/v1/cookies/categories")
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    body = answer.json()
    assert body["gpc"] is True
    cats = {c["key"]: c for c in body["categories"]}
    assert set(cats) == {"strictly_necessary", "analytics", "advertising"}
    assert cats["strictly_necessary"]["optional"] is False
    assert cats["advertising"]["sale_share"] is True
    assert cats["analytics"]["sale_share"] is False


def test_a_choice_is_stored_under_the_device_and_read_back(banner_api: Api) -> None:
    c = banner_api.client
    before = c.get("/api/v1/cookies/choice", params={"device": DEVICE}).json()
    assert before == {"device": DEVICE, "decided": False, "choices": {}, "gpc": False}
    answer = c.post(
        "/api/v1/cookies/choice",
        json={"device": DEVICE, "choices": {"analytics": True, "advertising": False}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"] == {"analytics": True, "advertising": False}
    assert _cookie_rows(banner_api) == {"analytics": "given", "advertising": "refused"}
    [subject] = banner_api.sql("SELECT COUNT(*) AS n FROM identities WHERE kind = 'device'")
    assert subject.n == 1
    again = c.get("/api/v1/cookies/choice", params={"device": DEVICE}).json()
    assert again["decided"] is True and again["choices"]["analytics"] is True
    # Changing one's mind is recorded too.
    c.post("/api/v1/cookies/choice", json={"device": DEVICE, "choices": {"analytics": False}})
    assert _cookie_rows(banner_api)["analytics"] == "refused"


def test_gpc_records_the_opt_outs(banner_api: Api) -> None:
    answer = banner_api.client.post(
        "/api/v1/cookies/choice",
        json={"device": DEVICE, "choices": {"analytics": True, "advertising": False}},
        headers={"Sec-GPC": "1"},
    )
    assert answer.status_code == 200 and answer.json()["gpc"] is True
    rows = banner_api.sql(
        "SELECT key, state, method FROM consent_records WHERE topic = 'opt_out' ORDER BY key"
    )
    assert {(r.key, r.state, r.method) for r in rows} >= {
        ("sale", "withdrawn", "signal"),
        ("share", "withdrawn", "signal"),
    }


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "field"),
    [
        ({"device": "short", "choices": {"analytics": True}}, {}, 400, "device.invalid", "device"),
        (
            {"device": DEVICE, "choices": {"analytic": True}},
            {},
            400,
            "cookie.unknown",
            "choices.analytic",
        ),
        (
            {"device": DEVICE, "choices": {"strictly_necessary": False}},
            {},
            400,
            "cookie.necessary",
            "choices.strictly_necessary",
        ),
        ({"device": DEVICE, "choices": {}}, {}, 400, "cookie.empty", "choices"),
    ],
)
def test_bad_choices_are_refused_and_nothing_is_recorded(
    banner_api: Api, body: dict, headers: dict, status: int, code: str, field: str
) -> None:
    answer = banner_api.client.post("/api/v1/cookies/choice", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code and answer.json()["field"] == field
    assert _cookie_rows(banner_api) == {}


def test_a_form_post_is_refused(banner_api: Api) -> None:
    """A cross-site HTML form can't send JSON: a form-encoded body gets nowhere."""
    answer = banner_api.client.post(
        "/api/v1/cookies/choice",
        content=json.dumps({"device": DEVICE, "choices": {"analytics": True}}),
        headers={"Content-Type": "text/plain"},
    )
    assert answer.status_code in (415, 422)
    assert _cookie_rows(banner_api) == {}


def test_preflight_allows_the_websites(banner_api: Api) -> None:
    answer = banner_api.client.options(
        "/api/v1/cookies/choice",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "Content-Type" in answer.headers["access-control-allow-headers"]


def test_the_choice_endpoint_is_rate_limited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lawful.api import Limit

    monkeypatch.setattr(conftest, "policy_text", banner_policy_text)
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    limits = {"write": Limit(2, 0.001), "read": Limit(1000, 1000)}
    for api in make_api(f"sqlite:///{tmp_path / 'lawful.db'}", shop, limits=limits):
        body = {"device": DEVICE, "choices": {"analytics": True}}
        codes = [api.client.post("/api/v1/cookies/choice", json=body).status_code for _ in range(3)]
        assert codes == [200, 200, 429]


def test_banner_js_is_served(banner_api: Api) -> None:
    answer = banner_api.client.get("/banner.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "lawful:consent" in answer.text and "globalPrivacyControl" in answer.text


# -- real headless Chromium ------------------------------------------------------------------

CHROMIUM = os.environ.get("LAWFUL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body>
<h1>A shop</h1>
<script type="text/plain" data-category="analytics">window.analyticsRan = true;</script>
<script type="text/plain" data-category="advertising">window.adsRan = true;</script>
<script>
  window.events = [];
  window.addEventListener("lawful:consent", function (e) { window.events.push(e.detail); });
</script>
<script src="LAWFUL/banner.js" defer></script>
</body></html>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser_available() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (run `make browsers`)"
    return None


@pytest.fixture
def site(banner_api: Api) -> Iterator[dict[str, str]]:
    """lawful served by uvicorn on one port, the website on another (cross-origin)."""
    missing = _browser_available()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    import uvicorn

    lawful_port, site_port = _free_port(), _free_port()
    server = uvicorn.Server(
        uvicorn.Config(banner_api.client.app, host="127.0.0.1", port=lawful_port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    page = PAGE.replace("LAWFUL", f"http://127.0.0.1:{lawful_port}").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", site_port), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield {
            "page": f"http://127.0.0.1:{site_port}/",
            "lawful": f"http://127.0.0.1:{lawful_port}",
        }
    finally:
        http.shutdown()
        server.should_exit = True
        thread.join(10)


def _browse(gpc: bool) -> Any:
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    browser = manager.chromium.launch(executable_path=CHROMIUM, headless=True)
    context = browser.new_context()
    if gpc:
        # What a browser with Global Privacy Control on exposes to the page.
        context.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', "
            "{get: () => true, configurable: true});"
        )
    return manager, browser, context


@pytest.mark.parametrize("banner_api", ["sqlite"], indirect=True)
def test_accept_in_chromium_runs_the_blocked_script(banner_api: Api, site: dict[str, str]) -> None:
    manager, browser, context = _browse(gpc=False)
    try:
        page = context.new_page()
        page.goto(site["page"])
        dialog = page.get_by_role("dialog", name="Cookies on this site")
        dialog.wait_for()
        # Nothing optional ran before a choice; strictly necessary is on.
        assert page.evaluate("window.analyticsRan") is None
        assert page.evaluate("window.lawful.consent.strictly_necessary") is True
        assert page.evaluate("window.lawful.consent.analytics") is False
        # Keyboard: the first button has focus; Enter accepts.
        assert page.evaluate("document.activeElement.id") == "lawful-accept"
        page.keyboard.press("Enter")
        page.wait_for_function("window.analyticsRan === true")
        assert page.evaluate("window.adsRan") is True
        assert page.evaluate("window.lawful.consent") == {
            "strictly_necessary": True,
            "analytics": True,
            "advertising": True,
        }
        assert page.evaluate("window.events.length") == 2  # the initial state, then the choice
        assert dialog.count() == 0
        device = next(c["value"] for c in context.cookies() if c["name"] == "lawful_device")
        assert _cookie_rows(banner_api) == {"analytics": "given", "advertising": "given"}
        # The next visit remembers the choice: no banner, the scripts run at once.
        again = context.new_page()
        again.goto(site["page"])
        again.wait_for_function("window.analyticsRan === true")
        assert again.get_by_role("dialog").count() == 0
        stored = banner_api.client.get("/api/v1/cookies/choice", params={"device": device})
        assert stored.json()["decided"] is True
    finally:
        browser.close()
        manager.stop()


@pytest.mark.parametrize("banner_api", ["sqlite"], indirect=True)
def test_reject_and_choose_in_chromium_keep_scripts_blocked(
    banner_api: Api, site: dict[str, str]
) -> None:
    manager, browser, context = _browse(gpc=False)
    try:
        page = context.new_page()
        page.goto(site["page"])
        page.get_by_role("button", name="Reject all").click()
        page.wait_for_function("window.events.length === 2")
        assert page.evaluate("window.analyticsRan") is None
        assert page.evaluate("window.adsRan") is None
        assert _cookie_rows(banner_api) == {"analytics": "refused", "advertising": "refused"}
        # Reopened, only analytics chosen: analytics runs, advertising stays blocked.
        page.evaluate("window.lawful.open()")
        page.get_by_label("Analytics").check()
        page.get_by_role("button", name="Save my choices").click()
        page.wait_for_function("window.analyticsRan === true")
        assert page.evaluate("window.adsRan") is None
        assert page.evaluate("window.lawful.consent.advertising") is False
        assert _cookie_rows(banner_api) == {"analytics": "given", "advertising": "refused"}
    finally:
        browser.close()
        manager.stop()


@pytest.mark.parametrize("banner_api", ["sqlite"], indirect=True)
def test_gpc_in_chromium_refuses_sale_and_share_by_default(
    banner_api: Api, site: dict[str, str]
) -> None:
    manager, browser, context = _browse(gpc=True)
    try:
        page = context.new_page()
        page.goto(site["page"])
        page.get_by_role("dialog").wait_for()
        assert page.evaluate("navigator.globalPrivacyControl") is True
        assert "Global Privacy Control" in page.locator("#lawful-gpc").inner_text()
        assert page.get_by_label("Advertising").is_checked() is False
        page.get_by_role("button", name="Accept all").click()
        page.wait_for_function("window.analyticsRan === true")
        assert page.evaluate("window.adsRan") is None
        assert page.evaluate("window.lawful.consent.advertising") is False
        assert _cookie_rows(banner_api) == {"analytics": "given", "advertising": "refused"}
        opt_outs = banner_api.sql(
            "SELECT key FROM consent_records WHERE topic = 'opt_out' AND state = 'withdrawn'"
        )
        assert {"sale", "share"} <= {r.key for r in opt_outs}
    finally:
        browser.close()
        manager.stop()


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("the browser tests run on Linux")


def test_a_policy_that_ignores_gpc_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        conftest, "policy_text", lambda: banner_policy_text() + "\nsignals: {gpc: ignore}\n"
    )
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    for api in make_api(f"sqlite:///{tmp_path / 'lawful.db'}", shop):
        assert api.client.get("/api/v1/cookies/categories").json()["gpc"] is False
        body = {"device": DEVICE, "choices": {"analytics": True}, "gpc": True}
        assert api.client.post("/api/v1/cookies/choice", json=body).status_code == 200
        assert api.sql("SELECT key FROM consent_records WHERE topic = 'opt_out'") == []
