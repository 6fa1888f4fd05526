"""Set-based statements over batches of key values, the same on SQLite, PostgreSQL and MySQL.

Every lookup is "these columns take one of these values" (`KeyList`). On SQLite and
MySQL that is `WHERE column IN (...)` (or `(a, b) IN ((...), ...)` for composite keys)
with one expanding bind parameter, in batches sized to the backend's parameter limits.
On PostgreSQL it is `column = ANY(%(k)b::BIGINT[])` (composite keys: `IN (SELECT ...
FROM unnest(...))`): one binary array parameter however many values, so the SQL text is
the same for 2 keys or 50,000, psycopg prepares it once, and the server parses one
parameter instead of thousands; and a single value is a plain `column = %(k)s`, whose
plan the server keeps (it plans `= ANY(...)` anew at each execution).

Statements are built once per shape and kept on the reflected table (`statement()`),
and on PostgreSQL compiled once too, so a request pays for neither. `Runner` executes
the statements of one step (a hop of the walk, the writes of an erasure) together:
through psycopg's pipeline mode on PostgreSQL, one round trip for the whole step
instead of one per statement; one after the other, through SQLAlchemy, elsewhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeEngine

# Values per IN list: SQLite allows 32,766 parameters (999 before 3.32), MySQL and
# PostgreSQL 65,535 per statement; big lists cost the planner more than extra trips.
BATCH = {"sqlite": 500, "postgresql": 5000, "mysql": 2000}
DEFAULT_BATCH = 500
# Values per PostgreSQL array parameter: no protocol limit; this bounds one statement's
# memory (a 50,000-row customer is still one statement).
ARRAY_BATCH = 100_000

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


class KeyList:
    """`columns` taking one of a list of values: the condition, and the parameters it takes.

    On PostgreSQL, when every column's type has a plain array form, the values go in one
    array parameter per column (`= ANY(...)`, or `unnest(...)` for several columns), and
    a single value in a plain `column = value` (`form()` says which applies): the server
    reuses its generic plan of an equality, while it plans `= ANY(...)` anew each time,
    which costs a single-subject request more than the lookup itself. Otherwise (and on
    the other backends) the values go in one expanding `IN` parameter. `types` gives the
    element types when the columns are expressions (`lower(email)`).
    """

    def __init__(
        self,
        columns: Sequence[ColumnElement[Any]],
        name: str,
        backend: str,
        types: Sequence[TypeEngine[Any]] | None = None,
    ) -> None:
        self.name = name
        self.width = len(columns)
        elements = [_array_element(t) for t in (types or [c.type for c in columns])]
        self.arrays = backend == "postgresql" and None not in elements
        self.batch = ARRAY_BATCH if self.arrays else batch_size(backend)
        self.where: ColumnElement[bool]
        if not self.arrays:
            param = sa.bindparam(name, expanding=True)
            single = len(columns) == 1
            self.where = columns[0].in_(param) if single else sa.tuple_(*columns).in_(param)
        elif self.width == 1:
            param = sa.bindparam(name, type_=postgresql.ARRAY(elements[0]))
            self.where = columns[0] == sa.any_(param)
        else:
            arrays = [
                sa.bindparam(f"{name}_{i}", type_=postgresql.ARRAY(t))
                for i, t in enumerate(elements)
            ]
            names = [f"c{i}" for i in range(self.width)]
            rows = sa.func.unnest(*arrays).table_valued(*names).render_derived()
            self.where = sa.tuple_(*columns).in_(sa.select(*(rows.c[n] for n in names)))
        self.one = self.where  # the condition for a single value
        if self.arrays:
            self.one = sa.and_(
                *(
                    column == sa.bindparam(f"{name}_one{i}", type_=element)
                    for i, (column, element) in enumerate(zip(columns, elements, strict=True))
                )
            )

    def form(self, values: Sequence[Sequence[Any]]) -> tuple[bool, dict[str, Any]]:
        """Whether these values take the single-value condition (`one`), and the parameters."""
        if self.arrays and len(values) == 1:
            return True, {f"{self.name}_one{i}": v for i, v in enumerate(values[0])}
        return False, self.params(values)

    def condition(self, one: bool) -> ColumnElement[bool]:
        return self.one if one else self.where

    def params(self, values: Iterable[Sequence[Any]]) -> dict[str, Any]:
        """The parameters of the list condition for these values (tuples, one item a column)."""
        if self.arrays and self.width > 1:
            listed = list(values)
            return {f"{self.name}_{i}": [v[i] for v in listed] for i in range(self.width)}
        if self.width == 1:
            return {self.name: [v[0] for v in values]}
        return {self.name: [tuple(v) for v in values]}


_INTEGERS = (sa.SmallInteger, sa.Integer, sa.BigInteger)
_TEXTS = (sa.String, sa.Text, sa.VARCHAR, sa.TEXT, sa.Unicode, sa.UnicodeText, sa.NVARCHAR)


def _array_element(type_: TypeEngine[Any]) -> TypeEngine[Any] | None:
    """The element type of a PostgreSQL array to compare `type_` with; None if unsure.

    Without length or precision, so a cast can't truncate or round a value into another
    one; character types with other comparison rules (CHAR pads, CITEXT folds case,
    enums are their own type) keep the IN list, compared as the column compares.
    """
    kind = type(type_)
    if kind in _INTEGERS or kind in (sa.SMALLINT, sa.INTEGER, sa.BIGINT):
        return sa.BigInteger() if issubclass(kind, sa.BigInteger) else sa.Integer()
    if kind in _TEXTS:
        return sa.String()
    if kind in (sa.Numeric, sa.NUMERIC, sa.DECIMAL):
        return sa.Numeric()
    if isinstance(type_, sa.DateTime):
        return sa.DateTime(timezone=bool(type_.timezone))
    if isinstance(type_, sa.Date):
        return sa.Date()
    if isinstance(type_, sa.Uuid):
        return sa.Uuid(as_uuid=type_.as_uuid)
    return None


# --- statements built once ------------------------------------------------------------------

Params = dict[str, Any] | list[dict[str, Any]]  # one row of parameters, or executemany's
IDLE = TransactionStatus.IDLE  # no transaction open: the next statement sends BEGIN


class Statement:
    """A statement built once and run many times; on psycopg, also its compiled SQL.

    Its parameters are named in it (`bindparam`, `.values({...})`), so it compiles the
    same whatever values it is given: lawful's selects, updates and deletes.
    """

    def __init__(self, clause: Executable) -> None:
        self.clause = clause
        self._raw: _Compiled | None = None

    def compiled(self, dialect: Dialect) -> _Compiled | None:
        """The SQL and parameter conversions for the raw driver; None if it can't take it."""
        if self._raw is None:
            self._raw = _Compiled(self.clause, dialect)
        return self._raw if self._raw.usable else None


def statement(table: sa.Table, key: Hashable, build: Callable[[], Any]) -> Any:
    """What `build()` makes for `key`, made once per reflected table (kept in its `info`).

    The graph reflects its own tables, so the cache lives exactly as long as the graph.
    """
    cache: dict[Hashable, Any] = table.info.setdefault("lawful.datasets", {})
    made = cache.get(key)
    if made is None:
        made = cache[key] = build()
    return made


class _Compiled:
    """A statement compiled for psycopg: its SQL text, and how its values are converted.

    Parameters and rows go through the same conversions SQLAlchemy applies (the bind and
    result processors of each type), so the raw driver sees and gives the same values.
    """

    def __init__(self, clause: Executable, dialect: Dialect) -> None:
        compiled = clause.compile(dialect=dialect)
        self.sql = compiled.string
        # Expanding (IN) parameters are rendered per execution by SQLAlchemy alone, and an
        # INSERT takes its columns from the parameters given: both go through SQLAlchemy.
        post = getattr(compiled, "post_compile_params", ()) or ()
        literal = getattr(compiled, "literal_execute_params", ()) or ()
        self.usable = not post and not literal and not isinstance(clause, sa.Insert)
        self.escaped: dict[str, str] = dict(getattr(compiled, "escaped_bind_names", {}) or {})
        self.defaults: dict[str, Any] = {}  # values written in the statement: SET x = 'erased'
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for bind, name in getattr(compiled, "bind_names", {}).items():
            name = self.escaped.get(name, name)
            if not bind.required:
                self.defaults[name] = bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
            if isinstance(bind.type, postgresql.ARRAY):
                # Arrays of keys go in binary: psycopg dumps 50,000 ints in a quarter of
                # the time it takes to write them as text (and the server parses less).
                self.sql = self.sql.replace(f"%({name})s", f"%({name})b")
        returned = getattr(clause, "exported_columns", None) or getattr(
            clause, "selected_columns", None
        )
        self.result_types = [c.type for c in returned] if returned else None
        self.dialect = dialect
        self._results: list[Any] | None = None  # result processors, known at first fetch

    def params(self, given: dict[str, Any]) -> dict[str, Any]:
        if self.escaped:
            given = {self.escaped.get(k, k): v for k, v in given.items()}
        params = self.defaults | given if self.defaults else dict(given)
        for name, processor in self.processors.items():
            if name in params:
                params[name] = processor(params[name])
        return params

    def rows(self, cursor: Any) -> list[Any]:
        rows = cursor.fetchall()
        if self._results is None:
            dialect = self.dialect
            self._results = [
                t.dialect_impl(dialect).result_processor(dialect, d.type_code)
                for t, d in zip(self.result_types or [], cursor.description, strict=False)
            ]
        if not any(self._results):
            return rows
        processors = self._results
        return [
            tuple(p(v) if p else v for p, v in zip(processors, row, strict=False)) for row in rows
        ]


class Runner:
    """Runs statements on one connection and counts them.

    `run(queries)` executes them in order and gives, for each, its rows (a statement
    returning rows) or its row count. On PostgreSQL through psycopg 3 they run on the
    driver's cursors with the statements compiled once (`_Compiled`), and a step of
    `PIPELINE_FROM` statements or more, or one that opens a transaction, goes in one
    pipeline: sent together, answered together, one round trip for all of them (BEGIN
    included), each still its own statement, in order, in the same transaction.
    Elsewhere they run one after the other through SQLAlchemy.
    """

    # Two statements or more go in one pipeline. On a server on the same host the
    # pipeline's own cost (a Sync and a poll per statement) is about what a round trip
    # costs, and it saved 0.3 ms on an erasure of the peer shop's customer (hops of 2
    # and 3 statements: bench/requests.py) without slowing a find; a server elsewhere
    # makes each round trip saved worth more.
    PIPELINE_FROM = 2

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.statements = 0
        self.pipelined = _pipeline_supported(conn)
        # Cursors are reused from step to step (the first for a step's first statement...):
        # each keeps the dumpers it made, which psycopg would otherwise make again.
        self._cursors: list[Any] = []

    def run(self, queries: Sequence[tuple[Statement, Params]]) -> list[Any]:
        if not queries:
            return []
        self.statements += len(queries)
        if self.pipelined:
            dialect = self.conn.dialect
            compiled = [stmt.compiled(dialect) for stmt, _ in queries]
            if all(c is not None for c in compiled):
                return self._pipeline(
                    [(c, p) for c, (_, p) in zip(compiled, queries, strict=True) if c]
                )
        out = []
        for stmt, params in queries:
            result = self.conn.execute(stmt.clause, params)
            out.append(result.all() if result.returns_rows else result.rowcount)
        return out

    def _pipeline(self, queries: list[tuple[_Compiled, Params]]) -> list[Any]:
        driver = self.conn.connection.driver_connection
        assert driver is not None
        cursors = self._cursors
        while len(cursors) < len(queries):
            cursors.append(driver.cursor())
        current: tuple[_Compiled, Params] | None = None
        # BEGIN rides in a pipeline for free; run alone, the first statement waits for it.
        opens = not driver.autocommit and driver.pgconn.transaction_status == IDLE
        piped = len(queries) >= self.PIPELINE_FROM or opens
        try:
            with driver.pipeline() if piped else nullcontext():
                for current, cursor in zip(queries, cursors, strict=False):
                    compiled, params = current
                    if isinstance(params, list):
                        cursor.executemany(compiled.sql, [compiled.params(p) for p in params])
                    else:
                        cursor.execute(compiled.sql, compiled.params(params))
            return [
                compiled.rows(cursor) if compiled.result_types else cursor.rowcount
                for (compiled, _), cursor in zip(queries, cursors, strict=False)
            ]
        except self.conn.dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, driver, current) from exc

    def _wrapped(
        self, exc: Exception, driver: Any, query: tuple[_Compiled, Params] | None
    ) -> BaseException:
        """The driver's error as SQLAlchemy would raise it (what callers catch)."""
        dialect = self.conn.dialect
        gone = dialect.is_disconnect(exc, driver, None)
        if gone:
            self.conn.invalidate(exc)
        return sa.exc.DBAPIError.instance(
            query[0].sql if query else None,
            None,  # the values may be personal data
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=gone,
            dialect=dialect,
        )


def _pipeline_supported(conn: Connection) -> bool:
    dialect = conn.dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg" and _libpq_pipelines()


@cache
def _libpq_pipelines() -> bool:
    return psycopg.Pipeline.is_supported()  # libpq 14 or later


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
