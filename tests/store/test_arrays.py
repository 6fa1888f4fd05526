"""Batches of keys drive PostgreSQL lookups: inline when small, one parameter when large."""

from __future__ import annotations

import pytest

from lawful.store.arrays import unnest

DIGEST = "ab" * 32


def test_small_batches_are_inline_and_validated() -> None:
    assert unnest([DIGEST], "digest") == (f"unnest(ARRAY['{DIGEST}']::text[])", [])
    assert unnest([3, 5], "bigint") == ("unnest(ARRAY[3,5]::bigint[])", [])
    with pytest.raises(ValueError, match="hex"):
        unnest(["x'); DROP TABLE subjects; --"], "digest")
    with pytest.raises(ValueError):
        unnest(["1; DROP TABLE subjects"], "bigint")


def test_large_batches_are_one_array_parameter() -> None:
    many = [DIGEST] * 51
    assert unnest(many, "digest") == ("unnest(%s::text[])", [many])
