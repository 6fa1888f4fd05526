"""Shared fixtures: store URLs for SQLite, PostgreSQL and MariaDB/MySQL.

The server fixtures create a fresh database per test on the real server and drop
it afterwards. Without a server they skip, unless CI=true, where they fail: CI must
not pass by skipping the backends it is meant to test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

PG_TEST_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MYSQL_TEST_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: needs the PostgreSQL test server")
    config.addinivalue_line("markers", "mysql: needs the MariaDB/MySQL test server")


def _server_unavailable(product: str, url: URL, env: str, reason: str) -> NoReturn:
    where = f"{url.host}:{url.port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"{product} is required under CI=true but {where} is unreachable: {reason}",
            pytrace=False,
        )
    pytest.skip(
        f"{product} not reachable at {where} ({reason}); "
        f"set {env} or start a server to run these tests"
    )


def _with_driver(url: str, backend: str, driver: str) -> URL:
    """`postgresql://…` → `postgresql+psycopg://…`: the drivers lawful installs."""
    parsed = make_url(url)
    if parsed.drivername == backend or (backend, parsed.drivername) == ("postgresql", "postgres"):
        parsed = parsed.set(drivername=f"{backend}+{driver}")
    return parsed


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fresh_database(product: str, admin: URL, env: str, drop_suffix: str) -> Iterator[str]:
    """Create `lawful_t_<hex>` on the server at `admin`, yield its URL, drop it."""
    problem = None
    try:
        engine = sa.create_engine(
            admin,
            isolation_level="AUTOCOMMIT",
            poolclass=sa.NullPool,
            connect_args={"connect_timeout": 5},  # psycopg and pymysql both take it
        )
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except ImportError as exc:
        problem = f"the driver package {exc.name} is not installed"
    except sa.exc.DBAPIError as exc:
        problem = _first_line(exc)
    if problem is not None:  # outside the except: no chained traceback in the report
        _server_unavailable(product, admin, env, problem)
    name = f"lawful_t_{secrets.token_hex(6)}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{drop_suffix}")
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'lawful.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database ($LAWFUL_TEST_PG names the server)."""
    admin = _with_driver(os.environ.get("LAWFUL_TEST_PG") or PG_TEST_URL, "postgresql", "psycopg")
    # FORCE ends connections a test left open (PostgreSQL 13+).
    yield from _fresh_database("PostgreSQL", admin, "LAWFUL_TEST_PG", " WITH (FORCE)")


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB/MySQL database ($LAWFUL_TEST_MYSQL names the server)."""
    admin = _with_driver(os.environ.get("LAWFUL_TEST_MYSQL") or MYSQL_TEST_URL, "mysql", "pymysql")
    yield from _fresh_database("MariaDB/MySQL", admin, "LAWFUL_TEST_MYSQL", "")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh database, once per backend the store supports."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param]
    return request.getfixturevalue(fixture)
