"""The statements under the walk and erasure: key lists in each form, the runner that sends
a step's statements together, and the paths taken for speed (PostgreSQL arrays, rows
picked by their link), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from lawful.datasets import Datasets, load_dataset_text
from lawful.datasets import sql as lsql
from lawful.datasets.erase import plan_erasure
from lawful.datasets.sql import KeyList, Runner, Statement
from lawful.datasets.traverse import traverse
from lawful.subjects import Identity
from tests.datasets import forum

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("code", sa.CHAR(3)),
)
pairs = sa.Table(
    "pairs",
    metadata,
    sa.Column("x", sa.Integer, primary_key=True),
    sa.Column("y", sa.Integer, primary_key=True),
    sa.Column("note", sa.String(20)),
)


@pytest.fixture
def engine(app_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(app_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            items.insert(),
            [{"id": i, "name": f"Item-{i}", "code": f"c{i % 10}"} for i in range(1, 21)],
        )
        conn.execute(
            pairs.insert(), [{"x": x, "y": y, "note": "n"} for x in (1, 2) for y in (1, 2)]
        )
    yield engine
    engine.dispose()


def picked(conn: sa.Connection, keys: KeyList, table: sa.Table, values: list[tuple]) -> set:
    """The keys of the rows `keys` picks for `values`, one statement per batch."""
    out = set()
    key_columns = list(table.primary_key.columns)
    for start in range(0, len(values), keys.batch):
        one, params = keys.form(values[start : start + keys.batch])
        stmt = Statement(sa.select(*key_columns).where(keys.condition(one)))
        (rows,) = Runner(conn).run([(stmt, params)])
        out |= {tuple(r) for r in rows}
    return out


@pytest.mark.parametrize("size", [1, 3, 7])
def test_key_lists_pick_exactly_the_rows_with_the_values(
    engine: sa.Engine, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = engine.dialect.name
    monkeypatch.setattr(lsql, "ARRAY_BATCH", 3)  # more values than a batch: several statements
    monkeypatch.setitem(lsql.BATCH, backend, 3)
    wanted = list(range(2, 2 + size))
    with engine.connect() as conn:
        by_id = KeyList([items.c.id], "k", backend)
        assert by_id.arrays == (backend == "postgresql")
        assert picked(conn, by_id, items, [(i,) for i in wanted]) == {(i,) for i in wanted}
        # An expression compared with text values (as a casefolded identity is).
        by_name = KeyList([sa.func.lower(items.c.name)], "n", backend, [sa.String()])
        names = [(f"item-{i}",) for i in wanted]
        assert picked(conn, by_name, items, names) == {(i,) for i in wanted}
        # A composite key: unnest() of one array per column on PostgreSQL.
        by_pair = KeyList([pairs.c.x, pairs.c.y], "p", backend)
        assert by_pair.arrays == (backend == "postgresql")
        chosen = [(1, 2), (2, 1), (2, 2)][:size]
        assert picked(conn, by_pair, pairs, chosen) == set(chosen)
        # Nothing matches values that aren't there.
        assert picked(conn, by_id, items, [(999,)]) == set()


def test_a_padded_char_column_keeps_the_in_list(engine: sa.Engine) -> None:
    backend = engine.dialect.name
    keys = KeyList([items.c.code], "c", backend)
    assert not keys.arrays  # CHAR compares padded: no array cast for it
    with engine.connect() as conn:
        assert picked(conn, keys, items, [("c1",), ("c2",)]) == {(1,), (2,), (11,), (12,)}


def test_a_step_runs_in_order_and_gives_rows_and_counts(engine: sa.Engine) -> None:
    backend = engine.dialect.name
    keys = KeyList([items.c.id], "k", backend)
    _, params = keys.form([(1,), (2,), (3,)])
    rename = Statement(sa.update(items).where(keys.where).values(name="renamed"))
    read = Statement(sa.select(items.c.id, items.c.name).where(keys.where))
    drop = Statement(sa.delete(items).where(keys.where))
    with engine.begin() as conn:
        runner = Runner(conn)
        assert runner.pipelined == (backend == "postgresql")
        counted, rows, deleted, after = runner.run(
            [(rename, params), (read, params), (drop, params), (read, params)]
        )
        assert counted == 3 and deleted == 3
        assert sorted(tuple(r) for r in rows) == [(1, "renamed"), (2, "renamed"), (3, "renamed")]
        assert after == []
        assert runner.statements == 4
        # An INSERT (its columns come from the parameters) goes through SQLAlchemy.
        runner.run([(Statement(sa.insert(items)), {"id": 1, "name": "back"})])
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(items)) == 18


def test_a_failing_step_raises_what_sqlalchemy_raises_and_writes_nothing(
    engine: sa.Engine,
) -> None:
    backend = engine.dialect.name
    keys = KeyList([items.c.id], "k", backend)
    rename = Statement(sa.update(items).where(keys.where).values(name="renamed"))
    clash = Statement(sa.update(items).where(keys.where).values(id=1))  # id 1 is taken
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        Runner(conn).run([(rename, keys.params([(1,), (2,)])), (clash, keys.params([(2,)]))])
    with engine.connect() as conn:
        assert conn.scalar(sa.select(items.c.name).where(items.c.id == 1)) == "Item-1"


def test_the_walk_and_erasure_in_batches_of_one_find_and_erase_the_same(
    app_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every list split into batches of one value: many statements per table per step."""
    forum.build(app_url)
    monkeypatch.setenv("FORUM_DATABASE_URL", app_url)
    alice = ["email:alice@example.com"]
    with Datasets([load_dataset_text(forum.ANNOTATION, "forum.yaml")], mask_key=b"k" * 32) as ds:
        normal = ds.find(alice)["forum"]
        expected = {name: dict(t.ranks) for name, t in normal.tables.items()}
        dry = ds.erase(alice, dry_run=True)[0].to_dict()
        backend = ds.graph("forum").backend
    monkeypatch.setattr(lsql, "ARRAY_BATCH", 1)
    monkeypatch.setitem(lsql.BATCH, backend, 1)
    with Datasets([load_dataset_text(forum.ANNOTATION, "forum.yaml")], mask_key=b"k" * 32) as ds:
        small = ds.find(alice)["forum"]
        assert {name: dict(t.ranks) for name, t in small.tables.items()} == expected
        assert small.statements > normal.statements
        assert ds.erase(alice, dry_run=True)[0].to_dict() == dry
        assert ds.erase(alice)[0].to_dict() | {"dry_run": True} == dry


SHOP_CUSTOMER = 5


def test_rows_reached_through_one_link_are_erased_by_its_values(shop: Datasets) -> None:
    """Login events go by `customer_id = <the customer>`, not by the key of each one."""
    graph = shop.graph("shop")
    engine = shop.engine("shop")
    subject = [Identity.parse(f"account:{SHOP_CUSTOMER}")]
    with engine.connect() as conn:
        found = traverse(conn, graph, subject, columns="erase")
        works, _ = plan_erasure(conn, found, b"k" * 32)
        logins = found.tables["login_events"]
        others = conn.scalar(
            sa.text("SELECT COUNT(*) FROM login_events WHERE customer_id <> :c"),
            {"c": SHOP_CUSTOMER},
        )
    assert logins.rows and works["login_events"].through is not None
    assert works["login_events"].through_values == [(SHOP_CUSTOMER,)]
    # Several owner links (ticket messages) or a table found by identity: by key.
    assert works["ticket_messages"].through is None
    assert works["customers"].through is None
    (report,) = shop.erase([f"account:{SHOP_CUSTOMER}"])
    outcome = next(t for t in report.tables if t.table == "login_events")
    assert outcome.deleted == len(logins.rows)
    with engine.connect() as conn:
        left = conn.scalar(
            sa.text("SELECT COUNT(*) FROM login_events WHERE customer_id = :c"),
            {"c": SHOP_CUSTOMER},
        )
        assert left == 0
        assert conn.scalar(sa.text("SELECT COUNT(*) FROM login_events")) == others


def test_rows_partly_erased_already_are_picked_by_key(shop: Datasets) -> None:
    """A row already masked is left out of the statement: it goes by the keys of the rest."""
    engine = shop.engine("shop")
    with engine.begin() as conn:
        orders = [
            r[0]
            for r in conn.execute(
                sa.text("SELECT id FROM orders WHERE customer_id = :c ORDER BY id"),
                {"c": SHOP_CUSTOMER},
            )
        ]
        if len(orders) < 2:
            pytest.skip("the generated customer has fewer than two orders")
        conn.execute(
            sa.text("UPDATE orders SET shipping_address_id = NULL WHERE id = :o"),
            {"o": orders[0]},
        )
    subject = [Identity.parse(f"account:{SHOP_CUSTOMER}")]
    with engine.connect() as conn:
        found = traverse(conn, shop.graph("shop"), subject, columns="erase")
        works, _ = plan_erasure(conn, found, b"k" * 32)
    assert works["orders"].through is None
    assert works["orders"].masked == [(o,) for o in orders[1:]]
    (report,) = shop.erase([f"account:{SHOP_CUSTOMER}"])
    outcome = next(t for t in report.tables if t.table == "orders")
    assert (outcome.anonymized, outcome.unchanged) == (len(orders) - 1, 1)
    with engine.connect() as conn:
        assert (
            conn.scalar(
                sa.text(
                    "SELECT COUNT(*) FROM orders WHERE customer_id = :c "
                    "AND shipping_address_id IS NOT NULL"
                ),
                {"c": SHOP_CUSTOMER},
            )
            == 0
        )
