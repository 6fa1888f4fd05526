"""Set-based statements over batches of key values, the same on SQLite, PostgreSQL and MySQL.

Every lookup is `WHERE column IN (...)` (or `(a, b) IN ((...), ...)` for composite
keys) over a batch of values, with one expanding bind parameter so SQLAlchemy compiles
each statement shape once. Batches are sized to each backend's parameter limits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

# Values per IN list: SQLite allows 32,766 parameters (999 before 3.32), MySQL and
# PostgreSQL 65,535 per statement; big lists cost the planner more than extra trips.
BATCH = {"sqlite": 500, "postgresql": 5000, "mysql": 2000}
DEFAULT_BATCH = 500

_PHONE_NOISE = (" ", "-", "(", ")", ".", "/")


def batch_size(backend: str) -> int:
    return BATCH.get(backend, DEFAULT_BATCH)


def chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def keys_in(columns: Sequence[ColumnElement[Any]], name: str) -> ColumnElement[bool]:
    """`col IN (:name)` or `(a, b) IN (:name)`, expanded from one list at execution."""
    param = sa.bindparam(name, expanding=True)
    if len(columns) == 1:
        return columns[0].in_(param)
    return sa.tuple_(*columns).in_(param)


def bind_values(values: Iterable[tuple[Any, ...]], width: int) -> list[Any]:
    """The list an expanding parameter takes: bare values for one column, tuples for more."""
    return [v[0] for v in values] if width == 1 else [tuple(v) for v in values]


def phone_digits(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The column with the usual separators removed, to compare with an E.164 number."""
    expr: ColumnElement[Any] = column
    for noise in _PHONE_NOISE:
        expr = sa.func.replace(expr, noise, "")
    return expr


def coerce(value: Any, python_type: type | None) -> Any:
    """`value` as the column's Python type, for comparing across tables; None if it can't be.

    Links may join an integer column to a text one (a legacy schema); a value that does
    not convert exactly can't match and is dropped.
    """
    if value is None or python_type is None or isinstance(value, python_type):
        return value
    try:
        if python_type is str:
            if isinstance(value, bool):
                return None
            return str(value)
        if python_type is int and not isinstance(value, bool):
            if isinstance(value, str):
                text = value.strip()
                return int(text) if text.lstrip("-").isdigit() else None
            if isinstance(value, Decimal | float) and value == int(value):
                return int(value)
            return None
        if python_type is Decimal:
            return Decimal(str(value))
        if python_type is float and isinstance(value, int | Decimal):
            return float(value)
        if python_type is dt.date and isinstance(value, str):
            return dt.date.fromisoformat(value)
    except (ValueError, InvalidOperation, OverflowError):
        return None
    return value
