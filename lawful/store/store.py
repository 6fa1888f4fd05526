"""The store: lawful's own records, in SQLite (default) or PostgreSQL."""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine, Row, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)

from lawful.store.tables import controllers, policy_versions

DEFAULT_STORE_URL = "sqlite:///./lawful.db"
STORE_ENV = "LAWFUL_STORE"
MIGRATIONS = Path(__file__).parent / "migrations"

# Writes that lose a race on a unique constraint are retried this many times in all.
_ATTEMPTS = 5
_EXAMPLES = "a URL like sqlite:///./lawful.db or postgresql://user:password@host:5432/dbname"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

T = TypeVar("T")


class StoreError(Exception):
    """The store can't be used; the message says why and how to fix it, in one line."""


@dataclass(frozen=True)
class PolicyVersion:
    id: int
    controller_key: str
    number: int
    content_hash: str
    label: str | None
    effective_date: date | None
    text: str
    loaded_at: datetime
    changes: list[dict[str, Any]] | None
    material: bool
    renew_consent: tuple[str, ...] = ()  # consent purposes whose earlier consent lapses


class Store:
    """lawful's records in one database; open it with `open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    # -- schema ------------------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the tables to `revision` (default: the newest this lawful knows)."""
        with self.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)

    def downgrade(self, revision: str) -> None:
        """Migrate the tables back to `revision` ("base" removes them all)."""
        with self.engine.begin() as conn:
            command.downgrade(_alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        """The database's schema revision; None for an empty database."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str:
        """The newest schema revision this lawful knows."""
        head = _scripts().get_current_head()
        assert head is not None, "lawful ships at least one migration"
        return head

    # -- controllers -------------------------------------------------------------------

    def ensure_controller(self, key: str, name: str) -> int:
        """The id of controller `key`, created if new; its name is updated if it changed."""
        return self.write(lambda conn: _ensure_controller(conn, key, name))

    # -- policy versions ---------------------------------------------------------------

    def record_policy_version(
        self,
        controller_key: str,
        controller_name: str,
        *,
        text: str,
        content_hash: str,
        label: str | None,
        effective_date: date | None,
        changes: list[dict[str, Any]] | None = None,
        material: bool = False,
        renew_consent: list[str] | None = None,
        on_created: Callable[[Connection, int, PolicyVersion], None] | None = None,
    ) -> tuple[PolicyVersion, bool]:
        """Record a policy as the controller's next version: (version, created).

        `on_created(conn, controller_id, version)` runs in the same transaction when a
        new version is recorded (the engine writes its audit event there).

        A text with the same hash as the controller's latest version is not recorded
        again: that version comes back with created=False. Going back to an older text
        makes it current again, so it is recorded as a new version.
        """
        if not _SHA256_HEX.fullmatch(content_hash):
            raise ValueError(f"content_hash must be 64 lowercase hex digits, got {content_hash!r}")

        def record(conn: Connection) -> tuple[PolicyVersion, bool]:
            controller_id = _ensure_controller(conn, controller_key, controller_name)
            # Serialise recorders of one controller where the backend has row locks
            # (PostgreSQL: FOR NO KEY UPDATE, which doesn't block inserts referencing
            # the controller). SQLite ignores it: it serialises all writers anyway.
            conn.execute(
                sa.select(controllers.c.id)
                .where(controllers.c.id == controller_id)
                .with_for_update(key_share=True)
            )
            mine = policy_versions.c.controller_id == controller_id
            latest_hash = (
                sa.select(policy_versions.c.content_hash)
                .where(mine)
                .order_by(policy_versions.c.number.desc())
                .limit(1)
                .scalar_subquery()
            )
            next_number = (
                sa.select(sa.func.coalesce(sa.func.max(policy_versions.c.number), 0) + 1)
                .where(mine)
                .scalar_subquery()
            )
            # One statement decides "unchanged?" and takes the next number, so it is
            # atomic on SQLite too; if another writer still takes the number first, the
            # unique constraint fails and _write retries.
            c = policy_versions.c
            source = sa.select(
                sa.literal(controller_id, c.controller_id.type),
                next_number,
                sa.literal(content_hash, c.content_hash.type),
                sa.literal(label, c.label.type),
                sa.literal(effective_date, c.effective_date.type),
                sa.literal(text, c.text.type),
                sa.literal(_now(), c.loaded_at.type),
                sa.literal(changes, c.changes.type),
                sa.literal(material, c.material.type),
                sa.literal(renew_consent, c.renew_consent.type),
            ).where(sa.func.coalesce(latest_hash, "") != content_hash)
            columns = [
                "controller_id",
                "number",
                "content_hash",
                "label",
                "effective_date",
                "text",
                "loaded_at",
                "changes",
                "material",
                "renew_consent",
            ]
            inserted = conn.execute(
                sa.insert(policy_versions).from_select(columns, source).returning(c.id)
            ).first()
            where = c.id == inserted.id if inserted else mine
            row = conn.execute(
                sa.select(policy_versions).where(where).order_by(c.number.desc()).limit(1)
            ).one()
            version = _policy_version(row, controller_key)
            if inserted is not None and on_created is not None:
                on_created(conn, controller_id, version)
            return version, inserted is not None

        return self.write(record)

    def latest_policy_version(self, controller_key: str) -> PolicyVersion | None:
        versions = self._versions(controller_key, newest_only=True)
        return versions[0] if versions else None

    def policy_versions(self, controller_key: str) -> list[PolicyVersion]:
        """The controller's policy versions, oldest first."""
        return self._versions(controller_key, newest_only=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- helpers -----------------------------------------------------------------------

    def _versions(self, controller_key: str, *, newest_only: bool) -> list[PolicyVersion]:
        # Look the controller up first instead of joining: queries stay on one controller.
        with self.engine.connect() as conn:
            controller_id = conn.scalar(
                sa.select(controllers.c.id).where(controllers.c.key == controller_key)
            )
            if controller_id is None:
                return []
            query = sa.select(policy_versions).where(
                policy_versions.c.controller_id == controller_id
            )
            if newest_only:
                query = query.order_by(policy_versions.c.number.desc()).limit(1)
            else:
                query = query.order_by(policy_versions.c.number)
            return [_policy_version(row, controller_key) for row in conn.execute(query)]

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, retried when a concurrent writer wins a race.

        Capabilities write through this, so a change and its audit event commit together.
        """
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not is_transient(exc):
                    raise
                if attempt == _ATTEMPTS:
                    raise StoreError(
                        f"the store at {self.url} kept rejecting a write after {_ATTEMPTS} "
                        f"attempts ({_first_line(exc.orig)}); try again"
                    ) from exc
                # Let the winner commit before trying again (jittered, at most ~0.3 s).
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")


def open_store(url: str | None = None, *, upgrade: bool = True) -> Store:
    """Open the store at `url` (default: $LAWFUL_STORE, else ./lawful.db).

    With `upgrade`, the tables are created or migrated to this lawful's version.
    Raises StoreError when the URL is wrong, the database can't be reached, or it
    was migrated by a newer lawful.
    """
    source = ""
    if url is None:
        url = os.environ.get(STORE_ENV) or DEFAULT_STORE_URL
        source = f" (from ${STORE_ENV})" if os.environ.get(STORE_ENV) else ""
    parsed = _parse_url(url, source)
    shown = parsed.render_as_string(hide_password=True)
    engine = _create_engine(parsed, shown, source)
    store = Store(engine)
    try:
        _check_revision(store)
        if upgrade:
            store.upgrade()
    except DBAPIError as exc:
        store.close()
        message = _mask(_first_line(exc.orig), parsed.password)
        raise StoreError(
            f"cannot use the store at {shown}{source}: {message}; "
            "check that the server is running and the URL is right"
        ) from None
    except StoreError:
        store.close()
        raise
    return store


def _parse_url(raw: str, source: str) -> URL:
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise StoreError(f"malformed store URL {_mask(raw)!r}{source}: use {_EXAMPLES}") from None
    if url.drivername in ("postgres", "postgresql"):
        # psycopg 3 is the driver lawful installs; SQLAlchemy would pick psycopg2.
        url = url.set(drivername="postgresql+psycopg")
    return url


def _create_engine(url: URL, shown: str, source: str) -> Engine:
    backend = url.get_backend_name()
    if (
        backend == "sqlite"
        and url.database not in (None, "", ":memory:")
        and "uri" not in url.query
    ):
        folder = Path(url.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(
                f"cannot create the store {shown}{source}: directory {folder} does not "
                "exist; create it or choose another path"
            )
    kwargs: dict[str, Any] = {}
    if backend == "postgresql" and "connect_timeout" not in url.query:
        kwargs["connect_args"] = {"connect_timeout": 10}  # fail instead of hanging
        # Batches go through psycopg's own executemany (pipeline mode: the statement is
        # parsed once) rather than one huge multi-row statement that psycopg re-parses in
        # Python for every batch (it only caches statements with at most 50 parameters).
        kwargs["use_insertmanyvalues"] = False
    try:
        engine = sa.create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise StoreError(
            f"unknown store URL scheme {url.drivername!r} in {shown}{source}: use {_EXAMPLES}"
        ) from None
    except ImportError as exc:
        raise StoreError(
            f"the store URL {shown}{source} needs the Python module {exc.name or '?'}, its "
            "database driver, which is not installed: install it or name another driver"
        ) from None
    except ArgumentError as exc:
        raise StoreError(f"invalid store URL {shown}{source}: {_first_line(exc)}") from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers go on while one process writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _check_revision(store: Store) -> None:
    """Refuse a database migrated by a newer lawful: its tables may not match ours."""
    current = store.current_revision()
    if current is None:
        return
    if current not in {script.revision for script in _scripts().walk_revisions()}:
        raise StoreError(
            f"the store at {store.url} is at schema revision {current!r}, newer than this "
            f"lawful knows (newest: {store.head_revision()!r}); upgrade lawful or use "
            "another database"
        )


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    # ConfigParser interpolates %, which a path may contain.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def _ensure_controller(conn: Connection, key: str, name: str) -> int:
    row = conn.execute(
        sa.select(controllers.c.id, controllers.c.name).where(controllers.c.key == key)
    ).first()
    if row is None:
        inserted = conn.execute(
            sa.insert(controllers).values(key=key, name=name, created_at=_now())
        )
        return int(inserted.inserted_primary_key[0])
    if row.name != name:
        conn.execute(sa.update(controllers).where(controllers.c.id == row.id).values(name=name))
    return int(row.id)


def _policy_version(row: Row[Any], controller_key: str) -> PolicyVersion:
    return PolicyVersion(
        id=row.id,
        controller_key=controller_key,
        number=row.number,
        content_hash=row.content_hash,
        label=row.label,
        effective_date=row.effective_date,
        text=row.text,
        loaded_at=row.loaded_at,
        changes=row.changes,
        material=bool(row.material),
        renew_consent=tuple(row.renew_consent or ()),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def is_transient(exc: OperationalError) -> bool:
    """A failure a retry can cure: a deadlock or serialisation failure (PostgreSQL
    40P01/40001, MySQL 1213/1205), or SQLite's busy database."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in ("40P01", "40001"):
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in (1205, 1213):
        return True
    return "database is locked" in str(orig)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0].strip() if text else type(exc).__name__ if exc else "error"


def _mask(text: str, password: str | None = None) -> str:
    """Hide passwords: `user:secret@host` → `user:***@host`, also in unparsable URLs."""
    if password:
        text = text.replace(password, "***")
    return re.sub(r"([^\s:/@]*):[^\s/@]+@", r"\1:***@", text)
