"""Fixtures for the retention tests: the sample shop on each backend, a store, a clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.shop.generate import generate
from lawful.datasets import Datasets
from lawful.policy import load_policy
from lawful.retention import Retention
from lawful.store import Store, open_store
from lawful.subjects import Keyring

ROOT = Path(__file__).resolve().parents[2]
SHOP_DATASET = ROOT / "examples" / "shop" / "dataset.yaml"
SHOP_POLICY = ROOT / "examples" / "shop" / "policy.yaml"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)  # the shop's data runs 2013 to 2026


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def app_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty application database on each backend lawful reaches."""
    if request.param == "sqlite":  # apart from the store's file
        return f"sqlite:///{request.getfixturevalue('tmp_path') / 'app.db'}"
    return request.getfixturevalue({"postgresql": "pg_url", "mysql": "mysql_url"}[request.param])


@pytest.fixture(scope="session")
def shop_policy():
    return load_policy(SHOP_POLICY).policy


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'lawful.db'}")
    yield opened
    opened.close()


@pytest.fixture
def shop_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample shop (150 customers, seed 0) in a fresh database; $SHOP_DATABASE_URL set."""
    generate(app_url, 150, seed=0)
    monkeypatch.setenv("SHOP_DATABASE_URL", app_url)
    return app_url


@pytest.fixture
def shop(shop_url: str, shop_policy, keyring: Keyring) -> Iterator[Datasets]:
    datasets = Datasets.load([SHOP_DATASET], policy=shop_policy, keyring=keyring)
    yield datasets
    datasets.close()


@pytest.fixture
def retention(store: Store, shop_policy, keyring: Keyring, shop: Datasets) -> Retention:
    return Retention(store, shop_policy, keyring, shop, batch=50, clock=lambda: NOW)


def sql_time(url: str, when: dt.datetime) -> object:
    """`when` as each backend's timestamp columns compare in plain SQL."""
    if url.startswith("sqlite"):
        return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if url.startswith("mysql"):
        return when.astimezone(dt.UTC).replace(tzinfo=None)
    return when
