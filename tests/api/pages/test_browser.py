"""The privacy center and the admin console in a real browser: headless Chromium driven
by Playwright for Python, against lawful served by uvicorn on 127.0.0.1.

Playwright drives Debian's Chromium (`executable_path`, found on PATH); nothing is
downloaded at test time (never `playwright install`). `make browsers` installs Chromium
and `pip install -e '.[test]'` installs Playwright. Without either these tests skip,
saying which is missing, unless CI=true, where they fail: CI must not pass by skipping.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.api import ApiKeys, Limit, Scope, create_app
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.requests.messages import MAIL_DIR_ENV, sender_from_env
from lawful.subjects import Keyring
from tests.api.conftest import SHOP_DATASET, policy_text

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true does not allow skipping the browser tests")
    pytest.skip(reason)


def _chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    _missing(
        "headless Chromium is not installed: run `make browsers` (installs Debian's chromium "
        "package) to run the browser tests"
    )
    raise AssertionError("unreachable")


@dataclass
class Served:
    """lawful served over HTTP, its engine, its mail folder and an operator key."""

    base: str
    engine: Engine
    mail: Path
    operator_key: str
    shop_url: str

    def shop(self, query: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.shop_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(query), params))
        finally:
            engine.dispose()

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.store.engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))

    def code_for(self, address: str) -> str:
        """The code in the newest .eml sent to `address` (the test mail sink)."""
        for path in sorted(self.mail.glob("*-code-*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
            if message["To"] and address in str(message["To"]):
                body = message.get_body(("plain",))
                assert body is not None
                digits = [line.strip() for line in body.get_content().splitlines()]
                return next(d for d in digits if d.isdigit())
        raise AssertionError(f"no code message in {self.mail}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    import uvicorn

    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    monkeypatch.setenv(MAIL_DIR_ENV, str(tmp_path / "mail"))
    generate(shop, 12, seed=5)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    engine = Engine.open(
        load_policy_text(policy_text(), "api-policy.yaml"),
        f"sqlite:///{tmp_path / 'lawful.db'}",
        keyring=Keyring.generate(),
        datasets=[SHOP_DATASET],
        sender=sender_from_env(),  # $LAWFUL_MAIL_DIR: .eml files, as `lawful serve` sends
    )
    engine.requests.intake_floor = 0.0
    engine.requests.public_url = base
    keys = ApiKeys(engine.store, engine.policy.key, engine.policy.controller.name)
    _, token = keys.create(Scope.operator, name="browser test")
    app = create_app(engine, keys=keys, limits={"write": Limit(100, 100), "read": Limit(500, 500)})
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Served(base, engine, tmp_path / "mail", token, shop)
    finally:
        server.should_exit = True
        thread.join(10)
        engine.close()


@pytest.fixture
def page(served: Served) -> Iterator[Any]:
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing(
            "Playwright for Python is not installed: `pip install -e '.[test]'` installs it "
            "(it drives the system's Chromium; `playwright install` is not needed)"
        )
    with sync_playwright() as p:
        # --no-sandbox: containers run as root; the pages are our own, on 127.0.0.1.
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(java_script_enabled=False)  # the pages need none
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def send_and_confirm(served: Served, page: Any, address: str) -> str:
    """Send the filled request form, type the code mailed to `address`; the request's ref
    (the page is then its status page)."""
    page.get_by_role("button", name="Send the request").click()
    page.wait_for_url(re.compile(r"/privacy/requests/[0-9a-f]{32}/verify$"))
    ref = page.url.split("/")[-2]
    page.get_by_label("Code").fill(served.code_for(address))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{served.base}/privacy/requests/{ref}")
    return ref


def test_erasure_from_the_privacy_center_to_completion(served: Served, page: Any) -> None:
    address = served.shop("SELECT email FROM customers ORDER BY id")[0][0]
    page.goto(f"{served.base}/privacy/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Sample Shop GmbH" in page.inner_text("footer")
    # The keyboard reaches the page: the first Tab lands on the skip link.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    page.get_by_role("link", name="Delete my data").click()
    assert page.get_by_label("Delete my data").is_checked()
    page.get_by_label("Your email address").fill(address)
    ref = send_and_confirm(served, page, address)
    assert page.get_attribute("#status", "data-state") == "awaiting_approval"

    # The privacy team approves it in the console (erasure needs approval here).
    page.goto(f"{served.base}/admin/")
    page.wait_for_url(f"{served.base}/admin/login")
    page.get_by_label("Operator API key").fill(served.operator_key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{served.base}/admin/")
    page.get_by_role("link", name=ref[:12]).click()
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{served.base}/admin/requests/{ref}")
    assert page.inner_text("#state") == "in progress"

    # The worker (as `lawful serve` runs it in its thread) erases the customer.
    served.engine.requests.run_pending()
    page.goto(f"{served.base}/privacy/requests/{ref}")
    assert page.get_attribute("#status", "data-state") in ("completed", "partially_completed")
    assert served.shop("SELECT id FROM customers WHERE email = :e", e=address) == []


def test_rectification_from_the_privacy_center(served: Served, page: Any) -> None:
    """A person corrects their last name and phone with the form (no JavaScript): a wrong
    phone comes back named, with what they typed kept; the corrected form goes through."""
    customer, address, first_name = served.shop(
        "SELECT id, email, first_name FROM customers ORDER BY id"
    )[2]
    page.goto(f"{served.base}/privacy/")
    page.get_by_role("link", name="Correct my data").click()
    assert page.get_by_label("Correct my data").is_checked()
    page.get_by_label("Last name", exact=True).fill("Browser-Corrected")
    page.get_by_label("Phone", exact=True).fill("030 1234567")
    page.get_by_label("Your email address").fill(address)
    page.get_by_role("button", name="Send the request").click()

    alert = page.get_by_role("alert")
    assert "Phone (Customer accounts): The phone number has no country code" in alert.inner_text()
    assert page.get_by_label("Phone", exact=True).get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Last name", exact=True).input_value() == "Browser-Corrected"
    assert served.sql("SELECT id FROM requests") == []  # nothing taken

    page.get_by_label("Phone", exact=True).fill("+49 30 1234567")
    send_and_confirm(served, page, address)

    served.engine.requests.run_pending()
    page.reload()
    assert page.get_attribute("#status", "data-state") == "completed"
    assert served.shop(
        "SELECT first_name, last_name, phone FROM customers WHERE id = :c", c=customer
    ) == [(first_name, "Browser-Corrected", "+49301234567")]


def test_one_click_unsubscribe(served: Served, page: Any) -> None:
    address = served.shop("SELECT email FROM customers ORDER BY id")[1][0]
    headers = served.engine.consent.unsubscribe_headers(
        f"email:{address}", base_url=f"{served.base}/privacy/unsubscribe", list_name="weekly"
    )
    link = headers["List-Unsubscribe"].split(",")[0].strip("<> ")
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Unsubscribe"
    assert served.sql("SELECT state FROM consent_state WHERE key = 'weekly'") == []
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.inner_text("#done").startswith("We will stop sending you")
    [row] = served.sql("SELECT state, method FROM consent_state WHERE key = 'weekly'")
    assert (row.state, row.method) == ("withdrawn", "email_link")
