"""Engines and disclosure facades on the test policy and the seeds, over SQLite and the
real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lawful.consent import DecisionLogging
from lawful.disclosure import Disclosures
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.subjects import Keyring

HERE = Path(__file__).parent
POLICY = HERE / "policy.yaml"
SEEDS = HERE.parent.parent / "examples" / "policies"


def open_engine(store_url: str, keyring: Keyring, path: Path = POLICY) -> Engine:
    loaded = load_policy_text(path.read_text(), str(path))
    return Engine.open(
        loaded, store_url, keyring=keyring, decision_logging=DecisionLogging(mode="off")
    )


def facade(engine: Engine, **kwargs: object) -> Disclosures:
    return Disclosures(
        engine.store,
        engine.policy,
        engine.keyring,
        engine.consent,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def engine(store_url: str, keyring: Keyring) -> Iterator[Engine]:
    opened = open_engine(store_url, keyring)
    yield opened
    opened.close()


@pytest.fixture
def disclosures(engine: Engine) -> Disclosures:
    return facade(engine)


@pytest.fixture
def seed_engine(store_url: str, keyring: Keyring) -> Iterator[Callable[[str], Engine]]:
    """Open an engine on a seed policy by its file name (e.g. seestar_store)."""
    opened: list[Engine] = []

    def open_seed(name: str) -> Engine:
        engine = open_engine(store_url, keyring, SEEDS / f"{name}.yaml")
        opened.append(engine)
        return engine

    yield open_seed
    for engine in opened:
        engine.close()
