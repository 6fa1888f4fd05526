"""An Engine over the sample shop (SQLite and PostgreSQL), its API app, and a key per scope.

The policy is the shop's with what the API needs to show: cookie categories, a
recipient, erasure under approval, grounds for refusal.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.api import ApiKeys, Limit, Scope, create_app
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.requests.messages import MemorySender
from lawful.subjects import Keyring

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
SHOP_DATASET = ROOT / "examples" / "shop" / "dataset.yaml"
SHOP_POLICY = ROOT / "examples" / "shop" / "policy.yaml"
CUSTOMERS = 12

REQUESTS = """requests:
  kinds: [access, portability, rectification, erasure, restriction, objection, withdraw_consent]
  verification: [email_code, signed_in]
  deadline:
    default: 1 month
    extension: 2 months
  approval: [erasure]
  fee: {default: free, when_excessive: reasonable_fee}
  exceptions: [legal_claims, others_rights]
"""
EXTRA = """
recipients:
  carrier: {role: processor, country: DE, safeguards: [contract]}

cookies:
  strictly_necessary: {optional: false}
  analytics: {optional: true}
"""


def policy_text() -> str:
    text = SHOP_POLICY.read_text()
    start = text.index("requests:\n")
    end = text.index("\nmarketing:")
    text = text[:start] + REQUESTS + text[end:]
    orders = "user.payment, user.financial]\n    retention: customer_records\n"
    assert orders in text
    text = text.replace(orders, orders + "    recipients: [carrier]\n")
    return text + EXTRA


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "schemathesis: property-based run of schemathesis against the served API"
    )


def open_engine(store_url: str, shop_url: str, sender: MemorySender) -> Engine:
    engine = Engine.open(
        load_policy_text(policy_text(), "api-policy.yaml"),
        store_url,
        keyring=Keyring.generate(),
        datasets=[SHOP_DATASET],
        sender=sender,
    )
    engine.requests.intake_floor = 0.0  # the timing test sets its own
    return engine


@dataclass
class Api:
    """An app over an engine, a client, and one key per scope."""

    engine: Engine
    client: TestClient
    sender: MemorySender
    shop_url: str
    tokens: dict[str, str]

    def headers(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    def sql(self, query: str, **params: Any) -> list[Any]:
        """Plain SQL on lawful's store."""
        with self.engine.store.engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))

    def shop(self, query: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.shop_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(query), params))
        finally:
            engine.dispose()


def make_api(
    store_url: str, shop_url: str, *, limits: dict[str, Limit] | None = None
) -> Iterator[Api]:
    sender = MemorySender()
    generate(shop_url, CUSTOMERS, seed=5)
    engine = open_engine(store_url, shop_url, sender)
    keys = ApiKeys(engine.store, engine.policy.key, engine.policy.controller.name)
    tokens = {s.value: keys.create(s, name=f"{s.value} test key")[1] for s in Scope}
    # Generous buckets: only the rate-limit test runs into them.
    app = create_app(
        engine,
        keys=keys,
        limits=limits or {"write": Limit(1000, 1000), "read": Limit(1000, 1000)},
    )
    with warnings.catch_warnings():
        # Starlette asks for its own fork of httpx; httpx itself works the same.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(engine, client, sender, shop_url, tokens)
    engine.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def api(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    """The API over a fresh store and shop, on each backend."""
    if request.param == "sqlite":
        store, shop = f"sqlite:///{tmp_path / 'lawful.db'}", f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        store = shop = request.getfixturevalue("pg_url")
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    yield from make_api(store, shop)


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API on SQLite for a module's tests that only read (auth, errors, OpenAPI)."""
    folder = tmp_path_factory.mktemp("api")
    shop = f"sqlite:///{folder / 'shop.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("SHOP_DATABASE_URL", shop)
    try:
        yield from make_api(f"sqlite:///{folder / 'lawful.db'}", shop)
    finally:
        mp.undo()


def code_for(sender: MemorySender, email: str) -> str:
    body = sender.last(to=email, template="code").body
    digits = [line.strip() for line in body.splitlines() if line.strip().isdigit()]
    assert len(digits) == 1, body
    return digits[0]
