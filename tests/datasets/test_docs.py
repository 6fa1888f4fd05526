"""docs/datasets.md is the reference of the annotation language: it must not drift from the code.

Every key of every model and every word of the closed word lists is written in it; the
complete example loads (against the sample shop's policy) and uses every word; the
examples of errors are what lawful prints.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel

from lawful.datasets import load_dataset_text
from lawful.datasets.model import Dataset
from lawful.subjects import IdentityKind
from tests.model_walk import enums_from, models_from

DOC = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text(encoding="utf-8")


def _example() -> str:
    section = DOC[DOC.index("## Complete example") :]
    block = re.search(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", section, re.MULTILINE | re.DOTALL)
    assert block, "no ```yaml block under '## Complete example'"
    return block.group(1)


def _models() -> list[type[BaseModel]]:
    return models_from(Dataset)


def _enums() -> list[type[StrEnum]]:
    return enums_from(Dataset)


def test_every_key_is_documented() -> None:
    for model in _models():
        for name, info in model.model_fields.items():
            key = info.alias or name
            assert f"`{key}`" in DOC, f"{model.__name__}.{key} is not in docs/datasets.md"


def test_every_word_is_documented_and_used_in_the_example(shop_policy: object) -> None:
    example = _example()
    enums = _enums()
    assert IdentityKind in enums
    for enum in enums:
        for word in enum:
            in_code = rf"`[^`\n]*\b{re.escape(word.value)}\b[^`\n]*`"
            assert re.search(in_code, DOC), f"{enum.__name__}.{word.value} is not documented"
            assert re.search(rf"\b{re.escape(word.value)}\b", example), (
                f"{enum.__name__}.{word.value} is not used in the complete example"
            )


def test_the_complete_example_loads_against_the_shop_policy(shop_policy: object) -> None:
    loaded = load_dataset_text(_example(), "example.yaml", policy=shop_policy)
    assert loaded.key == "community"
    assert not [w for w in loaded.warnings if w.severity == "error"]
    for model in _models():
        for name, info in model.model_fields.items():
            key = info.alias or name
            if key == "url":  # url and url_env exclude each other; the example has url_env
                continue
            assert re.search(
                rf"^\s*(- )?\{{?{re.escape(key)}:|[{{,] ?{re.escape(key)}:",
                _example(),
                re.MULTILINE,
            ), f"the complete example does not use {model.__name__}.{key}"
