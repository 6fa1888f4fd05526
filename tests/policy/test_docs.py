"""docs/policy.md is the reference of the policy language: it must not drift from the code.

The complete example loads cleanly and uses every key; every key of every model and every
word of the closed word lists the models use is written in the reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from lawful.policy import Policy, load_policy_text
from tests.model_walk import enums_from, models_from

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
DOC = DOC_PATH.read_text(encoding="utf-8")


def _example() -> str:
    """The ```yaml block under the heading "## Complete example"."""
    heading = re.search(r"^## Complete example[ \t]*$", DOC, re.MULTILINE)
    assert heading, "docs/policy.md has no '## Complete example' heading"
    section = DOC[heading.end() :]
    next_heading = re.search(r"^## ", section, re.MULTILINE)
    if next_heading:
        section = section[: next_heading.start()]
    block = re.search(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", section, re.MULTILINE | re.DOTALL)
    assert block, "no ```yaml block under '## Complete example'"
    return block.group(1)


def _models() -> list[type[BaseModel]]:
    return models_from(Policy)


def _enums() -> list[type[StrEnum]]:
    return enums_from(Policy)


def _key(name: str, info: Any) -> str:
    return info.alias or name


def _set_keys(value: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """(model, key) for every key written in a validated policy, however deep."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        for name in value.model_fields_set:
            yield type(value), _key(name, fields[name])
        for name in fields:
            yield from _set_keys(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _set_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _set_keys(item)


def test_complete_example_loads_without_errors_or_warnings() -> None:
    loaded = load_policy_text(_example(), "docs/policy.md#complete-example")
    assert [str(w) for w in loaded.warnings] == []


def test_complete_example_uses_every_key() -> None:
    policy = load_policy_text(_example()).policy
    written = set(_set_keys(policy))
    missing = [
        f"{model.__name__}.{_key(name, info)}"
        for model in _models()
        for name, info in model.model_fields.items()
        if (model, _key(name, info)) not in written
    ]
    assert not missing, f"the complete example does not use: {', '.join(missing)}"


def test_walk_reaches_the_nested_models() -> None:
    names = {model.__name__ for model in _models()}
    assert {"Policy", "Controller", "Contacts", "Purpose", "RetentionRule", "Deadlines"} <= names


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_key_is_documented(model: type[BaseModel]) -> None:
    missing = [
        _key(name, info)
        for name, info in model.model_fields.items()
        if f"`{_key(name, info)}`" not in DOC
    ]
    assert not missing, f"docs/policy.md does not document {model.__name__} keys: {missing}"


def test_top_level_keys_are_documented_in_model_order() -> None:
    keys = [_key(name, info) for name, info in Policy.model_fields.items()]
    positions = []
    for key in keys:
        heading = re.search(rf"^### `{re.escape(key)}`[ \t]*$", DOC, re.MULTILINE)
        assert heading, f"docs/policy.md has no '### `{key}`' section"
        positions.append(heading.start())
    assert positions == sorted(positions), "top-level sections are not in the Policy model's order"


@pytest.mark.parametrize("enum", _enums(), ids=lambda e: e.__name__)
def test_every_word_is_documented(enum: type[StrEnum]) -> None:
    missing = [member.value for member in enum if f"`{member.value}`" not in DOC]
    assert not missing, f"docs/policy.md does not list {enum.__name__} words: {missing}"


def test_walk_finds_the_word_lists() -> None:
    names = {enum.__name__ for enum in _enums()}
    assert {"Basis", "RequestKind", "Safeguard", "Channel", "SecurityMeasure"} <= names
