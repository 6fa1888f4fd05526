"""Fixtures for the datasets tests: the sample shop on each backend, and its annotation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.shop.generate import generate
from lawful.datasets import Datasets, load_dataset_text
from lawful.policy import load_policy
from lawful.subjects import Keyring
from tests.datasets import forum

ROOT = Path(__file__).resolve().parents[2]
SHOP_DATASET = ROOT / "examples" / "shop" / "dataset.yaml"
SHOP_POLICY = ROOT / "examples" / "shop" / "policy.yaml"
SHOP_CUSTOMERS = 200


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def app_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty application database on each backend lawful reaches."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture
def shop_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample shop (200 customers, seed 0) in a fresh database; $SHOP_DATABASE_URL set."""
    generate(app_url, SHOP_CUSTOMERS, seed=0)
    monkeypatch.setenv("SHOP_DATABASE_URL", app_url)
    return app_url


@pytest.fixture
def forum_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The forum (tests/datasets/forum.py) in a fresh database; $FORUM_DATABASE_URL set."""
    forum.build(app_url)
    monkeypatch.setenv("FORUM_DATABASE_URL", app_url)
    return app_url


@pytest.fixture
def forum_data(forum_url: str) -> Iterator[Datasets]:
    """The forum's annotation opened on it, with a fixed mask key."""
    with Datasets(
        [load_dataset_text(forum.ANNOTATION, "forum.yaml")], mask_key=forum.MASK_KEY
    ) as opened:
        yield opened


@pytest.fixture(scope="session")
def shop_policy():
    return load_policy(SHOP_POLICY).policy


@pytest.fixture
def shop(shop_url: str, shop_policy) -> Datasets:
    """The shop's annotation, checked against its policy, opened on the shop database."""
    datasets = Datasets.load([SHOP_DATASET], policy=shop_policy, keyring=Keyring.generate())
    yield datasets
    datasets.close()
