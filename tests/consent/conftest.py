"""An engine on the decision-test policy, over SQLite and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lawful.consent import DecisionLogging
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.subjects import Keyring

POLICY = Path(__file__).with_name("policy.yaml")


def open_engine(
    store_url: str, keyring: Keyring, text: str | None = None, **kwargs: object
) -> Engine:
    loaded = load_policy_text(text if text is not None else POLICY.read_text(), str(POLICY))
    kwargs.setdefault("decision_logging", DecisionLogging(mode="all", batch=1))
    return Engine.open(loaded, store_url, keyring=keyring, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def engine(store_url: str, keyring: Keyring) -> Iterator[Engine]:
    opened = open_engine(store_url, keyring)
    yield opened
    opened.close()
