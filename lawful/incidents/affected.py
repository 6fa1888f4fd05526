"""The scope of an incident in the datasets, and the people it affects.

`resolve_scope` checks the tables and categories an incident names against the
annotations and the policy's taxonomy. `affected_subjects` walks from every row of the
affected tables up to their owners' identities (lawful.incidents.owners), one statement
per affected table and identity table, and yields the people in batches: one identity
per owner row (an email first), normalised and keyed-hashed (`Keyring.hash_many`), each
person once. Raw values stay in memory for the moment it takes to hash them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from lawful.datasets import Datasets
from lawful.incidents.owners import identity_picker, owner_queries, stream
from lawful.policy import Policy
from lawful.policy.vocabulary import did_you_mean
from lawful.subjects import Identity, IdentityError, Keyring
from lawful.subjects.identity import identity_text

BATCH = 10_000
_HASH = re.compile(r"^[0-9a-f]{64}$")


class IncidentError(ValueError):
    """An incident that cannot be recorded or changed as asked; the message says why."""


@dataclass(frozen=True)
class SubjectHash:
    """A person already named by a keyed identity hash (made with this keyring), as the
    disclosure log keeps them."""

    hash: str
    kind: str | None = None


ExtraSubject = Identity | SubjectHash | str  # str: identity text such as "email:a@b.example"
ExtraSubjects = Callable[["Scope"], Iterable[ExtraSubject]]


@dataclass(frozen=True)
class Scope:
    """What an incident touched, checked: `tables` as {dataset: [table, ...]}."""

    tables: dict[str, list[str]]
    categories: list[str]
    systems: list[str]

    @property
    def table_names(self) -> list[str]:
        return [f"{d}.{t}" for d, names in self.tables.items() for t in names]


@dataclass
class Tally:
    """What the walk found: people per source, rows per table, tables reaching nobody."""

    subjects: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    unreached: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def resolve_scope(
    policy: Policy,
    datasets: Datasets | None,
    tables: Iterable[str],
    categories: Iterable[str],
    systems: Iterable[str],
) -> Scope:
    """The tables and categories named, checked; every problem reported at once.

    A table is `dataset.table` (or `table` when one dataset has it). With categories and
    no tables, the affected tables are those with a column of those categories (or of a
    category below them).
    """
    problems: list[str] = []
    taxonomy = policy.taxonomy()
    cats = list(dict.fromkeys(c.strip() for c in categories))
    for cat in cats:
        if not taxonomy.is_category(cat):
            guess = did_you_mean(cat, sorted(taxonomy.categories))
            hint = (
                f"did you mean '{guess}'?"
                if guess
                else "use a fideslang key, e.g. user.contact.email"
            )
            problems.append(f"category '{cat}' is not a data category; {hint}")
    annotated: dict[str, set[str]] = (
        {k: set(v.dataset.tables) for k, v in datasets.loaded.items()} if datasets else {}
    )
    resolved: dict[str, list[str]] = {}
    names = list(dict.fromkeys(t.strip() for t in tables))
    if names and datasets is None:
        problems.append(
            "tables were named but no dataset annotation is loaded; pass --dataset FILE"
        )
    for name in names if datasets is not None else []:
        key, sep, table = name.partition(".")
        if not sep:
            holders = [k for k, ts in annotated.items() if name in ts]
            if len(holders) != 1:
                which = "several datasets have" if holders else "no dataset annotates"
                problems.append(f"table '{name}': {which} it; write it as dataset.table")
                continue
            key, table = holders[0], name
        if key not in annotated:
            problems.append(
                f"table '{name}': there is no dataset '{key}' (have: {', '.join(annotated)})"
            )
        elif table not in annotated[key]:
            guess = did_you_mean(table, sorted(annotated[key]))
            hint = f"did you mean '{key}.{guess}'?" if guess else "name an annotated table"
            problems.append(f"table '{name}' is not annotated in dataset {key}; {hint}")
        elif table not in resolved.setdefault(key, []):
            resolved[key].append(table)
    if not names and cats and datasets is not None:
        for key, loaded in datasets.loaded.items():
            for table, spec in loaded.dataset.tables.items():
                held = {c.category for c in spec.columns.values()}
                if any(h == c or h.startswith(c + ".") for h in held for c in cats):
                    resolved.setdefault(key, []).append(table)
    named_systems = [x for x in systems if x.strip()]
    if not names and not cats and not named_systems:
        problems.append(
            "name what the incident touched: --table dataset.table, --category KEY or "
            "--system NAME (a recipient, for a breach on its side)"
        )
    if problems:
        raise IncidentError("; ".join(problems))
    return Scope(resolved, cats, list(dict.fromkeys(s.strip() for s in systems if s.strip())))


def affected_subjects(
    datasets: Datasets | None,
    keyring: Keyring,
    scope: Scope,
    tally: Tally,
    *,
    extra: ExtraSubjects | None = None,
    batch: int = BATCH,
) -> Iterator[list[tuple[str, str | None, str]]]:
    """The people the incident affects, in batches of (identity hash, kind, source).

    Each person comes once (the first source that names them); `tally` counts them per
    source, the rows of each affected table, and lists tables whose rows reach no
    identity through owner links.
    """
    seen = tally.seen
    for key, tables in scope.tables.items():
        assert datasets is not None
        graph = datasets.graph(key)
        with datasets.engine(key).connect() as conn:
            for table in tables:
                plan = graph.tables[table]
                tally.records[f"{key}.{table}"] = conn.execute(
                    sa.select(sa.func.count()).select_from(plan.table)
                ).scalar_one()
                queries = owner_queries(graph, table)
                if not queries:
                    tally.unreached.append(f"{key}.{table}")
                for query in queries:
                    source = f"{key}.{query.end.name}"
                    pick = identity_picker(query.end)
                    for rows in stream(conn, query.statement, batch):
                        texts = [t for t in map(pick, rows) if t is not None]
                        yield _new(keyring.hash_many(texts), texts, source, seen, tally)
    if extra is not None:
        yield from _extra(extra(scope), keyring, seen, tally, batch)


def _new(
    hashes: list[str], texts: list[str], source: str, seen: set[str], tally: Tally
) -> list[tuple[str, str | None, str]]:
    out = []
    for digest, text in zip(hashes, texts, strict=True):
        if digest not in seen:
            seen.add(digest)
            out.append((digest, text.partition(":")[0], source))
    tally.subjects[source] = tally.subjects.get(source, 0) + len(out)
    return out


def _extra(
    items: Iterable[ExtraSubject], keyring: Keyring, seen: set[str], tally: Tally, batch: int
) -> Iterator[list[tuple[str, str | None, str]]]:
    hashes: list[str] = []
    kinds: list[str | None] = []
    for item in items:
        if isinstance(item, SubjectHash):
            if not _HASH.match(item.hash):
                raise IncidentError(
                    "extra_subjects gave a SubjectHash that is not a keyed identity hash "
                    "(64 lower-case hex digits)"
                )
            hashes.append(item.hash)
            kinds.append(item.kind)
            continue
        try:
            text = identity_text(item)
        except IdentityError as exc:
            raise IncidentError(
                f"extra_subjects gave an identity lawful can't read: {exc}"
            ) from None
        hashes.append(keyring.hash_many([text])[0])
        kinds.append(text.partition(":")[0])
    for start in range(0, len(hashes), batch):
        out = []
        for digest, kind in zip(
            hashes[start : start + batch], kinds[start : start + batch], strict=True
        ):
            if digest not in seen:
                seen.add(digest)
                out.append((digest, kind, "extra"))
        tally.subjects["extra"] = tally.subjects.get("extra", 0) + len(out)
        yield out
