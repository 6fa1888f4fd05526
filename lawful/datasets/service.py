"""`Datasets`: a company's annotated databases, and find, access, rectify and erase on them."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from lawful.datasets.access import (
    Correctable,
    DatasetAccess,
    DatasetRectified,
    RectifyError,
    access_report,
    check_changes,
    correctable_columns,
    rectify_found,
    validate_changes,
)
from lawful.datasets.connect import ConnectError, create_engine, dataset_url, first_line
from lawful.datasets.erase import (
    DatasetErasure,
    ErasureFailed,
    apply_erasure,
    describe_failure,
    plan_erasure,
)
from lawful.datasets.graph import Graph, build_graph
from lawful.datasets.load import DatasetError, LoadedDataset, load_dataset
from lawful.datasets.masks import MASK_KEY_PURPOSE
from lawful.datasets.traverse import Found, traverse
from lawful.policy import Policy
from lawful.policy.problems import Problem
from lawful.store.store import is_transient
from lawful.subjects import Identity, Keyring

T = TypeVar("T")
ATTEMPTS = 3  # a deadlock or serialisation failure is retried this many times in all
PER_STATEMENT_SNAPSHOTS = ("READ COMMITTED", "READ UNCOMMITTED")

IdentityLike = Identity | str


class Datasets:
    """Application databases described by annotation files, opened lazily, one pool each.

    The annotations are checked when loaded; each database is reflected and checked
    against its annotation the first time it is used (`check()` does it for all).
    """

    def __init__(self, loaded: Sequence[LoadedDataset], *, mask_key: bytes | None = None) -> None:
        seen: dict[str, str] = {}
        problems = []
        for item in loaded:
            if item.key in seen:
                problems.append(
                    Problem(
                        f"dataset '{item.key}' is also the name of the dataset in {seen[item.key]}; "
                        "give each database its own name",
                        path=("dataset",),
                        file=item.file,
                    )
                )
            seen[item.key] = item.file
        if problems:
            raise DatasetError(problems)
        self.loaded = {item.key: item for item in loaded}
        self.mask_key = mask_key
        self._engines: dict[str, Engine] = {}
        self._graphs: dict[str, Graph] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        paths: Iterable[str | Path],
        *,
        policy: Policy | None = None,
        keyring: Keyring | None = None,
    ) -> Datasets:
        """Load annotation files (every file's problems reported at once)."""
        loaded, problems = [], []
        for path in paths:
            try:
                loaded.append(load_dataset(path, policy))
            except DatasetError as exc:
                problems.extend(exc.problems)
        if problems:
            raise DatasetError(problems)
        mask_key = keyring.derive(MASK_KEY_PURPOSE) if keyring is not None else None
        return cls(loaded, mask_key=mask_key)

    # -- databases -----------------------------------------------------------------------

    def engine(self, key: str) -> Engine:
        with self._lock:
            if key not in self._engines:
                self._engines[key] = create_engine(dataset_url(self.loaded[key].dataset))
            return self._engines[key]

    def graph(self, key: str) -> Graph:
        """The dataset compiled against its live schema (reflected once, then cached)."""
        with self._lock:
            if key in self._graphs:
                return self._graphs[key]
        engine = self.engine(key)
        try:
            with engine.connect() as conn:
                graph = build_graph(self.loaded[key], conn)
        except DBAPIError as exc:
            raise ConnectError(
                f"dataset {key}: cannot read the database at "
                f"{engine.url.render_as_string(hide_password=True)}: {first_line(exc)}"
            ) from None
        with self._lock:
            return self._graphs.setdefault(key, graph)

    def check(self) -> dict[str, tuple[Problem, ...]]:
        """Check every annotation against its live database; the warnings, per dataset.

        Raises DatasetError with the errors of every dataset at once.
        """
        warnings: dict[str, tuple[Problem, ...]] = {}
        problems: list[Problem] = []
        for key in self.loaded:
            try:
                warnings[key] = self.graph(key).warnings
            except DatasetError as exc:
                problems.extend(exc.problems)
        if problems:
            raise DatasetError(problems)
        return warnings

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
            self._graphs.clear()

    def __enter__(self) -> Datasets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- actions ---------------------------------------------------------------------------

    def find(self, identities: Iterable[IdentityLike]) -> dict[str, Found]:
        """Every row of the subject, per dataset (whole rows)."""
        ids = parse_identities(identities)
        out = {}
        for key in self.loaded:
            graph = self.graph(key)
            out[key] = self._read(key, lambda conn, g=graph: traverse(conn, g, ids))
        return out

    def access(self, identities: Iterable[IdentityLike]) -> list[DatasetAccess]:
        """The subject's personal data in every dataset, each column with its category."""
        return [access_report(found) for found in self.find(identities).values()]

    def erase(
        self,
        identities: Iterable[IdentityLike],
        *,
        dry_run: bool = False,
        only: Iterable[str] | None = None,
    ) -> list[DatasetErasure]:
        """Erase the subject's rows as annotated: one transaction per database.

        Several subjects' identities may be given at once (a batch): rows owned only by
        them are erased. `dry_run` reports the same without writing. `only` names the
        datasets to erase in (default: all), so a request can erase one per step.
        """
        ids = parse_identities(identities)
        # A dry run writes no masked value, so any key tells what a hash mask would change.
        mask_key = self.mask_key or (secrets.token_bytes(32) if dry_run else None)
        reports = []
        for key in self._keys(only):
            graph = self.graph(key)

            def work(conn: Connection, graph: Graph = graph) -> DatasetErasure:
                found = traverse(conn, graph, ids, columns="erase")
                works, outcomes = plan_erasure(conn, found, mask_key)
                statements = 0 if dry_run else apply_erasure(conn, graph, works)
                return DatasetErasure(graph.key, outcomes, dry_run, found.statements + statements)

            reports.append(self._read(key, work) if dry_run else self._write(key, work))
        return reports

    def _keys(self, only: Iterable[str] | None) -> list[str]:
        if only is None:
            return list(self.loaded)
        keys = list(only)
        unknown = [k for k in keys if k not in self.loaded]
        if unknown:
            raise DatasetError(
                [
                    Problem(
                        f"there is no dataset '{k}' (have: {', '.join(self.loaded)})",
                        path=("dataset",),
                    )
                    for k in unknown
                ]
            )
        return keys

    def rectify(
        self, identities: Iterable[IdentityLike], changes: dict[str, Any], *, dry_run: bool = False
    ) -> list[DatasetRectified]:
        """Correct the subject's data: `{"table.column": value}` (or `"dataset.table.column"`).

        Every change is validated before any is written; RectifyError lists the bad ones.
        """
        ids = parse_identities(identities)
        per_dataset = self._split_changes(changes)
        validated = {key: validate_changes(self.graph(key), c) for key, c in per_dataset.items()}
        reports = []
        for key, values in validated.items():
            graph = self.graph(key)

            def work(
                conn: Connection, graph: Graph = graph, values: Any = values
            ) -> DatasetRectified:
                found = traverse(conn, graph, ids)
                return rectify_found(conn, found, values, self.mask_key, dry_run=dry_run)

            reports.append(self._read(key, work) if dry_run else self._write(key, work))
        return reports

    def correctable(self) -> list[Correctable]:
        """The columns a rectification may name, every dataset's (each reflected once)."""
        return [c for key in self.loaded for c in correctable_columns(self.graph(key))]

    def change_problems(self, changes: dict[str, Any]) -> dict[str, str]:
        """What is wrong with each change, by its name as given (`table.column` or
        `dataset.table.column`), without quoting the value; empty when all would apply."""
        problems: dict[str, str] = {}
        for target, value in changes.items():
            try:
                [(key, named)] = self._split_changes({target: value}).items()
            except RectifyError as exc:
                problems[target] = str(exc).removeprefix(f"{target}: ")
                continue
            _, found = check_changes(self.graph(key), named)
            if found:  # one change, so at most one problem
                problems[target] = next(iter(found.values()))
        return problems

    def _split_changes(self, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for target, value in changes.items():
            parts = target.split(".")
            if len(parts) == 3:
                key, rest = parts[0], ".".join(parts[1:])
                if key not in self.loaded:
                    raise RectifyError(
                        f"{target}: there is no dataset '{key}' (have: {', '.join(self.loaded)})"
                    )
            elif len(parts) == 2 and len(self.loaded) == 1:
                key, rest = next(iter(self.loaded)), target
            elif len(parts) == 2:
                owners = [k for k in self.loaded if parts[0] in self.loaded[k].dataset.tables]
                if len(owners) != 1:
                    raise RectifyError(
                        f"{target}: name the dataset too (dataset.table.column); "
                        f"{'several datasets have' if owners else 'no dataset has'} table {parts[0]}"
                    )
                key, rest = owners[0], target
            else:
                raise RectifyError(
                    f"{target}: write the column as table.column or dataset.table.column"
                )
            out.setdefault(key, {})[rest] = value
        return out

    # -- transactions ----------------------------------------------------------------------

    def _read(self, key: str, work: Callable[[Connection], T]) -> T:
        engine = self.engine(key)

        def read() -> T:
            with engine.connect() as conn:
                if engine.dialect.default_isolation_level in PER_STATEMENT_SNAPSHOTS:
                    # Each statement of a READ COMMITTED transaction sees its own snapshot
                    # anyway, so the walk reads the same without one, and saves the
                    # round trips of BEGIN and ROLLBACK. Under REPEATABLE READ (MySQL's
                    # default) the transaction gives the walk one snapshot: it stays.
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                return work(conn)

        try:
            return _once_more_if_dropped(read)
        except DBAPIError as exc:
            raise ConnectError(
                f"dataset {key}: reading the database failed: {first_line(exc)}"
            ) from None

    def _write(self, key: str, work: Callable[[Connection], T]) -> T:
        engine = self.engine(key)

        def write() -> T:
            with engine.begin() as conn:
                return work(conn)

        for attempt in range(1, ATTEMPTS + 1):
            try:
                # An erasure is idempotent: run again after a dropped connection (even
                # one dropped at COMMIT), it finishes what did not commit and no more.
                return _once_more_if_dropped(write)
            except OperationalError as exc:
                if not is_transient(exc) or attempt == ATTEMPTS:
                    raise ErasureFailed(describe_failure(exc, key)) from None
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
            except DBAPIError as exc:
                raise ErasureFailed(describe_failure(exc, key)) from None
        raise AssertionError("unreachable")


def _once_more_if_dropped(work: Callable[[], T]) -> T:
    """`work()`, run a second time if its pooled connection had been dropped by the server.

    The pool does not ping connections at checkout (a round trip per request); when the
    server has closed one (a restart, an idle timeout), its first statement fails,
    SQLAlchemy invalidates it and the pool's older connections, and the second run gets
    a fresh one.
    """
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return work()


def parse_identities(identities: Iterable[IdentityLike]) -> frozenset[Identity]:
    """Identities given as objects or as text (`email:a@b.example`, `+44...`)."""
    out = set()
    for identity in identities:
        out.add(identity if isinstance(identity, Identity) else Identity.parse(identity))
    return frozenset(out)
