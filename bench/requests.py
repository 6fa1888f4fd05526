"""How fast lawful finds and erases a subject's rows, next to hand-written SQL (issue 4).

Each figure is printed next to a baseline measured in the same run, on the same data,
through the same driver (psycopg 3, the same connection settings as lawful's pool):

* find one subject: `Datasets.find` (and `Datasets.access`, which also builds the
  report) for 200 random subjects, one at a time  vs  the queries a person would write
  for that schema (the customer by email, then its orders, their items, its logins, the
  newsletter by email, the addresses by id...), fetching the same rows and columns
  (lawful reads whole rows), with `= %s` for one value and `= ANY(%s)` for several, as
  a person writes them (and as lawful sends them). Both run on the same subjects,
  interleaved, in a random order per subject, after a warm-up; the baseline keeps one
  connection open (lawful takes one from its pool, which pings it, per request).
* erase one subject: `Datasets.erase` for 200 random subjects  vs  hand-written UPDATE
  and DELETE statements with the same effect (the masks, deletes and shared-row checks
  the annotation implies) in one transaction, for 200 *other* random subjects. Erasure is
  destructive, so each subject is erased once: the two samples are drawn at random
  from the same customers (the generators make them alike) and interleaved pair by pair,
  alternating which goes first, so load from other work on the machine falls on both.
  Before the timings, one more subject is erased both ways and the results compared:
  the baseline runs in a transaction, its result is read and rolled back, then lawful
  erases the same subject, and every row the subject had (and each table's row count)
  must end up the same.
* a batch: `Datasets.erase` given the emails of 10,000 subjects at once  vs  set-based
  SQL (`UPDATE ... WHERE customer_id = ANY(%s)` and the like), in rows changed per
  second. On the peer shop the batch runs on two copies of the freshly loaded database
  (`CREATE DATABASE ... TEMPLATE`), one per side, which must be identical afterwards; on
  the sample shop on two disjoint random sets of subjects, checked first on a small
  batch the same way as a single subject.

The databases:

* `../shared/peer-shop/` (PostgreSQL, 10,000 customers): `appdb.sql` loaded with psql,
  annotated by importing its Fides dataset (`shop_dataset.yml`) with
  `lawful.datasets.fides`. Its README gives what Ethyca Fides 2.86.2 took on exactly
  this database on a 2-core machine like ours; those figures are printed beside ours.
  For "a customer owning 50,020 rows" customer 1 gets 50,000 more login events (50,020
  in all, the one table an UPDATE erases there; 50,043 rows with the rest of its rows),
  and so do customers 2 to 6: lawful erases 1, 3 and 5, the baseline 2, 4 and 6, in
  turn (--heavy-repeat), and the medians are compared.
* the sample shop (`examples/shop`, 1,000,000 customers by default) with its own
  annotation `examples/shop/dataset.yaml`. The baseline follows the identity columns the
  annotation lets expand, as lawful reads it (printed): a phone number found is
  searched for too, so both find (and erase) the customers who share that number.

Targets (issue 4): within 1.5x of hand-written SQL; on the peer shop under 10 ms to find
and under 20 ms to erase one customer (medians), the 50,020-row customer erased in
under 1 s (median); batch erasure at no less than half the rows/s of hand-written set-based SQL.

Whole data-subject requests (issue 5; --skip-requests to leave them out): lawful's
own store on a fresh PostgreSQL database (`bench_store_...`), the peer shop (freshly
loaded) as the dataset, the policy examples/shop/policy.yaml. Each request is
submitted already verified (a signed-in app's `sign_assertion`, no code round trip) and
run to completion: steps recorded, audit events, messages (kept in memory), the signed
receipt chained into the audit log. The intake's anti-enumeration floor (a sleep, and
no threat with an assertion only the controller's app can sign) is set to 0.

* --requests N (default 60, as Fides' 60) access and N erasure requests on random
  customers, one at a time in a random order after 10 to warm up: submit -> completed,
  median and p95 (targets: under 50 ms and 100 ms). Afterwards every request must be
  closed with a receipt, the audit chain verify, and no erased customer's email be found.
* statements per request on lawful's store (a `before_cursor_execute` listener on its
  engine; target at most 30), by kind (verb and table), and on the dataset (counted by
  the datasets' own statement runner, which pipelines them on PostgreSQL).
* throughput: 2N requests (half of each kind) submitted first, then drained by 1 worker
  process, and 2N more by 4 worker processes (spawned, each with its own Engine and
  `run_pending()`), timed from their common start to the last one's end; requests/s
  (target at least 100 with 4 workers). Afterwards none is left open and the audit
  chain verifies. Beside each rate: the CPU a request took in the workers and, on Linux,
  in every PostgreSQL process (the store's and the dataset's), and the rate that allows
  on this machine's cores if nothing else ran: on a shared machine the cores are not all
  ours, and this says how much of a miss is the code's.

Each database is created fresh (`CREATE DATABASE bench_...`) and dropped at the end
unless --keep.

    python bench/requests.py                         # both databases, 1M shop customers
    python bench/requests.py --shop-customers 100000 --json
    python bench/requests.py --skip-shop             # the peer shop and whole requests
    python bench/requests.py --skip-peer --skip-shop --requests 20
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import json
import multiprocessing
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lawful.datasets import Datasets, Found, load_dataset, load_dataset_text  # noqa: E402
from lawful.datasets.fides import convert_fides_file  # noqa: E402
from lawful.datasets.masks import keyed_hash  # noqa: E402

PEER = ROOT.parent / "shared" / "peer-shop"
SHOP_DATASET = ROOT / "examples" / "shop" / "dataset.yaml"
PG_ADMIN = os.environ.get("LAWFUL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
MASK_KEY = b"bench-requests-mask-key-32-bytes"
CONNECT_TIMEOUT = 10  # as lawful.datasets.connect gives its pool

# Ethyca Fides 2.86.2 on the peer shop (../shared/peer-shop/README.md), in seconds.
FIDES = {"access": 0.56, "erase": 1.24, "heavy": 170.0}

Row = tuple[Any, ...]
Rows = dict[str, set[Row]]


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Figure:
    """One measure: lawful's samples, the baseline's, and whether its target is met.

    A figure with no baseline (statement counts, throughput) has an empty `baseline` and
    no ratio.
    """

    measure: str
    unit: str  # "ms", "s", "rows/s", "req/s" or "stmts"
    lawful: list[float]
    baseline: list[float]
    fides: float | None = None  # seconds
    target: str = ""
    met: bool | None = None
    note: str = ""
    fides_text: str | None = None  # Fides' figure in words, when not a time in seconds

    @property
    def ratio(self) -> float | None:
        """lawful / baseline for times; baseline / lawful for rates (higher is worse)."""
        if not self.baseline:
            return None
        ours, theirs = statistics.median(self.lawful), statistics.median(self.baseline)
        return theirs / ours if self.unit in RATES else ours / theirs

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "measure": self.measure,
            "unit": self.unit,
            "lawful_median": statistics.median(self.lawful),
            "samples": len(self.lawful),
        }
        if self.baseline:
            out["baseline_median"] = statistics.median(self.baseline)
            out["ratio"] = self.ratio
        if len(self.lawful) > 1:
            out["lawful_p95"] = p95(self.lawful)
            if self.baseline:
                out["baseline_p95"] = p95(self.baseline)
        if self.fides is not None:
            out["fides_s"] = self.fides
        if self.fides_text is not None:
            out["fides"] = self.fides_text
        out |= {"target": self.target, "met": self.met, "note": self.note}
        return out


RATES = ("rows/s", "req/s")  # higher is better


@dataclass
class Report:
    database: str
    description: list[str]
    figures: list[Figure] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # JSON only, or shown by `lines`
    lines: list[str] = field(default_factory=list)  # printed after the table

    def to_dict(self) -> dict[str, Any]:
        out = {
            "database": self.database,
            "description": self.description,
            "facts": self.facts,
            "figures": [f.to_dict() for f in self.figures],
        }
        return out | self.details


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def clock(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def interleaved(
    ours: Callable[[Any], object],
    theirs: Callable[[Any], object],
    pairs: Sequence[tuple[Any, Any]],
    rng: random.Random,
) -> tuple[list[float], list[float]]:
    """Time ours(a) and theirs(b) for each pair, in a random order per pair."""
    a_times, b_times = [], []
    for a, b in pairs:
        if rng.random() < 0.5:
            a_times.append(clock(lambda a=a: ours(a)))
            b_times.append(clock(lambda b=b: theirs(b)))
        else:
            b_times.append(clock(lambda b=b: theirs(b)))
            a_times.append(clock(lambda a=a: ours(a)))
    return a_times, b_times


# --- databases ------------------------------------------------------------------------------


class Server:
    """The PostgreSQL server the benchmark databases are created on."""

    def __init__(self, admin_url: str) -> None:
        self.url = sa.make_url(admin_url)
        self.created: list[str] = []

    def url_of(self, name: str) -> str:
        """A libpq-style SQLAlchemy URL (`postgresql://...`) of database `name`."""
        return self.url.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )

    def conninfo(self, name: str) -> str:
        u = self.url
        parts = {
            "host": u.host or "127.0.0.1",
            "port": u.port or 5432,
            "user": u.username or "postgres",
            "dbname": name,
            "connect_timeout": CONNECT_TIMEOUT,
        }
        if u.password:
            parts["password"] = u.password
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def admin(self, statement: str) -> None:
        with psycopg.connect(self.conninfo(self.url.database or "postgres"), autocommit=True) as c:
            c.execute(statement)  # type: ignore[arg-type]

    def create(self, name: str, template: str | None = None) -> str:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        self.created.append(name)
        return name

    def drop_all(self) -> None:
        for name in self.created:
            self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.created.clear()

    def psql(self, name: str, script: Path, **variables: object) -> None:
        u = self.url
        env = dict(os.environ)
        if u.password:
            env["PGPASSWORD"] = u.password
        env["PGOPTIONS"] = "-c client_min_messages=warning"  # not appdb.sql's NOTICEs
        command = ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1"]
        command += ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432)]
        command += ["-U", u.username or "postgres", "-d", name]
        for key, value in variables.items():
            command += ["-v", f"{key}={value}"]
        command += ["-f", str(script)]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)

    def connect(self, name: str, *, autocommit: bool) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(name), autocommit=autocommit)


def table_rows(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
    assert row is not None
    return int(row[0])


def fingerprint(conn: psycopg.Connection[Any], tables: Sequence[str]) -> dict[str, str]:
    """Each table's contents as one digest (rows ordered by their text)."""
    out = {}
    for name in tables:
        query = sql.SQL("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {} t")
        row = conn.execute(query.format(sql.Identifier(name))).fetchone()
        out[name] = row[0] if row else ""
    return out


# --- comparing states -----------------------------------------------------------------------


def found_keys(found: Found) -> dict[str, list[Row]]:
    """The keys of every row lawful found, per table."""
    return {name: list(table.rows) for name, table in found.tables.items() if table.rows}


def state_of(
    conn: psycopg.Connection[Any], keys: dict[str, list[Row]], key_columns: dict[str, Sequence[str]]
) -> dict[str, Any]:
    """The rows with these keys as they are now (deleted ones absent), and every row count."""
    rows: dict[str, set[Row]] = {}
    for name, values in keys.items():
        columns = key_columns[name]
        if len(columns) == 1:
            query = sql.SQL("SELECT * FROM {} WHERE {} = ANY(%s)").format(
                sql.Identifier(name), sql.Identifier(columns[0])
            )
            got = conn.execute(query, ([v[0] for v in values],)).fetchall()
        else:
            query = sql.SQL("SELECT * FROM {} WHERE ({}) = ({})").format(
                sql.Identifier(name),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            )
            got = []
            for value in values:
                got += conn.execute(query, value).fetchall()
        rows[name] = {tuple(r) for r in got}
    counts = {name: table_rows(conn, name) for name in key_columns}
    return {"rows": rows, "counts": counts}


def same_effect(
    server: Server,
    database: str,
    datasets: Datasets,
    key: str,
    identities: list[str],
    baseline: Callable[[psycopg.Connection[Any]], int],
) -> int:
    """Erase the subjects both ways and check the database ends up the same; rows changed.

    The baseline runs first in a transaction that is read, then rolled back; then lawful
    erases the same subjects (and commits).
    """
    found = datasets.find(identities)[key]
    keys = found_keys(found)
    graph = datasets.graph(key)
    key_columns = {name: plan.key for name, plan in graph.tables.items()}
    with server.connect(database, autocommit=False) as conn:
        changed = baseline(conn)
        theirs = state_of(conn, keys, key_columns)
        conn.rollback()
        report = datasets.erase(identities)[0]
        conn.rollback()
        ours = state_of(conn, keys, key_columns)
    if ours != theirs:
        diff = [
            name
            for name in key_columns
            if ours["rows"].get(name) != theirs["rows"].get(name)
            or ours["counts"][name] != theirs["counts"][name]
        ]
        raise AssertionError(f"lawful and the baseline leave different rows in {diff}")
    assert report.changed == changed, (report.changed, changed)
    return changed


def same_rows(found: Found, theirs: Rows) -> None:
    """lawful's rows (whole, as read) are the baseline's, table by table."""
    ours = {name: set(t.rows.values()) for name, t in found.tables.items() if t.rows}
    theirs = {name: rows for name, rows in theirs.items() if rows}
    if ours != theirs:
        diff = sorted(n for n in set(ours) | set(theirs) if ours.get(n) != theirs.get(n))
        raise AssertionError(f"lawful and the baseline find different rows in {diff}")


def execute(conn: psycopg.Connection[Any], query: str, *params: Any) -> psycopg.Cursor[Any]:
    """Run `query` (positional `%s`); a list written `= ANY(%s)` or `<> ALL(%s)` holding a
    single value is sent as `= %s` (`<> %s`): how a person writes the lookup of one
    customer, and what PostgreSQL plans once (it plans `= ANY(...)` anew each time).
    """
    parts = query.split("%s")
    assert len(parts) == len(params) + 1, query
    text, values = parts[0], []
    for param, rest in zip(params, parts[1:], strict=True):
        if (
            isinstance(param, list)
            and len(param) == 1
            and text.endswith(("ANY(", "ALL("))
            and rest.startswith(")")
        ):
            text, rest, param = text[:-4], rest[1:], param[0]
        text += "%s" + rest
        values.append(param)
    return conn.execute(text, values)  # type: ignore[arg-type]


# --- one database under test ----------------------------------------------------------------


class Baseline:
    """Hand-written SQL for one schema: what a person would write to find and erase."""

    def find(self, conn: psycopg.Connection[Any], email: str) -> Rows:
        raise NotImplementedError

    def erase(self, conn: psycopg.Connection[Any], emails: list[str]) -> int:
        """Erase these subjects in `conn`'s transaction (not committed); rows changed."""
        raise NotImplementedError


@dataclass
class Bench:
    """lawful opened on one benchmark database, and the baseline's own connections."""

    server: Server
    database: str
    datasets: Datasets
    key: str
    baseline: Baseline
    reader: psycopg.Connection[Any]  # autocommit: read-only lookups need no transaction
    writer: psycopg.Connection[Any]  # one transaction per erasure

    def find(self, i: int) -> Found:
        return self.datasets.find([f"email:{email(i)}"])[self.key]

    def their_find(self, i: int) -> Rows:
        return self.baseline.find(self.reader, email(i))

    def erase(self, subjects: Sequence[int]) -> Any:
        return self.datasets.erase([f"email:{email(i)}" for i in subjects])[0]

    def their_erase(self, subjects: Sequence[int]) -> int:
        changed = self.baseline.erase(self.writer, [email(i) for i in subjects])
        self.writer.commit()
        return changed

    def same_effect(self, subjects: Sequence[int]) -> int:
        return same_effect(
            self.server,
            self.database,
            self.datasets,
            self.key,
            [f"email:{email(i)}" for i in subjects],
            lambda conn: self.baseline.erase(conn, [email(i) for i in subjects]),
        )


@contextmanager
def opened(
    server: Server, database: str, datasets: Datasets, key: str, baseline: Baseline
) -> Iterator[Bench]:
    with (
        server.connect(database, autocommit=True) as reader,
        server.connect(database, autocommit=False) as writer,
    ):
        try:
            yield Bench(server, database, datasets, key, baseline, reader, writer)
        finally:
            datasets.close()


def email(i: int) -> str:
    return f"customer-{i}@example.com"


def single_subjects(
    bench: Bench,
    pool: list[int],
    n: int,
    rng: random.Random,
    *,
    find_ms: float | None = None,
    erase_ms: float | None = None,
    fides: bool = False,
) -> tuple[list[Figure], dict[str, Any]]:
    """Find, access and erase one subject at a time, lawful vs the baseline.

    `pool` is a shuffled list of customers nothing has erased yet; they are taken from
    its front: n to find, 20 to warm up, 1 to check erasure, n + n to erase.
    """
    need = 3 * n + 21
    if len(pool) < need:
        raise SystemExit(f"{need} customers are needed for {n} subjects; have {len(pool)}")
    to_find, warm = pool[:n], pool[n : n + 20]
    check = pool[n + 20]
    ours_erase, theirs_erase = pool[n + 21 : 2 * n + 21], pool[2 * n + 21 : 3 * n + 21]
    for i in warm[:10]:  # the pools, cached statements, the buffer cache
        bench.find(i)
        bench.their_find(i)
    for i in to_find[:5]:
        same_rows(bench.find(i), bench.their_find(i))
    sizes = [bench.find(i).total for i in to_find[:20]]
    facts: dict[str, Any] = {"rows_per_subject_median": statistics.median(sizes)}
    facts["find_statements"] = bench.find(to_find[0]).statements

    figures = []
    ours, theirs = interleaved(bench.find, bench.their_find, [(i, i) for i in to_find], rng)
    figures.append(timed("find one subject", ours, theirs, find_ms))
    ours, theirs = interleaved(
        lambda i: bench.datasets.access([f"email:{email(i)}"]),
        bench.their_find,
        [(i, i) for i in to_find],
        rng,
    )
    figures.append(
        timed(
            "access one subject (find + report)",
            ours,
            theirs,
            None,
            fides=FIDES["access"] if fides else None,
            ratio_target=False,
        )
    )

    facts["erase_check_rows_changed"] = bench.same_effect([check])
    for a, b in zip(warm[10:15], warm[15:20], strict=True):
        bench.erase([a])
        bench.their_erase([b])
    statements: list[int] = []
    ours, theirs = interleaved(
        lambda i: statements.append(bench.erase([i]).statements),
        lambda i: bench.their_erase([i]),
        list(zip(ours_erase, theirs_erase, strict=True)),
        rng,
    )
    facts["erase_statements_median"] = statistics.median(statements)
    figures.append(
        timed(
            "erase one subject",
            ours,
            theirs,
            erase_ms,
            fides=FIDES["erase"] if fides else None,
        )
    )
    return figures, facts


def timed(
    measure: str,
    ours: list[float],
    theirs: list[float],
    limit_ms: float | None,
    *,
    fides: float | None = None,
    ratio_target: bool = True,
) -> Figure:
    """A per-subject figure in ms, with its target: within 1.5x (and under `limit_ms`)."""
    figure = Figure(measure, "ms", [t * 1000 for t in ours], [t * 1000 for t in theirs], fides)
    goals = []
    met = True
    if ratio_target:
        goals.append("<= 1.5x SQL")
        met = figure.ratio <= 1.5
    if limit_ms is not None:
        goals.append(f"< {limit_ms:g} ms")
        met = met and statistics.median(figure.lawful) < limit_ms
    figure.target = ", ".join(goals) or "-"
    figure.met = met if goals else None
    return figure


def batch_figure(
    size: int, ours_s: float, ours_rows: int, theirs_s: float, theirs_rows: int
) -> Figure:
    figure = Figure(
        f"batch erasure of {size:,} subjects",
        "rows/s",
        [ours_rows / ours_s],
        [theirs_rows / theirs_s],
        note=f"lawful {ours_rows:,} rows in {ours_s:.2f} s, SQL {theirs_rows:,} rows in "
        f"{theirs_s:.2f} s",
    )
    figure.target = ">= 0.5x SQL rows/s"
    figure.met = figure.lawful[0] >= 0.5 * figure.baseline[0]
    return figure


# --- the peer shop --------------------------------------------------------------------------


class PeerSQL(Baseline):
    """Hand-written SQL for the peer shop, doing what its imported annotation says.

    Fides' import masks every personal column (NULL, or 0 and 1970-01-01 where the
    column is NOT NULL) and keeps the rows; an address another customer or another
    customer's order (not yet erased) still uses is left as it is.
    """

    def find(self, conn: psycopg.Connection[Any], email: str) -> Rows:
        customers = execute(conn, "SELECT * FROM customers WHERE email = %s", email).fetchall()
        ids = [c[0] for c in customers]
        newsletter = execute(
            conn, "SELECT * FROM newsletter_subscriptions WHERE email = %s", email
        ).fetchall()
        orders = execute(conn, "SELECT * FROM orders WHERE customer_id = ANY(%s)", ids).fetchall()
        logins = execute(
            conn, "SELECT * FROM login_events WHERE customer_id = ANY(%s)", ids
        ).fetchall()
        address_ids = ({c[5] for c in customers} | {o[2] for o in orders}) - {None}
        addresses = execute(
            conn, "SELECT * FROM addresses WHERE id = ANY(%s)", list(address_ids)
        ).fetchall()
        items = execute(
            conn, "SELECT * FROM order_items WHERE order_id = ANY(%s)", [o[0] for o in orders]
        ).fetchall()
        return {
            "customers": set(customers),
            "addresses": set(addresses),
            "orders": set(orders),
            "order_items": set(items),
            "login_events": set(logins),
            "newsletter_subscriptions": set(newsletter),
        }

    def erase(self, conn: psycopg.Connection[Any], emails: list[str]) -> int:
        """One statement per table, for one email or ten thousand."""
        cur = execute(
            conn,
            "UPDATE customers SET email = NULL, name = NULL, phone = NULL, birth_date = NULL "
            "WHERE email = ANY(%s) RETURNING id, address_id",
            emails,
        )
        customers = cur.fetchall()
        changed = cur.rowcount
        ids = [c[0] for c in customers]
        cur = execute(
            conn,
            "UPDATE orders SET total = 0, created_at = '1970-01-01T00:00:00+00:00' "
            "WHERE customer_id = ANY(%s) RETURNING shipping_address_id",
            ids,
        )
        shipped = {o[0] for o in cur.fetchall()}
        changed += cur.rowcount
        changed += execute(
            conn,
            "UPDATE order_items SET quantity = 0, unit_price = 0, gift_message = NULL "
            "WHERE order_id IN (SELECT id FROM orders WHERE customer_id = ANY(%s))",
            ids,
        ).rowcount
        changed += execute(
            conn,
            "UPDATE login_events SET ip_address = NULL, user_agent = NULL "
            "WHERE customer_id = ANY(%s)",
            ids,
        ).rowcount
        changed += execute(
            conn, "UPDATE newsletter_subscriptions SET email = NULL WHERE email = ANY(%s)", emails
        ).rowcount
        # The address goes unless someone else, not erased, still uses it.
        changed += execute(
            conn,
            """
            UPDATE addresses a
            SET street = NULL, city = NULL, state = NULL, postal_code = NULL, country = NULL
            WHERE a.id = ANY(%s)
            AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.address_id = a.id
                AND c.id <> ALL(%s)
                AND NOT (c.email IS NULL AND c.name IS NULL AND c.phone IS NULL
                         AND c.birth_date IS NULL))
            AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.shipping_address_id = a.id
                AND o.customer_id <> ALL(%s)
                AND NOT (o.total = 0 AND o.created_at = '1970-01-01T00:00:00+00:00'))
            """,
            list(({c[1] for c in customers} | shipped) - {None}),
            ids,
            ids,
        ).rowcount
        return changed


PEER_TABLES = (
    "customers",
    "addresses",
    "orders",
    "order_items",
    "login_events",
    "newsletter_subscriptions",
)


def peer_datasets(server: Server, database: str) -> Datasets:
    """The peer shop's Fides dataset imported as a lawful annotation, and opened."""
    text, _ = convert_fides_file(PEER / "shop_dataset.yml", url=server.url_of(database))
    loaded = load_dataset_text(text, "shop_dataset.yml (imported)")
    datasets = Datasets([loaded], mask_key=MASK_KEY)
    datasets.check()
    return datasets


def add_logins(conn: psycopg.Connection[Any], customer: int, n: int) -> None:
    """`n` more login events for `customer`, shaped like appdb.sql's."""
    conn.execute(
        """
        INSERT INTO login_events
        SELECT m.top + e, %(c)s,
               '10.' || (e %% 250) || '.' || (e %% 199) || '.' || (e %% 97),
               'Mozilla/5.0 (X11; Linux x86_64) build/' || (e %% 1000),
               timestamptz '2024-01-01' + e * interval '1 minute'
        FROM (SELECT max(id) AS top FROM login_events) m, generate_series(1, %(n)s) AS e
        """,
        {"c": customer, "n": n},
    )


def run_peer(server: Server, args: argparse.Namespace, rng: random.Random) -> Report:
    tag = secrets.token_hex(3)
    database = server.create(f"bench_peer_{tag}")
    customers, heavy = args.peer_customers, args.heavy_rows
    progress(f"peer-shop: loading appdb.sql with {customers:,} customers")
    start = time.perf_counter()
    server.psql(database, PEER / "appdb.sql", customers=customers)
    load_s = time.perf_counter() - start
    # Two copies of the database as loaded, for the batch: one for each side.
    copies = [server.create(f"bench_peer_{tag}_{side}", template=database) for side in "ab"]
    repeat = args.heavy_repeat
    with server.connect(database, autocommit=True) as conn:
        for customer in range(1, 2 * repeat + 1):
            add_logins(conn, customer, heavy)
        conn.execute("ANALYZE")
        total = sum(table_rows(conn, t) for t in (*PEER_TABLES, "products"))
    report = Report(
        "peer-shop",
        [
            f"PostgreSQL, {customers:,} customers, {total:,} rows (appdb.sql loaded in "
            f"{load_s:.0f} s), annotated by importing its Fides dataset",
            f"customers 1 to {2 * repeat} get {heavy:,} more login events each "
            f"({heavy + 20:,} in all; {heavy + 43:,} rows with their other rows): lawful "
            f"erases customers 1, 3, ... and the baseline 2, 4, ..., {repeat} each, in turn",
        ],
    )
    pool = list(range(2 * repeat + 1, customers + 1))
    rng.shuffle(pool)
    datasets = peer_datasets(server, database)
    with opened(server, database, datasets, "shop_appdb", PeerSQL()) as bench:
        progress("peer-shop: one subject at a time")
        figures, facts = single_subjects(
            bench, pool, args.subjects, rng, find_ms=10, erase_ms=20, fides=True
        )
        report.figures += figures
        report.facts |= facts
        progress("peer-shop: the heavy customers")
        report.figures.append(heavy_customers(bench, heavy, repeat, rng))
    progress("peer-shop: the batch, on two copies of the database as loaded")
    report.figures.append(peer_batch(server, copies, min(args.batch, customers)))
    return report


def heavy_customers(bench: Bench, heavy: int, repeat: int, rng: random.Random) -> Figure:
    """Customers 1, 3, ... erased by lawful and 2, 4, ... by the baseline, each once."""
    rows = bench.find(1).total
    ours, theirs = interleaved(
        lambda i: bench.erase([i]),
        lambda i: bench.their_erase([i]),
        [(2 * k + 1, 2 * k + 2) for k in range(repeat)],
        rng,
    )
    return Figure(
        f"erase a customer owning {rows:,} rows",
        "s",
        ours,
        theirs,
        FIDES["heavy"],
        target="< 1 s",
        met=statistics.median(ours) < 1.0,
        note=f"{heavy + 20:,} login events; each of {repeat} customers a side erased once",
    )


def peer_batch(server: Server, copies: list[str], size: int) -> Figure:
    """lawful erases customers 1..size in one copy, the baseline in the other; same result."""
    ours_db, theirs_db = copies
    subjects = list(range(1, size + 1))
    datasets = peer_datasets(server, ours_db)
    try:
        datasets.find([f"email:{email(1)}"])  # reflect the schema before the clock starts
        start = time.perf_counter()
        report = datasets.erase([f"email:{email(i)}" for i in subjects])[0]
        ours_s = time.perf_counter() - start
    finally:
        datasets.close()
    with server.connect(theirs_db, autocommit=False) as conn:
        conn.execute("SELECT 1").fetchall()
        conn.commit()
        start = time.perf_counter()
        theirs_rows = PeerSQL().erase(conn, [email(i) for i in subjects])
        conn.commit()
        theirs_s = time.perf_counter() - start
    with (
        server.connect(ours_db, autocommit=True) as a,
        server.connect(theirs_db, autocommit=True) as b,
    ):
        if fingerprint(a, PEER_TABLES) != fingerprint(b, PEER_TABLES):
            raise AssertionError("the batch left different databases behind")
    assert report.changed == theirs_rows, (report.changed, theirs_rows)
    return batch_figure(size, ours_s, report.changed, theirs_s, theirs_rows)


# --- the sample shop ------------------------------------------------------------------------

# What lawful's `phone` match ignores, removed; the digits are compared in E.164. (Nested
# replace() runs several times faster than translate() here, and may go parallel.)
PHONE_DIGITS = "phone"
for _noise in (" ", "-", "(", ")", ".", "/"):
    PHONE_DIGITS = f"replace({PHONE_DIGITS}, '{_noise}', '')"
# An erased customer: every masked column holds its masked value (the hash: '~' + 32 hex).
CUSTOMER_ERASED = (
    "c.email ~ '^~[0-9a-f]{32}$' AND c.phone IS NULL AND c.first_name = 'erased' "
    "AND c.last_name = 'erased' AND c.birth_date IS NULL AND c.address_id IS NULL"
)


def positions(table: sa.Table) -> dict[str, int]:
    return {name: i for i, name in enumerate(table.c.keys())}


class ShopSQL(Baseline):
    """Hand-written SQL for the sample shop, doing what `examples/shop/dataset.yaml` says.

    `expands` says which identity columns the annotation lets lead to more identities
    (`customers.phone`: a phone number found is searched for too); the baseline follows
    the same ones, so both find the same rows.
    """

    def __init__(self, expands: dict[str, bool]) -> None:
        from examples.shop import schema

        self.expands = expands
        self.c = positions(schema.customers)
        self.n = positions(schema.newsletter_subscriptions)
        self.a = positions(schema.agents)
        self.o = positions(schema.orders)

    def resolve(
        self, conn: psycopg.Connection[Any], emails: list[str]
    ) -> tuple[dict[Any, Row], dict[Any, Row], dict[Any, Row]]:
        """The customers, newsletter subscriptions and agents the emails lead to."""
        customers: dict[Any, Row] = {}
        newsletter: dict[Any, Row] = {}
        agents: dict[Any, Row] = {}
        seen: set[tuple[str, str]] = set()
        new = {("email", e) for e in emails}
        while new:
            seen |= new
            by_email = sorted(v for kind, v in new if kind == "email")
            by_phone = sorted(v for kind, v in new if kind == "phone")
            found_customers: list[Row] = []
            found_newsletter: list[Row] = []
            found_agents: list[Row] = []
            if by_email:
                found_customers += execute(
                    conn, "SELECT * FROM customers WHERE email = ANY(%s)", by_email
                ).fetchall()
                found_newsletter = execute(
                    conn,
                    "SELECT * FROM newsletter_subscriptions WHERE lower(email) = ANY(%s)",
                    by_email,
                ).fetchall()
                found_agents = execute(
                    conn, "SELECT * FROM agents WHERE email = ANY(%s)", by_email
                ).fetchall()
            if by_phone:
                found_customers += execute(
                    conn, f"SELECT * FROM customers WHERE {PHONE_DIGITS} = ANY(%s)", by_phone
                ).fetchall()
            new = set()
            for row in found_customers:
                customers[row[0]] = row
                if self.expands["customers.email"]:
                    new.add(_identity("email", row[self.c["email"]]))
                if self.expands["customers.phone"]:
                    new.add(_identity("phone", row[self.c["phone"]]))
            for row in found_newsletter:
                newsletter[row[0]] = row
                if self.expands["newsletter_subscriptions.email"]:
                    new.add(_identity("email", row[self.n["email"]]))
            for row in found_agents:
                agents[row[0]] = row
                if self.expands["agents.email"]:
                    new.add(_identity("email", row[self.a["email"]]))
            new -= seen | {None}
        return customers, newsletter, agents

    def find(self, conn: psycopg.Connection[Any], email: str) -> Rows:
        customers, newsletter, agents = self.resolve(conn, [email])
        ids = list(customers)

        def select(sql_text: str, *params: Any) -> list[Row]:
            return execute(conn, sql_text, *params).fetchall()

        orders = select("SELECT * FROM orders WHERE customer_id = ANY(%s)", ids)
        order_ids = [o[0] for o in orders]
        address_ids = {c[self.c["address_id"]] for c in customers.values()}
        address_ids |= {o[self.o["shipping_address_id"]] for o in orders}
        addresses = select("SELECT * FROM addresses WHERE id = ANY(%s)", list(address_ids))
        items = select("SELECT * FROM order_items WHERE order_id = ANY(%s)", order_ids)
        payments = select("SELECT * FROM payments WHERE order_id = ANY(%s)", order_ids)
        taxes = select(
            "SELECT * FROM tax_records WHERE payment_id = ANY(%s)", [p[0] for p in payments]
        )
        tickets = select("SELECT * FROM support_tickets WHERE customer_id = ANY(%s)", ids)
        messages = select(
            "SELECT * FROM ticket_messages WHERE ticket_id = ANY(%s) "
            "OR sender_customer_id = ANY(%s)",
            [t[0] for t in tickets],
            ids,
        )
        logins = select("SELECT * FROM login_events WHERE customer_id = ANY(%s)", ids)
        reviews = select("SELECT * FROM product_reviews WHERE customer_id = ANY(%s)", ids)
        referrals = select(
            "SELECT * FROM referrals WHERE referrer_id = ANY(%s) OR referred_id = ANY(%s)",
            ids,
            ids,
        )
        return {
            "customers": set(customers.values()),
            "addresses": set(addresses),
            "orders": set(orders),
            "order_items": set(items),
            "payments": set(payments),
            "tax_records": set(taxes),
            "support_tickets": set(tickets),
            "ticket_messages": set(messages),
            "agents": set(agents.values()),
            "newsletter_subscriptions": set(newsletter.values()),
            "login_events": set(logins),
            "product_reviews": set(reviews),
            "referrals": set(referrals),
        }

    def erase(self, conn: psycopg.Connection[Any], emails: list[str]) -> int:
        """Updates first (masks, and links to rows about to go), then deletes, children first.

        Order items, tax records and the orders' totals are kept (invoices); an address
        another customer or another customer's order still uses is kept; a referral goes
        only when the other customer is erased too.
        """
        customers, newsletter, agents = self.resolve(conn, emails)
        ids = list(customers)
        changed = 0

        def run(sql_text: str, *params: Any) -> psycopg.Cursor[Any]:
            nonlocal changed
            cur = execute(conn, sql_text, *params)
            changed += cur.rowcount
            return cur

        # The old shipping addresses come back through the self-join (RETURNING gives new values).
        shipped = run(
            "UPDATE orders o SET shipping_address_id = NULL FROM orders old "
            "WHERE old.id = o.id AND o.customer_id = ANY(%s) "
            "AND o.shipping_address_id IS NOT NULL RETURNING old.shipping_address_id",
            ids,
        ).fetchall()
        run(
            "UPDATE payments SET card_last4 = NULL WHERE card_last4 IS NOT NULL "
            "AND order_id IN (SELECT id FROM orders WHERE customer_id = ANY(%s))",
            ids,
        )
        run(
            "UPDATE product_reviews SET display_name = 'A former customer', body = NULL "
            "WHERE customer_id = ANY(%s) "
            "AND (display_name <> 'A former customer' OR body IS NOT NULL)",
            ids,
        )
        hashes = [keyed_hash(c[self.c["email"]], MASK_KEY, 254) for c in customers.values()]
        run(
            "UPDATE customers c SET email = v.hash, phone = NULL, first_name = 'erased', "
            "last_name = 'erased', birth_date = NULL, address_id = NULL "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, hash) WHERE c.id = v.id",
            ids,
            hashes,
        )
        if agents:
            run(
                "UPDATE agents a SET name = 'former agent', email = v.hash "
                "FROM unnest(%s::bigint[], %s::text[]) AS v(id, hash) WHERE a.id = v.id",
                list(agents),
                [keyed_hash(a[self.a["email"]], MASK_KEY, 254) for a in agents.values()],
            )
        # Two statements: an OR of the two would read the whole table for a batch.
        run(
            "DELETE FROM ticket_messages WHERE ticket_id IN "
            "(SELECT id FROM support_tickets WHERE customer_id = ANY(%s))",
            ids,
        )
        run("DELETE FROM ticket_messages WHERE sender_customer_id = ANY(%s)", ids)
        run("DELETE FROM support_tickets WHERE customer_id = ANY(%s)", ids)
        run("DELETE FROM login_events WHERE customer_id = ANY(%s)", ids)
        run("DELETE FROM newsletter_subscriptions WHERE id = ANY(%s)", list(newsletter))
        # A referral goes when each side is being erased now or was erased before. For a
        # batch, IN (SELECT unnest(...)) is a hashed semi-join, which an OR of `= ANY(...)`
        # is not; for a few ids `= ANY` uses the indexes.
        among = "= ANY(%s)" if len(ids) <= 100 else "IN (SELECT unnest(%s::bigint[]))"
        run(
            f"DELETE FROM referrals r WHERE (r.referrer_id {among} OR r.referred_id {among}) "
            f"AND (r.referrer_id {among} OR EXISTS (SELECT 1 FROM customers c "
            f"WHERE c.id = r.referrer_id AND {CUSTOMER_ERASED})) "
            f"AND (r.referred_id {among} OR EXISTS (SELECT 1 FROM customers c "
            f"WHERE c.id = r.referred_id AND {CUSTOMER_ERASED}))",
            ids,
            ids,
            ids,
            ids,
        )
        # The subjects' links to their addresses are NULL now: what nobody else uses goes.
        addresses = {c[self.c["address_id"]] for c in customers.values()}
        addresses |= {row[0] for row in shipped}
        run(
            "DELETE FROM addresses a WHERE a.id = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.address_id = a.id) "
            "AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.shipping_address_id = a.id)",
            list(addresses - {None}),
        )
        return changed


def _identity(kind: str, raw: Any) -> tuple[str, str] | None:
    """An identity found in a column, normalised as lawful normalises it (None if invalid)."""
    from lawful.subjects import IdentityError
    from lawful.subjects.identity import normalise

    if raw is None:
        return None
    try:
        return kind, normalise(kind, str(raw))
    except IdentityError:
        return None


def shop_expands(datasets: Datasets, key: str) -> dict[str, bool]:
    """Which identity columns of the shop's annotation expand, as lawful reads them."""
    graph = datasets.graph(key)
    out = {}
    for name, plan in graph.tables.items():
        for column, spec in plan.identities:
            out[f"{name}.{column}"] = spec.expands
    return out


def run_shop(server: Server, args: argparse.Namespace, rng: random.Random) -> Report:
    from examples.shop.generate import generate

    tag = secrets.token_hex(3)
    database = server.create(f"bench_shop_{tag}")
    customers = args.shop_customers
    progress(f"shop: generating {customers:,} customers")
    start = time.perf_counter()
    counts = generate(server.url_of(database), customers)
    gen_s = time.perf_counter() - start
    os.environ["SHOP_DATABASE_URL"] = server.url_of(database)
    datasets = Datasets([load_dataset(SHOP_DATASET)], mask_key=MASK_KEY)
    datasets.check()
    expands = shop_expands(datasets, "shop")
    following = sorted(c for c, on in expands.items() if on)
    report = Report(
        "shop",
        [
            f"PostgreSQL, {customers:,} customers, {counts.total:,} rows (generated in "
            f"{gen_s:.0f} s), annotated by examples/shop/dataset.yaml",
            "identity columns that expand (a value found is searched for too): "
            + (", ".join(following) or "none"),
        ],
    )
    pool = list(range(1, customers + 1))
    rng.shuffle(pool)
    n, size = args.subjects, args.batch
    with opened(server, database, datasets, "shop", ShopSQL(expands)) as bench:
        progress("shop: one subject at a time")
        figures, facts = single_subjects(bench, pool, n, rng)
        report.figures += figures
        report.facts |= facts
        rest = pool[3 * n + 21 :]
        if len(rest) < 2 * size + 50:
            size = (len(rest) - 50) // 2
        progress(f"shop: a batch of {size:,} subjects each way")
        report.facts["batch_check_rows_changed"] = bench.same_effect(rest[:50])
        ours_subjects, theirs_subjects = rest[50 : 50 + size], rest[50 + size : 50 + 2 * size]
        start = time.perf_counter()
        ours_rows = bench.erase(ours_subjects).changed
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs_rows = bench.their_erase(theirs_subjects)
        theirs_s = time.perf_counter() - start
        report.figures.append(batch_figure(size, ours_s, ours_rows, theirs_s, theirs_rows))
    return report


# --- whole requests on the peer shop (issue 5) ----------------------------------------------

# Ethyca Fides 2.86.2 answering whole requests on the peer shop (its README).
FIDES_REQUESTS = {
    "access": 0.56,  # s
    "erasure": 1.24,  # s
    "throughput": "1-2 req/s",
    "statements_access": "~750",
    "statements_erasure": "~1,570",
}
REQUEST_POLICY = ROOT / "examples" / "shop" / "policy.yaml"
REQUEST_TARGETS_MS = {"access": 50.0, "erasure": 100.0}
STATEMENTS_TARGET = 30
THROUGHPUT_TARGET = 100.0  # requests/s with 4 workers
_STATEMENT_KIND = re.compile(
    r"^\s*(?:(SELECT)\b.*?\bFROM\s+([\w.\"]+)|(INSERT)\s+INTO\s+([\w.\"]+)"
    r"|(UPDATE)\s+([\w.\"]+)|(DELETE)\s+FROM\s+([\w.\"]+)|(\w+))",
    re.IGNORECASE | re.DOTALL,
)


def statement_kind(text: str) -> str:
    """`UPDATE request_jobs`, `SELECT request_steps`...: the verb and the first table."""
    m = _STATEMENT_KIND.match(text)
    if m is None:
        return text.split(None, 1)[0].upper() if text.strip() else "?"
    groups = [g for g in m.groups() if g]
    verb, table = groups[0].upper(), (groups[1].strip('"') if len(groups) > 1 else "")
    if table.lower().startswith("unnest"):  # a batch of values joined to the table read
        joined = re.search(r"\bJOIN\s+([\w.\"]+)", text, re.IGNORECASE)
        table = f"{joined.group(1).strip(chr(34))} (by unnest)" if joined else table
    return f"{verb} {table}".strip()


class Statements:
    """Counts statements sent to lawful's store and to the company's datasets.

    The store's go through SQLAlchemy (`before_cursor_execute`); on PostgreSQL the
    datasets' go through psycopg's pipeline in `lawful.datasets.sql.Runner`, which
    counts them itself, so its `run` is wrapped (and cursor events inside it ignored).
    Transactions on the store are counted from its `commit` and `rollback` events.
    """

    def __init__(self, store_engine: sa.Engine, dataset_engines: Sequence[sa.Engine]) -> None:
        from lawful.datasets import sql as dataset_sql

        self.store: collections.Counter[str] = collections.Counter()
        self.dataset = 0
        self.transactions = 0
        self._inside_runner = threading.local()
        self._runner = dataset_sql.Runner
        self._run = self._runner.run
        counter = self

        def counted_run(runner: Any, queries: Any) -> list[Any]:
            counter.dataset += len(queries)
            counter._inside_runner.on = True
            try:
                return counter._run(runner, queries)
            finally:
                counter._inside_runner.on = False

        self._runner.run = counted_run  # type: ignore[method-assign]
        self._listeners: list[tuple[Any, str, Callable[..., None]]] = [
            (store_engine, "before_cursor_execute", self._on_store),
            (store_engine, "commit", self._on_end),
            (store_engine, "rollback", self._on_end),
        ]
        self._listeners += [(e, "before_cursor_execute", self._on_dataset) for e in dataset_engines]
        for target, name, fn in self._listeners:
            sa.event.listen(target, name, fn)

    def _on_store(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.store[statement_kind(statement)] += 1

    def _on_dataset(self, *_: Any) -> None:
        if not getattr(self._inside_runner, "on", False):
            self.dataset += 1

    def _on_end(self, _conn: Any) -> None:
        self.transactions += 1

    def snapshot(self) -> tuple[collections.Counter[str], int, int]:
        return collections.Counter(self.store), self.dataset, self.transactions

    def close(self) -> None:
        for target, name, fn in self._listeners:
            sa.event.remove(target, name, fn)
        self._runner.run = self._run  # type: ignore[method-assign]


@dataclass
class Done:
    """One request, end to end: its kind, time, and the statements it took."""

    kind: str
    ref: str
    seconds: float
    store: collections.Counter[str]
    dataset: int
    transactions: int

    @property
    def store_total(self) -> int:
        return sum(self.store.values())


class BareRequests:
    """The baseline for whole requests: the least a hand-written request system does, on
    the raw driver. Intake is one transaction on the store (the request row and its audit
    entry); the data work is PeerSQL's hand-written queries (an access reads the rows and
    stores them as JSON; an erasure runs its UPDATEs in one transaction, then reads the
    subject again to show nothing is left, as lawful's proof does); the close is one more
    transaction (the row completed with its result, an audit entry hash-chained to the
    one before). No steps, no crash recovery, no receipt, no messages: what lawful adds
    above this is the price of those."""

    SCHEMA = (
        "CREATE TABLE bare_requests (id bigserial PRIMARY KEY, ref text NOT NULL, "
        "kind text NOT NULL, identity_hash text NOT NULL, state text NOT NULL, "
        "received_at timestamptz NOT NULL, closed_at timestamptz, result jsonb)",
        "CREATE TABLE bare_audit (seq bigserial PRIMARY KEY, at timestamptz NOT NULL, "
        "kind text NOT NULL, ref text NOT NULL, data jsonb, hash text NOT NULL)",
    )

    def __init__(self, server: Server, store_db: str, peer_db: str) -> None:
        self.store = server.connect(store_db, autocommit=False)
        self.reader = server.connect(peer_db, autocommit=True)
        self.writer = server.connect(peer_db, autocommit=False)
        self.sql = PeerSQL()
        self.last_hash = ""
        for statement in self.SCHEMA:
            self.store.execute(statement)  # type: ignore[arg-type]
        self.store.commit()

    def _audit(self, kind: str, ref: str, data: dict[str, Any]) -> None:
        body = json.dumps({"kind": kind, "ref": ref, "data": data}, sort_keys=True, default=str)
        self.last_hash = hashlib.sha256((self.last_hash + body).encode()).hexdigest()
        self.store.execute(
            "INSERT INTO bare_audit (at, kind, ref, data, hash) VALUES (now(), %s, %s, %s, %s)",
            (kind, ref, json.dumps(data, default=str), self.last_hash),
        )

    def run(self, kind: str, customer: int) -> None:
        """One request, received to completed."""
        address = email(customer)
        ref = secrets.token_hex(16)
        self.store.execute(
            "INSERT INTO bare_requests (ref, kind, identity_hash, state, received_at) "
            "VALUES (%s, %s, %s, 'in_progress', now()) RETURNING id",
            (ref, kind, hashlib.sha256(address.encode()).hexdigest()),
        ).fetchone()
        self._audit("request.received", ref, {"kind": kind})
        self.store.commit()
        if kind == "access":
            rows = self.sql.find(self.reader, address)
            result = {t: [list(r) for r in found] for t, found in rows.items()}
        else:
            changed = self.sql.erase(self.writer, [address])
            self.writer.commit()
            left = self.sql.find(self.reader, address)
            if left["customers"]:
                raise AssertionError("the baseline's erasure left the customer findable")
            result = {"changed": changed}
        self.store.execute(
            "UPDATE bare_requests SET state = 'completed', closed_at = now(), result = %s "
            "WHERE ref = %s",
            (json.dumps(result, default=str), ref),
        )
        self._audit("request.completed", ref, {"kind": kind})
        self.store.commit()

    def close(self) -> None:
        for conn in (self.store, self.reader, self.writer):
            conn.close()


def request_engine(
    server: Server, store_db: str, peer_db: str, keyring_json: str
) -> tuple[Any, Any]:
    """lawful opened as a controller app would: its policy, its store on PostgreSQL, the
    peer shop as its dataset; messages kept in memory. (engine, sender)"""
    from lawful.engine import Engine
    from lawful.policy import load_policy
    from lawful.requests.messages import MemorySender
    from lawful.subjects import Keyring

    sender = MemorySender()
    engine = Engine.open(
        load_policy(REQUEST_POLICY),
        server.url_of(store_db),
        keyring=Keyring.from_json(keyring_json),
        datasets=peer_datasets(server, peer_db),
        sender=sender,
    )
    # The intake's floor (0.25 s, so that an unauthenticated caller can't tell a known
    # address from an unknown one by the time the answer takes) is a wait, not work,
    # and a signed-in assertion comes from the app, not a stranger: it is not timed here.
    engine.requests.intake_floor = 0.0
    # Reflect the dataset's tables and fill the pools before any clock starts.
    engine.datasets.find(["email:nobody@bench.invalid"])
    sender.sent.clear()
    return engine, sender


def submit_verified(engine: Any, kind: str, customer: int) -> str:
    """Submit a request as a signed-in app does (no code round trip); its ref."""
    from lawful.requests.verify import sign_assertion
    from lawful.subjects import Identity

    who = Identity.parse(f"email:{email(customer)}")
    token = sign_assertion(
        engine.keyring, controller=engine.policy.key, identity=who, now=datetime.now(UTC)
    )
    return engine.requests.submit(kind, who, jurisdiction="eu", assertion=token).ref


def one_request(engine: Any, counter: Statements, kind: str, customer: int) -> Done:
    """Submit (already verified) and run to completion; time and statements."""
    before = counter.snapshot()
    start = time.perf_counter()
    ref = submit_verified(engine, kind, customer)
    # One job, as a busy worker takes it; draining would add the poll that finds the
    # queue empty (one statement), which a worker pays once per idle spell, not per request.
    ran = engine.requests.run_pending(limit=1)
    seconds = time.perf_counter() - start
    after = counter.snapshot()
    if ran != 1:
        raise AssertionError(f"{ran} jobs ran for one request")
    store = after[0]
    store.subtract(before[0])
    return Done(kind, ref, seconds, +store, after[1] - before[1], after[2] - before[2])


def check_requests(engine: Any, done: Sequence[Done]) -> None:
    """Every request closed as completed with a signed receipt; the audit log's chain holds;
    the erased customers are no longer found in the peer shop (plain SQL)."""
    from lawful.audit import AuditLog

    for d in done:
        view = engine.requests.show(d.ref)
        if view.state not in ("completed", "partially_completed") or view.receipt is None:
            raise AssertionError(f"request {d.ref} ({d.kind}) ended {view.state}")
    if not engine.requests.check_receipt(done[-1].ref):
        raise AssertionError("the last receipt does not check")
    if not AuditLog(engine.store, engine.policy.key).verify().ok:
        raise AssertionError("the audit log's chain is broken")


def erased_left(server: Server, peer_db: str, customers: Sequence[int]) -> int:
    """How many of these customers' emails are still in the peer shop."""
    with server.connect(peer_db, autocommit=True) as conn:
        row = execute(
            conn,
            "SELECT count(*) FROM customers WHERE email = ANY(%s)",
            [email(i) for i in customers],
        ).fetchone()
    assert row is not None
    return int(row[0])


def request_worker(
    admin_url: str,
    store_db: str,
    peer_db: str,
    keyring_json: str,
    barrier: Any,
    finished: Any,
    results: Any,
) -> None:
    """A worker process: its own Engine; waits for the start, then drains the queue, and
    keeps its connections until the CPU they used has been read (`finished`)."""
    engine, _ = request_engine(Server(admin_url), store_db, peer_db, keyring_json)
    try:
        with engine.store.engine.connect() as conn:  # the store's pool, warm
            conn.execute(sa.text("SELECT 1"))
        barrier.wait()
        cpu = time.process_time()
        ran = engine.requests.run_pending()
        results.put((ran, time.perf_counter(), time.process_time() - cpu))
        finished.wait(timeout=120)
    finally:
        engine.close()


def drain(
    server: Server,
    store_db: str,
    peer_db: str,
    keyring_json: str,
    workers: int,
) -> tuple[int, float]:
    """Start `workers` processes, let them drain the queue; (requests run, seconds)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    finished = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    admin = server.url.render_as_string(hide_password=False)
    procs = [
        ctx.Process(
            target=request_worker,
            args=(admin, store_db, peer_db, keyring_json, barrier, finished, results),
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=120)
        start = time.perf_counter()
        server_before = postgres_cpu()
        got = [results.get(timeout=600) for _ in procs]
        # Read while the workers' connections are still open (they wait for `finished`).
        server_cpu = cpu_between(server_before, postgres_cpu())
        finished.wait(timeout=120)
    finally:
        for proc in procs:
            proc.join(timeout=60)
    if any(proc.exitcode != 0 for proc in procs):
        raise AssertionError("a worker process failed")
    ran = sum(n for n, _, _ in got)
    return Drained(
        ran, max(end for _, end, _ in got) - start, sum(cpu for _, _, cpu in got), server_cpu
    )


@dataclass
class Drained:
    """A drain: requests run, seconds from the start to the last worker's end, and the CPU
    seconds the workers and (on Linux) every PostgreSQL process used meanwhile."""

    ran: int
    seconds: float
    worker_cpu: float
    server_cpu: float | None

    def cpu_note(self) -> str:
        """CPU per request, and the rate it allows when every core does nothing else."""
        per = (self.worker_cpu + (self.server_cpu or 0.0)) / self.ran
        text = f"CPU per request {self.worker_cpu / self.ran * 1000:.1f} ms in the workers"
        if self.server_cpu is not None:
            text += f" + {self.server_cpu / self.ran * 1000:.1f} ms in PostgreSQL"
        cores = os.cpu_count() or 1
        return f"{text}: at most {cores / per:.0f} req/s on {cores} idle cores"


def postgres_cpu() -> dict[int, int] | None:
    """CPU ticks used so far by each PostgreSQL process on this machine, by pid (Linux's
    /proc; None elsewhere). The datasets and the store are on the same server."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    ticks: dict[int, int] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :]
        if name.startswith("postgres"):
            fields = rest.split()
            ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def cpu_between(before: dict[int, int] | None, after: dict[int, int] | None) -> float | None:
    """CPU seconds the PostgreSQL processes used between two readings (a process that
    started meanwhile counts whole; one that ended is not seen)."""
    if before is None or after is None:
        return None
    used = sum(t - before.get(pid, 0) for pid, t in after.items())
    return used / os.sysconf("SC_CLK_TCK")


def run_requests(server: Server, args: argparse.Namespace, rng: random.Random) -> Report:
    from lawful.subjects import Keyring

    tag = secrets.token_hex(3)
    peer_db = server.create(f"bench_reqpeer_{tag}")
    store_db = server.create(f"bench_store_{tag}")
    n = args.requests
    customers = args.peer_customers
    progress(f"requests: loading the peer shop ({customers:,} customers), a fresh store")
    server.psql(peer_db, PEER / "appdb.sql", customers=customers)
    with server.connect(peer_db, autocommit=True) as conn:
        conn.execute("ANALYZE")
    keyring_json = Keyring.generate().to_json()
    pool = list(range(1, customers + 1))
    rng.shuffle(pool)
    warm, pool = pool[:10], pool[10:]
    # One subject per request: n access + n erasure timed, as many for the baseline, then
    # 2n for each throughput run.
    need = 8 * n + 10
    if len(pool) < need:
        raise SystemExit(f"{need + 10} customers are needed for --requests {n}")
    report = Report(
        "peer-shop requests",
        [
            f"whole data-subject requests: PostgreSQL, the peer shop ({customers:,} customers, "
            "its Fides dataset imported) as the dataset; lawful's store a fresh database on "
            "the same server",
            f"policy {REQUEST_POLICY.relative_to(ROOT)}; each request submitted already verified "
            "(a signed-in app's assertion), run to completion: steps recorded, audit events, "
            "messages sent (in memory), signed receipt",
            f"{os.cpu_count()} CPU cores; other work runs on the machine",
        ],
    )
    engine, _sender = request_engine(server, store_db, peer_db, keyring_json)
    counter = Statements(
        engine.store.engine, [engine.datasets.engine(k) for k in engine.datasets.loaded]
    )
    try:
        progress(f"requests: {n} access and {n} erasure requests, one at a time")
        for i, customer in enumerate(warm):
            one_request(engine, counter, "access" if i % 2 else "erasure", customer)
        plan = [("access", c) for c in pool[:n]] + [("erasure", c) for c in pool[n : 2 * n]]
        rng.shuffle(plan)
        # The baseline does the same kinds in the same order for other customers, request
        # by request, alternating which of the two goes first (load falls on both).
        bare_warm, bare_pool = pool[-(2 * n + 10) : -2 * n], pool[-2 * n :]
        theirs = [(kind, c) for (kind, _), c in zip(plan, bare_pool, strict=True)]
        bare = BareRequests(server, store_db, peer_db)
        for i, c in enumerate(bare_warm):
            bare.run("access" if i % 2 else "erasure", c)
        done: list[Done] = []
        bare_seconds: dict[str, list[float]] = {"access": [], "erasure": []}
        try:
            for i, ((kind, c), (_, other)) in enumerate(zip(plan, theirs, strict=True)):
                if i % 2:
                    bare_seconds[kind].append(clock(functools.partial(bare.run, kind, other)))
                done.append(one_request(engine, counter, kind, c))
                if not i % 2:
                    bare_seconds[kind].append(clock(functools.partial(bare.run, kind, other)))
        finally:
            bare.close()
        check_requests(engine, done)
        erased = [c for kind, c in plan if kind == "erasure"]
        if erased_left(server, peer_db, erased):
            raise AssertionError("an erased customer's email is still in the peer shop")
        by_kind = {kind: [d for d in done if d.kind == kind] for kind in ("access", "erasure")}
        for kind, items in by_kind.items():
            target = REQUEST_TARGETS_MS[kind]
            ms = [d.seconds * 1000 for d in items]
            report.figures.append(
                Figure(
                    f"{kind} request, end to end",
                    "ms",
                    ms,
                    [s * 1000 for s in bare_seconds[kind]],
                    fides=FIDES_REQUESTS[kind],
                    target=f"< {target:g} ms",
                    met=statistics.median(ms) < target,
                    note="submit (verified) -> completed, receipt signed; baseline: a bare "
                    "hand-written request (BareRequests)",
                )
            )
        for kind, items in by_kind.items():
            counts = [float(d.store_total) for d in items]
            report.figures.append(
                Figure(
                    f"store statements per {kind}",
                    "stmts",
                    counts,
                    [],
                    target=f"<= {STATEMENTS_TARGET}",
                    met=statistics.median(counts) <= STATEMENTS_TARGET,
                    fides_text=FIDES_REQUESTS[f"statements_{kind}"],
                )
            )
        for kind, items in by_kind.items():
            report.facts[f"store_transactions_per_{kind}"] = statistics.median(
                d.transactions for d in items
            )
        for kind, items in by_kind.items():
            report.facts[f"dataset_statements_per_{kind}"] = statistics.median(
                d.dataset for d in items
            )
        breakdown = {kind: statement_breakdown(items) for kind, items in by_kind.items()}
        report.details["statements_by_kind"] = breakdown
        for kind, rows in breakdown.items():
            report.lines.append(f"store statements per {kind} request, by kind (median):")
            report.lines += [f"  {count:>4g}  {name}" for name, count in rows.items()]
    finally:
        counter.close()
        engine.close()

    rest = pool[2 * n :]
    for workers in (1, 4):
        batch, rest = rest[: 2 * n], rest[2 * n :]
        progress(f"requests: {len(batch)} queued, drained by {workers} worker process(es)")
        engine, _sender = request_engine(server, store_db, peer_db, keyring_json)
        try:
            kinds = ["access", "erasure"] * n
            rng.shuffle(kinds)
            for kind, customer in zip(kinds, batch, strict=True):
                submit_verified(engine, kind, customer)
            drained = drain(server, store_db, peer_db, keyring_json, workers)
            ran, seconds = drained.ran, drained.seconds
            if ran != len(batch):
                raise AssertionError(f"{workers} workers ran {ran} of {len(batch)} requests")
            open_left = engine.requests.list()
            if open_left:
                raise AssertionError(f"{len(open_left)} requests still open after the drain")
            from lawful.audit import AuditLog

            if not AuditLog(engine.store, engine.policy.key).verify().ok:
                raise AssertionError("the audit log's chain is broken")
        finally:
            engine.close()
        rate = ran / seconds
        figure = Figure(
            f"throughput, {workers} worker process{'es' if workers > 1 else ''}",
            "req/s",
            [rate],
            [],
            fides_text=FIDES_REQUESTS["throughput"],
            note=f"{ran} requests (half access, half erasure) in {seconds:.2f} s; "
            + drained.cpu_note(),
        )
        if workers == 4:
            figure.target = f">= {THROUGHPUT_TARGET:g} req/s"
            figure.met = rate >= THROUGHPUT_TARGET
        report.figures.append(figure)
    return report


def statement_breakdown(items: Sequence[Done]) -> dict[str, float]:
    """The median count of each statement kind per request, most frequent first."""
    names = {name for d in items for name in d.store}
    medians = {name: statistics.median(d.store.get(name, 0) for d in items) for name in names}
    return dict(sorted(((k, v) for k, v in medians.items() if v), key=lambda kv: (-kv[1], kv[0])))


# --- output ---------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def show(value: float, unit: str) -> str:
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "req/s":
        return f"{value:,.1f} req/s"
    if unit == "stmts":
        return f"{value:g} stmts"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.2f} ms"


def spread(values: Sequence[float], unit: str) -> str:
    """median / p95, or the one value."""
    if len(values) == 1:
        return show(values[0], unit)
    if unit == "stmts":
        return f"{statistics.median(values):g} / {p95(values):g} stmts"
    digits = 3 if unit == "s" else 2
    return f"{statistics.median(values):.{digits}f} / {p95(values):.{digits}f} {unit}"


def render(report: Report) -> str:
    lines = [f"== {report.database} =="]
    lines += [f"   {text}" for text in report.description]
    header = (
        f"{'measure':<38} {'lawful median / p95':>24} {'hand-written SQL':>24} {'ratio':>7}"
        f" {'Fides 2.86.2':>13}  {'target':<24} met"
    )
    lines += [header, "-" * len(header)]
    for f in report.figures:
        ours = spread(f.lawful, f.unit)
        theirs = spread(f.baseline, f.unit) if f.baseline else "-"
        ratio = f"{f.ratio:>6.2f}x" if f.ratio is not None else f"{'-':>7}"
        if f.fides_text is not None:
            fides = f.fides_text
        else:
            fides = f"{f.fides:g} s" if f.fides is not None else "-"
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        lines.append(
            f"{f.measure:<38} {ours:>24} {theirs:>24} {ratio} {fides:>13}  {f.target:<24} {met}"
        )
        if f.note:
            lines.append(f"{'':<38} {f.note}")
    facts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.facts.items())
    lines.append(f"   ({facts})")
    if any(f.baseline for f in report.figures):
        lines.append(
            "   ratio: lawful's median over the SQL's (for rows/s: the SQL's over lawful's)"
        )
    lines += [f"   {text}" for text in report.lines]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", default=PG_ADMIN, help="an existing database on the server")
    parser.add_argument("--subjects", type=int, default=200, help="per sample (default 200)")
    parser.add_argument("--batch", type=int, default=10_000, help="subjects per batch")
    parser.add_argument("--peer-customers", type=int, default=10_000)
    parser.add_argument("--heavy-rows", type=int, default=50_000)
    parser.add_argument("--heavy-repeat", type=int, default=3, help="heavy customers a side")
    parser.add_argument("--shop-customers", type=int, default=1_000_000)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-shop", action="store_true")
    parser.add_argument("--skip-requests", action="store_true", help="no whole requests")
    parser.add_argument(
        "--requests", type=int, default=60, help="requests per kind and sample (default 60)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    rng = random.Random(seed)
    server = Server(args.pg)
    reports = []
    try:
        runs = [
            (args.skip_peer, run_peer),
            (args.skip_requests, run_requests),
            (args.skip_shop, run_shop),
        ]
        for skip, run in runs:
            if skip:
                continue
            report = run(server, args, rng)
            reports.append(report)
            if not args.json:
                print(render(report), flush=True)
                print()
    finally:
        if args.keep:
            progress(f"kept: {', '.join(server.created)}")
        else:
            server.drop_all()
    if args.json:
        json.dump(
            {"seed": seed, "subjects": args.subjects, "runs": [r.to_dict() for r in reports]},
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print(f"(seed {seed})")
    return 0 if all(f.met is not False for r in reports for f in r.figures) else 1


if __name__ == "__main__":
    sys.exit(main())
