"""The sample shop and lawful's store in one fresh database per backend (SQLite, PostgreSQL):
fixtures shared by the children and incidents tests (their conftest files import them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.shop.generate import generate
from lawful.datasets import Datasets
from lawful.policy import load_policy
from lawful.store import Store, open_store
from lawful.subjects import Keyring

ROOT = Path(__file__).resolve().parents[1]
SHOP_DATASET = ROOT / "examples" / "shop" / "dataset.yaml"
SHOP_POLICY = ROOT / "examples" / "shop" / "policy.yaml"
CUSTOMERS = 150


@pytest.fixture(scope="session")
def shop_policy():
    return load_policy(SHOP_POLICY).policy


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def shop_url(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shop (150 customers, seed 0) in a fresh database; $SHOP_DATABASE_URL set."""
    generate(store_url, CUSTOMERS, seed=0)
    monkeypatch.setenv("SHOP_DATABASE_URL", store_url)
    return store_url


@pytest.fixture
def shop(shop_url: str, shop_policy, keyring: Keyring) -> Iterator[Datasets]:
    datasets = Datasets.load([SHOP_DATASET], policy=shop_policy, keyring=keyring)
    yield datasets
    datasets.close()


@pytest.fixture
def store(shop_url: str) -> Iterator[Store]:
    """lawful's store in the shop's database (the table names don't meet)."""
    opened = open_store(shop_url)
    yield opened
    opened.close()
