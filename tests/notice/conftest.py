"""Fixtures for the notice tests: the five example policies and the sample shop."""

from __future__ import annotations

from pathlib import Path

import pytest

from lawful.policy import LoadedPolicy, load_policy

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "policies"
SHOP_POLICY = ROOT / "examples" / "shop" / "policy.yaml"
SHOP_DATASET = ROOT / "examples" / "shop" / "dataset.yaml"
SEEDS = ("serai", "sera_leads", "seestar_store", "selro", "sinesemi")


@pytest.fixture(scope="session")
def policies() -> dict[str, LoadedPolicy]:
    return {name: load_policy(POLICIES / f"{name}.yaml") for name in SEEDS}
