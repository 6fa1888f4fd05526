"""Insert-or-update for SQLite, PostgreSQL and MySQL/MariaDB in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    newer: str | None = None,
) -> None:
    """Insert `rows`; where a row with the same `keys` exists, update its other columns.

    With `newer`, an existing row is only replaced by one whose `newer` column is at
    least as large (so an older record never overwrites a newer state). Rows must have
    distinct keys; they are sent as multi-row statements.
    """
    if not rows:
        return
    columns = [c for c in rows[0] if c not in keys]
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(table)
        excluded = stmt.excluded
        where = None if newer is None else excluded[newer] >= table.c[newer]
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: excluded[c] for c in columns}, where=where
        )
        # executemany: SQLAlchemy sends multi-row statements and caches the compiled form.
        conn.execute(stmt, list(rows))
        return
    if dialect in ("mysql", "mariadb"):
        stmt = mysql.insert(table)
        inserted = stmt.inserted
        if newer is None:
            values = {c: inserted[c] for c in columns}
        else:
            # Every assignment tests the condition on the old value of `newer`, so that
            # column is assigned last.
            keep = inserted[newer] >= table.c[newer]
            ordered = [c for c in columns if c != newer] + [newer]
            values = {c: sa.case((keep, inserted[c]), else_=table.c[c]) for c in ordered}
        conn.execute(stmt.on_duplicate_key_update(values), list(rows))
        return
    raise NotImplementedError(f"no upsert for the {dialect} backend")
