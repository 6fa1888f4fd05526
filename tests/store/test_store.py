"""The store on SQLite and PostgreSQL: migrations, policy versions, errors."""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from lawful.store import DEFAULT_STORE_URL, PolicyVersion, Store, StoreError, open_store
from lawful.store.schema import all_tables
from lawful.store.tables import controllers, policy_versions
from lawful.store.types import UTCDateTime

HEAD = "0012"  # the newest migration

PASSWORD = "s3cret-pw"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record(store: Store, text: str, key: str = "seestar-store", **kwargs: Any):
    kwargs.setdefault("label", None)
    kwargs.setdefault("effective_date", None)
    return store.record_policy_version(
        key, "Seestar Store", text=text, content_hash=sha(text), **kwargs
    )


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def table_names(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def schema_differences(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, all_tables())


# -- migrations ----------------------------------------------------------------------


def test_upgrade_empty_database_to_head(store_url: str) -> None:
    with open_store(store_url, upgrade=False) as store:
        assert store.current_revision() is None
        assert store.head_revision() == HEAD
        store.upgrade()
        assert store.current_revision() == HEAD
        assert {"controllers", "policy_versions"} <= table_names(store)
    # Opening an up-to-date store again migrates nothing and works.
    with open_store(store_url) as store:
        assert store.current_revision() == HEAD


def test_upgrade_from_previous_revision_keeps_rows(store_url: str) -> None:
    with open_store(store_url, upgrade=False) as store:
        store.upgrade("0001")
        assert store.current_revision() == "0001"
        # The tables as revision 0001 made them, without changes/material.
        old_versions = sa.table(
            "policy_versions",
            sa.column("controller_id", sa.Integer),
            sa.column("number", sa.Integer),
            sa.column("content_hash", sa.String),
            sa.column("label", sa.String),
            sa.column("effective_date", sa.Date),
            sa.column("text", sa.Text),
            sa.column("loaded_at", UTCDateTime()),
        )
        loaded_at = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
        with store.engine.begin() as conn:
            controller_id = conn.execute(
                controllers.insert().values(key="old", name="Old Ltd", created_at=loaded_at)
            ).inserted_primary_key[0]
            conn.execute(
                old_versions.insert().values(
                    controller_id=controller_id,
                    number=1,
                    content_hash=sha("v1"),
                    label="2025-03",
                    effective_date=date(2025, 3, 1),
                    text="v1",
                    loaded_at=loaded_at,
                )
            )

        store.upgrade()
        assert store.current_revision() == HEAD
        [version] = store.policy_versions("old")
        assert (version.number, version.label, version.text) == (1, "2025-03", "v1")
        assert version.effective_date == date(2025, 3, 1)
        assert version.loaded_at == loaded_at
        assert version.material is False
        assert version.changes is None
        with store.engine.connect() as conn:
            assert (
                conn.scalar(sa.select(sa.func.count()).where(policy_versions.c.changes.is_(None)))
                == 1
            )
        # The next version continues the numbering.
        assert record(store, "v2", key="old")[0].number == 2


def test_downgrade_to_base_and_back(store: Store) -> None:
    record(store, "v1")
    store.downgrade("0001")
    assert store.current_revision() == "0001"
    assert [v.number for v in _rows_0001(store)] == [1]
    store.downgrade("base")
    assert store.current_revision() is None
    assert not {"controllers", "policy_versions"} & table_names(store)
    store.upgrade()
    assert store.current_revision() == HEAD
    assert store.policy_versions("seestar-store") == []


def _rows_0001(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT number FROM policy_versions")))


def test_migrations_build_exactly_the_tables(store: Store) -> None:
    assert schema_differences(store) == []
    # The comparison does see a schema that is behind.
    store.downgrade("0001")
    missing = {diff[3].name for diff in schema_differences(store) if diff[0] == "add_column"}
    assert missing == {"changes", "material", "renew_consent"}


# -- policy versions -----------------------------------------------------------------


def test_record_policy_version(store: Store) -> None:
    assert store.latest_policy_version("seestar-store") is None
    assert store.policy_versions("seestar-store") == []

    first, created = record(store, "v1", label="1.0", effective_date=date(2025, 1, 1))
    assert created is True
    assert (first.number, first.controller_key, first.label) == (1, "seestar-store", "1.0")
    assert first.effective_date == date(2025, 1, 1)
    assert (first.text, first.content_hash) == ("v1", sha("v1"))
    assert (first.changes, first.material) == (None, False)

    again, created = record(store, "v1", label="1.0")
    assert created is False
    assert again == first

    changes = [{"path": "purposes.marketing", "kind": "added", "material": True}]
    second, created = record(store, "v2", label="2.0", changes=changes, material=True)
    assert created is True
    assert second.number == 2
    assert (second.changes, second.material) == (changes, True)

    assert store.latest_policy_version("seestar-store") == second
    assert store.policy_versions("seestar-store") == [first, second]
    # Going back to an earlier text makes it current again: a new version.
    third, created = record(store, "v1")
    assert (third.number, third.content_hash, created) == (3, first.content_hash, True)


def test_versions_are_per_controller(store: Store) -> None:
    a, _ = record(store, "same text", key="alpha")
    b, _ = record(store, "same text", key="beta")
    assert (a.number, b.number) == (1, 1)
    assert a.id != b.id
    assert record(store, "beta 2", key="beta")[0].number == 2
    assert [v.number for v in store.policy_versions("alpha")] == [1]
    assert [v.number for v in store.policy_versions("beta")] == [1, 2]


def test_ensure_controller_is_idempotent_and_updates_name(store: Store) -> None:
    first = store.ensure_controller("acme", "Acme")
    assert store.ensure_controller("acme", "Acme") == first
    assert store.ensure_controller("acme", "Acme Ltd") == first
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(controllers.c.name)) == "Acme Ltd"
        assert conn.scalar(sa.select(sa.func.count()).select_from(controllers)) == 1


def test_timestamps_are_utc(store: Store) -> None:
    before = datetime.now(UTC)
    version, _ = record(store, "v1")
    assert version.loaded_at.tzinfo is UTC
    assert before - timedelta(seconds=1) <= version.loaded_at <= datetime.now(UTC)

    # Another offset is stored as the same instant and read back in UTC.
    paris = datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    with store.engine.begin() as conn:
        conn.execute(controllers.insert().values(key="paris", name="Paris", created_at=paris))
    with store.engine.connect() as conn:
        created_at = conn.scalar(
            sa.select(controllers.c.created_at).where(controllers.c.key == "paris")
        )
    assert created_at.tzinfo is UTC
    assert created_at == paris
    assert created_at.hour == 12


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.engine.begin() as conn:
        conn.execute(
            controllers.insert().values(key="naive", name="N", created_at=datetime(2025, 1, 1))
        )


def test_content_hash_must_be_sha256_hex(store: Store) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.record_policy_version(
            "k", "K", text="x", content_hash="abc", label=None, effective_date=None
        )


# -- concurrency ---------------------------------------------------------------------

_barrier: Any = None


def _init_worker(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def _record_in_process(job: tuple[str, list[str]]) -> list[tuple[int, str, bool]]:
    """Open the store, wait until every worker is ready, then record `texts`."""
    url, texts = job
    with open_store(url, upgrade=False) as store:
        _barrier.wait(timeout=60)
        results = []
        for text in texts:
            version, created = record(store, text, key="busy")
            results.append((version.number, version.content_hash, created))
        return results


def _run_workers(url: str, jobs: list[list[str]]) -> list[tuple[int, str, bool]]:
    # spawn: fresh interpreters, nothing inherited from pytest's connections.
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs))
    with context.Pool(len(jobs), initializer=_init_worker, initargs=(barrier,)) as pool:
        results = pool.map(_record_in_process, [(url, texts) for texts in jobs], chunksize=1)
    return [result for worker in results for result in worker]


def test_concurrent_recording_numbers_versions_without_gaps(store: Store, store_url: str) -> None:
    jobs = [[f"worker {w} text {t}" for t in range(5)] for w in range(4)]
    results = _run_workers(store_url, jobs)

    assert len(results) == 20
    assert all(created for _, _, created in results)
    assert sorted(number for number, _, _ in results) == list(range(1, 21))
    versions = store.policy_versions("busy")
    assert [v.number for v in versions] == list(range(1, 21))
    assert len({v.content_hash for v in versions}) == 20


def test_concurrent_recording_of_the_same_text_creates_one_version(
    store: Store, store_url: str
) -> None:
    results = _run_workers(store_url, [["the same policy"]] * 4)

    assert [created for _, _, created in results].count(True) == 1
    assert {number for number, _, _ in results} == {1}
    assert len(store.policy_versions("busy")) == 1


# -- opening and errors --------------------------------------------------------------


def _with_password(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=PASSWORD).render_as_string(hide_password=False)


def assert_clean_message(error: StoreError) -> str:
    message = str(error)
    assert PASSWORD not in message
    assert "\n" not in message
    assert error.__cause__ is None  # the CLI prints the message, not a chain
    return message


@pytest.mark.parametrize(
    "url",
    [f"postgres//lawful:{PASSWORD}@db.example/lawful", "lawful.db", "postgresql://h:port/db"],
)
def test_malformed_url(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = assert_clean_message(caught.value)
    assert "malformed store URL" in message
    assert "sqlite:///" in message  # says what a URL looks like


def test_unknown_scheme() -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f"oracle9+nodriver://lawful:{PASSWORD}@db.example/lawful")
    message = assert_clean_message(caught.value)
    assert "unknown store URL scheme 'oracle9+nodriver'" in message
    assert "lawful:***@db.example" in message


def test_unreachable_server() -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql://lawful:{PASSWORD}@127.0.0.1:1/lawful")
    message = assert_clean_message(caught.value)
    assert "postgresql+psycopg://lawful:***@127.0.0.1:1/lawful" in message
    assert "check that the server is running" in message


def test_sqlite_file_in_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{missing / 'lawful.db'}")
    message = assert_clean_message(caught.value)
    assert f"directory {missing} does not exist" in message
    assert not missing.exists()


def test_database_at_newer_revision(store_url: str) -> None:
    with open_store(store_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    for upgrade in (True, False):
        with pytest.raises(StoreError) as caught:
            open_store(_with_password(store_url), upgrade=upgrade)
        message = assert_clean_message(caught.value)
        assert "schema revision '9999', newer than this lawful knows" in message
        assert "upgrade lawful" in message


# -- URLs ----------------------------------------------------------------------------


def test_store_url_from_environment(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAWFUL_STORE", sqlite_url)
    with open_store() as store:
        assert store.url == sqlite_url
    monkeypatch.setenv("LAWFUL_STORE", "not a url")
    with pytest.raises(StoreError, match=r"\(from \$LAWFUL_STORE\)"):
        open_store()


def test_default_store_is_lawful_db_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAWFUL_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    with open_store() as store:
        assert store.url == DEFAULT_STORE_URL
        assert store.current_revision() == store.head_revision()
    assert (tmp_path / "lawful.db").is_file()


@pytest.mark.postgresql
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls_use_psycopg(pg_url: str, scheme: str) -> None:
    url = _with_password(pg_url).replace("postgresql+psycopg://", f"{scheme}://")
    with open_store(url) as store:
        assert store.engine.url.drivername == "postgresql+psycopg"
        assert PASSWORD not in store.url
        assert "postgres:***@" in store.url
        assert repr(store) == f"Store({store.url!r})"
        assert store.current_revision() == HEAD


def test_policy_version_is_frozen(store: Store) -> None:
    version, _ = record(store, "v1")
    assert isinstance(version, PolicyVersion)
    with pytest.raises(AttributeError):
        version.number = 2  # type: ignore[misc]


# -- fixtures ------------------------------------------------------------------------


@pytest.mark.mysql
def test_mysql_url_fixture_yields_a_working_database(mysql_url: str) -> None:
    """Smoke test of the fixture for later MariaDB/MySQL work (no store tests yet)."""
    engine = sa.create_engine(mysql_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT DATABASE()")) == make_url(mysql_url).database
    finally:
        engine.dispose()


def test_going_back_to_an_earlier_text_makes_it_current_again(store: Store) -> None:
    record(store, "A")
    record(store, "B")
    back, created = record(store, "A")
    assert created is True
    assert (back.number, back.text) == (3, "A")
    assert store.latest_policy_version("seestar-store") == back
    # and loading it once more changes nothing
    again, created = record(store, "A")
    assert (again.number, created) == (3, False)
    assert [v.text for v in store.policy_versions("seestar-store")] == ["A", "B", "A"]


def test_upgrade_from_0002_keeps_versions_and_allows_reverting(store_url: str) -> None:
    with open_store(store_url, upgrade=False) as store:
        store.upgrade("0002")
        # Rows as revision 0002 holds them (written with SQL: today's code knows newer columns).
        with store.engine.begin() as conn:
            at = datetime(2025, 3, 1, tzinfo=UTC).replace(tzinfo=None)
            conn.execute(
                sa.text("INSERT INTO controllers (key, name, created_at) VALUES (:k, :n, :at)"),
                {"k": "seestar-store", "n": "Seestar Store", "at": at},
            )
            for number, text in ((1, "A"), (2, "B")):
                conn.execute(
                    sa.text(
                        "INSERT INTO policy_versions (controller_id, number, content_hash, text,"
                        " loaded_at, material) VALUES (1, :n, :h, :t, :at, :m)"
                    ),
                    {"n": number, "h": sha(text), "t": text, "at": at, "m": False},
                )
        store.upgrade()
        assert store.current_revision() == HEAD
        assert [v.number for v in store.policy_versions("seestar-store")] == [1, 2]
        assert record(store, "A")[0].number == 3
        # the old schema cannot hold a recurring text, so going back down refuses
        with pytest.raises(sa.exc.IntegrityError):
            store.downgrade("0002")
