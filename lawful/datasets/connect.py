"""Connections to application databases: one bounded pool per database.

A dataset names its database by URL or by the environment variable holding the URL (so
the password stays out of the file). SQLite, PostgreSQL (psycopg 3) and MySQL/MariaDB
(PyMySQL) are reached through SQLAlchemy, so the same statements serve all three.
"""

from __future__ import annotations

import os
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from lawful.datasets.model import Dataset

POOL_SIZE = 5  # connections kept per database; a request needs one at a time
_EXAMPLES = "postgresql://user@host:5432/dbname, mysql://user@host:3306/dbname or sqlite:///app.db"


class ConnectError(Exception):
    """A database can't be reached; the message says why and how to fix it (no password)."""


def dataset_url(dataset: Dataset) -> URL:
    """The URL a dataset's connection names, with lawful's drivers; ConnectError if unset."""
    conn = dataset.connection
    if conn.url_env is not None:
        raw = os.environ.get(conn.url_env)
        if not raw:
            raise ConnectError(
                f"dataset {dataset.key}: the environment variable {conn.url_env} is not set; "
                f"set it to the database URL, e.g. {conn.url_env}=postgresql://user:password@host/db"
            )
        return parse_url(raw, f" (from ${conn.url_env})")
    assert conn.url is not None
    return parse_url(conn.url, "")


def parse_url(raw: str, source: str = "") -> URL:
    """A database URL with the drivers lawful installs; ConnectError if malformed."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConnectError(
            f"malformed database URL {mask(raw)!r}{source}: use {_EXAMPLES}"
        ) from None
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername in ("mysql", "mariadb"):
        url = url.set(drivername=f"{url.drivername}+pymysql")
    return url


def create_engine(url: URL) -> Engine:
    """An engine with a bounded pool; SQLite enforces foreign keys like the servers do."""
    shown = url.render_as_string(hide_password=True)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend != "sqlite":
        # No ping at checkout: it costs a round trip per request. A connection the
        # server dropped fails its first statement instead; SQLAlchemy then invalidates
        # the pool's older connections and `Datasets` runs the work again (see `_once`).
        kwargs |= {"pool_size": POOL_SIZE, "max_overflow": 0, "pool_recycle": 3600}
    if backend == "postgresql" or backend == "mysql":
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = sa.create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise ConnectError(
            f"unknown database URL scheme {url.drivername!r} in {shown}: use {_EXAMPLES}"
        ) from None
    except ImportError as exc:
        raise ConnectError(
            f"the database URL {shown} needs the Python module {exc.name or '?'} (its driver), "
            "which is not installed"
        ) from None
    except ArgumentError as exc:
        raise ConnectError(f"invalid database URL {shown}: {first_line(exc)}") from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Without it SQLite lets an erasure delete rows others still reference.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def first_line(exc: BaseException | None) -> str:
    text = str(getattr(exc, "orig", None) or exc or "").strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def mask(text: str) -> str:
    """Hide passwords in a URL, even an unparsable one: `user:secret@host` → `user:***@host`."""
    return re.sub(r"([^\s:/@]*):[^\s/@]+@", r"\1:***@", text)
