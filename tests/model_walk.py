"""Walk a document's pydantic models: for the tests that keep a reference doc in step.

docs/policy.md and docs/datasets.md each document every key of their models and every
word of the closed word lists (StrEnums) those models use; these functions list them.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


def types_in(annotation: Any) -> Iterator[Any]:
    """Every type inside an annotation: list items, dict keys and values, union arms."""
    yield annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) or typing.get_args(arg):
            yield from types_in(arg)


def models_from(root: type[BaseModel]) -> list[type[BaseModel]]:
    """`root` and every model reachable from its fields, in order of discovery."""
    found: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in found:
            return
        found.append(model)
        for info in model.model_fields.values():
            for tp in types_in(info.annotation):
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    visit(tp)

    visit(root)
    return found


def enums_from(root: type[BaseModel]) -> list[type[StrEnum]]:
    """The closed word lists (StrEnums) used by the fields of `root`'s models."""
    found: list[type[StrEnum]] = []
    for model in models_from(root):
        for info in model.model_fields.values():
            for tp in types_in(info.annotation):
                if isinstance(tp, type) and issubclass(tp, StrEnum) and tp not in found:
                    found.append(tp)
    return found
