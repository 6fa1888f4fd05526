"""A breach at a recipient reaches the people whose data was disclosed to it: the
engine feeds the disclosure log to the incident register."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from examples.shop.generate import generate
from lawful.datasets import Datasets
from lawful.engine import Engine
from lawful.policy import load_policy
from lawful.subjects import Identity, Keyring

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store_and_shop(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lawful.db'}", f"sqlite:///{tmp_path / 'shop.db'}"
    url = request.getfixturevalue("pg_url")
    return url, url


def test_an_incident_at_a_recipient_names_whom_it_received(
    store_and_shop: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, shop = store_and_shop
    generate(shop, 20, seed=2)
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    keyring = Keyring.generate()
    datasets = Datasets.load([ROOT / "examples" / "shop" / "dataset.yaml"], keyring=keyring)
    policy = load_policy(ROOT / "examples" / "policies" / "selro.yaml")
    with Engine.open(policy, store, keyring=keyring, datasets=datasets) as engine:
        paid = ["email:customer-3@example.com", "email:customer-4@example.com"]
        for who in paid:
            made = engine.disclosures.disclose(
                who, "paypal", ["user.financial.credit_card"], "payments"
            )
            assert made.allowed, made.reason
        engine.disclosures.disclose(
            "email:customer-5@example.com", "stripe", ["user.financial.credit_card"], "payments"
        )
        incident = engine.incidents.open(
            datetime.now(UTC), "PayPal reports a leak of its merchants' data", systems=["paypal"]
        )
        hashes = {s["identity_hash"] for s in engine.incidents.subjects(incident)}
        assert hashes == {keyring.hash(Identity.parse(who)) for who in paid}
