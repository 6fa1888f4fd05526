"""Children in the datasets: subjects younger than the policy or the law allows.

For each annotated column holding a birth date (category `user.demographic.date_of_birth`
or a custom category below it), one statement per identity table its rows reach finds the
rows born after a cutoff: the cutoff is computed once per jurisdiction and age limit
(someone is under L years old today exactly when born after today minus L years), and
the query takes the earliest of them; each row found is then placed under its own
jurisdiction's cutoff. The limits are the policy's minimum age for the subject kind
(`subjects.<kind>.min_age`, `min_age_by_jurisdiction`, as `Decider.age_rule` reads
them) and the law's age of digital consent (below it consent-based purposes need a
parent's consent), the higher one first.

A subject's jurisdiction and member state come from lawful's own records when it knows
the person (by the keyed hash of their identity), else the policy's only jurisdiction,
else the strictest of the policy's. Whether a parent consented comes from the consent
ledger (topic `parental`), with the parent's identity hash.

Nothing here writes a birth date or an identity anywhere: a finding carries the keyed
identity hash, lawful's subject ref when known, and the row's key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from lawful.consent.decide import AgeRule, Decider, SubjectState
from lawful.consent.records import Status
from lawful.consent.tables import consent_records, consent_state
from lawful.datasets import Datasets
from lawful.incidents.owners import identity_picker, owner_queries, stream
from lawful.policy import Policy
from lawful.policy.jurisdictions import get_jurisdiction
from lawful.policy.vocabulary import BelowMinAge
from lawful.store import Store
from lawful.subjects import Identity, Keyring
from lawful.subjects.tables import identities, subjects

BIRTH_DATE = "user.demographic.date_of_birth"
BATCH = 10_000
_PERMITTING = (Status.given.value, Status.renewed.value)


@dataclass(frozen=True)
class Child:
    """A subject under an age limit, found in one table."""

    identity_hash: str
    subject_ref: str | None  # lawful's subject, when it knows them
    dataset: str
    table: str  # where the birth date is
    column: str
    identity_table: str  # where the identity is (the same table, or an owner's)
    kind: str | None  # the policy's subject kind
    jurisdiction: str | None  # None: not known, the strictest limit applied
    age_limit: int
    source: str  # "policy": under its minimum age; "law": under the digital consent age only
    rules: tuple[str, ...]  # refuse, parental_consent, delete_on_discovery
    parental_consent: bool  # a parent's consent is recorded and valid
    parent_hash: str | None  # the parent's identity hash, from the ledger
    identity: Identity | None = field(default=None, repr=False, compare=False)

    @property
    def to_delete(self) -> bool:
        """The policy deletes this child's data on discovery (unless a parent consented
        where the policy accepts a parent's consent)."""
        if BelowMinAge.delete_on_discovery.value not in self.rules or self.source != "policy":
            return False
        return not (BelowMinAge.parental_consent.value in self.rules and self.parental_consent)

    def to_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "identity"
        }
        out["rules"] = list(self.rules)
        out["to_delete"] = self.to_delete
        return out


@dataclass(frozen=True)
class TableChildren:
    """The children found through one birth-date column."""

    dataset: str
    table: str
    column: str
    cutoffs: dict[str, str]  # "jurisdiction:age" -> born after this day (ISO)
    children: list[Child]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "table": self.table,
            "column": self.column,
            "cutoffs": self.cutoffs,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass(frozen=True)
class ChildrenReport:
    today: date
    tables: list[TableChildren]

    @property
    def children(self) -> list[Child]:
        return [c for t in self.tables for c in t.children]

    def to_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "total": len(self.children),
            "to_delete": sum(c.to_delete for c in self.children),
            "tables": [t.to_dict() for t in self.tables],
        }


def cutoff(today: date, age: int) -> date:
    """The day after which someone born is under `age` today (29 February → 28th)."""
    year = today.year - age
    try:
        return today.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def birth_date_columns(datasets: Datasets, policy: Policy) -> list[tuple[str, str, str]]:
    """(dataset, table, column) of every annotated birth-date column."""
    taxonomy = policy.taxonomy()
    out = []
    for key, loaded in datasets.loaded.items():
        for table, spec in loaded.dataset.tables.items():
            for column, colspec in spec.columns.items():
                category = colspec.category
                try:
                    above = taxonomy.category_ancestors(category)
                except KeyError:
                    above = []
                if category == BIRTH_DATE or BIRTH_DATE in above:
                    out.append((key, table, column))
    return out


class _Limits:
    """The age limits of the policy and the laws, per subject kind and jurisdiction."""

    def __init__(self, policy: Policy, today: date) -> None:
        self.policy = policy
        self.today = today
        self.decider = Decider(policy)
        # Any compiled purpose, with no subject kinds: age_rule then weighs every kind.
        self.any_kind = dataclasses.replace(next(iter(self.decider.rules.values())), subjects=())
        self.jurisdictions = [str(j) for j in policy.jurisdictions]

    def rule(self, kind: str | None, jurisdiction: str) -> AgeRule | None:
        return self.decider.age_rule(SubjectState(kind=kind), self.any_kind, jurisdiction)

    def limits(
        self, kind: str | None, jurisdiction: str, country: str | None
    ) -> list[tuple[int, str, tuple[str, ...]]]:
        """(age, source, rules), the policy's minimum first; the law's consent age when higher."""
        out = []
        found = self.rule(kind, jurisdiction)
        if found is not None:
            out.append((found.min_age, "policy", tuple(sorted(str(b) for b in found.below))))
        law = get_jurisdiction(jurisdiction).consent_age(country)
        if law is not None and (found is None or law > found.min_age):
            out.append((law, "law", (BelowMinAge.parental_consent.value,)))
        return out

    def widest(self, kind: str | None) -> int | None:
        """The highest age any jurisdiction (or member state) sets: the query's cutoff."""
        ages = []
        for j in self.jurisdictions:
            law = get_jurisdiction(j)
            countries = law.member_state_consent_ages.values()
            ages += [a for a, _, _ in self.limits(kind, j, None)]
            ages += list(countries)
        return max(ages) if ages else None

    def classify(
        self, kind: str | None, jurisdiction: str | None, country: str | None, born: date
    ) -> tuple[int, str, tuple[str, ...], str | None] | None:
        """The limit this person is under, or None. Unknown jurisdiction: the strictest."""
        places = [jurisdiction] if jurisdiction else self.jurisdictions
        best = None
        for j in places:
            for age, source, rules in self.limits(kind, j, country):
                if born > cutoff(self.today, age) and (best is None or age > best[0]):
                    best = (age, source, rules, j if jurisdiction or len(places) == 1 else None)
                    break  # the policy's limit first: it decides what happens
        return best


def children_report(
    datasets: Datasets,
    policy: Policy,
    *,
    keyring: Keyring,
    store: Store | None = None,
    today: date | None = None,
    batch: int = BATCH,
) -> ChildrenReport:
    """The subjects under age in every annotated birth-date column, per table.

    With `store`, each child is matched to lawful's records (subject ref, jurisdiction,
    member state, a parent's consent) through the keyed hash of their identity.
    """
    today = today or datetime.now(UTC).date()
    limits = _Limits(policy, today)
    tables: list[TableChildren] = []
    controller_id = (
        store.ensure_controller(policy.key, policy.controller.name) if store is not None else None
    )
    for key, table, column in birth_date_columns(datasets, policy):
        graph = datasets.graph(key)
        spec = graph.tables[table].spec
        widest = limits.widest(spec.subject)
        if widest is None:
            continue
        earliest = cutoff(today, widest)

        def after(t: sa.Table, column: str = column, earliest: date = earliest) -> Any:
            return t.c[column] > earliest

        found: list[Child] = []
        with datasets.engine(key).connect() as conn:
            for query in owner_queries(graph, table, extra=[column], where=after):
                end = query.end
                kind = end.spec.subject or spec.subject
                pick = identity_picker(end)
                seen: set[str] = set()
                for rows in stream(conn, query.statement, batch):
                    picked = [(pick(r), r[-1]) for r in rows]
                    picked = [
                        (t, _as_date(b)) for t, b in picked if t is not None and b is not None
                    ]
                    hashes = keyring.hash_many([t for t, _ in picked])
                    known = _known(store, controller_id, hashes)
                    for digest, (text, born) in zip(hashes, picked, strict=True):
                        if digest in seen or born is None:
                            continue
                        ref, jurisdiction, country, parent = known.get(
                            digest, (None, None, None, None)
                        )
                        if jurisdiction not in limits.jurisdictions:
                            jurisdiction = None  # not one the policy serves: the strictest
                        placed = limits.classify(kind, jurisdiction, country, born)
                        if placed is None:
                            continue
                        seen.add(digest)
                        age, source, rules, j = placed
                        found.append(
                            Child(
                                identity_hash=digest,
                                subject_ref=ref,
                                dataset=key,
                                table=table,
                                column=column,
                                identity_table=end.name,
                                kind=kind,
                                jurisdiction=j,
                                age_limit=age,
                                source=source,
                                rules=rules,
                                parental_consent=parent is not None,
                                parent_hash=parent or None,
                                identity=Identity.parse(text),
                            )
                        )
        cutoffs = {
            f"{j}:{age}": cutoff(today, age).isoformat()
            for j in limits.jurisdictions
            for age, _, _ in limits.limits(spec.subject, j, None)
        }
        found.sort(key=lambda c: c.identity_hash)
        tables.append(TableChildren(key, table, column, cutoffs, found))
    return ChildrenReport(today, tables)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):  # a birth date kept as text
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _known(
    store: Store | None, controller_id: int | None, hashes: Sequence[str]
) -> dict[str, tuple[str | None, str | None, str | None, str]]:
    """hash -> (subject ref, jurisdiction, country, parent's hash or "" when a parent's
    consent is recorded, else None): one query per batch."""
    if store is None or not hashes:
        return {}
    now = datetime.now(UTC)
    parental = consent_state.join(
        consent_records, consent_records.c.ref == consent_state.c.record_ref
    )
    parent = (
        sa.select(consent_state.c.subject_id, consent_records.c.actor, consent_state.c.expires_at)
        .select_from(parental)
        .where(
            consent_state.c.controller_id == controller_id,
            consent_state.c.topic == "parental",
            consent_state.c.key == "*",
            consent_state.c.scope == "",
            consent_state.c.state.in_(_PERMITTING),
        )
        .subquery()
    )
    query = (
        sa.select(
            identities.c.hash,
            subjects.c.ref,
            subjects.c.jurisdiction,
            subjects.c.country,
            parent.c.subject_id,
            parent.c.actor,
            parent.c.expires_at,
        )
        .select_from(
            identities.join(subjects, subjects.c.id == identities.c.subject_id).outerjoin(
                parent, parent.c.subject_id == subjects.c.id
            )
        )
        .where(identities.c.controller_id == controller_id, identities.c.hash.in_(hashes))
    )
    out: dict[str, tuple[str | None, str | None, str | None, Any]] = {}
    with store.engine.connect() as conn:
        for h, ref, j, country, consented, actor, expires in conn.execute(query):
            valid = consented is not None and (expires is None or expires > now)
            out[h] = (ref, j, country, (actor or "") if valid else None)
    return out
