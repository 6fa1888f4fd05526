"""The consistency check: do the policy's promises match the data and the records?

`audit_policy` compares the policy with the dataset annotations (and, when it can reach
them, the databases) and with lawful's own records, and returns findings, each with a
severity, the place it concerns and the fix:

* categories: every personal-data category found in the datasets is declared by some
  purpose (error), and every declared category is stored somewhere (warning: stale);
* consent: every purpose with a consent basis has a way to collect it (`consent.via`) or
  consent records (error); consent recorded for a purpose that is not consent-based
  (warning);
* retention: every rule covers data that exists (warning), every table holding personal
  data is covered by a rule (warning), every rule an annotation names exists (error).
  A table is covered by its `retention:` annotations when the dataset language has them
  (lawful.datasets.model.Table.retention), by the `rule:` of what erasure keeps, else by
  a rule covering its categories (for the table's subject kind, when it names one);
* disclosures: every recipient in the disclosure log is declared, for that purpose,
  with those categories (error);
* transfers: every recipient abroad has the safeguards the laws ask for, by
  `lawful.disclosure.transfers.decide_transfer` (error), and every logged transfer abroad
  recorded the safeguard it relied on (error);
* deadlines: the last N requests were answered by their due date (error when missed or
  overdue).

Nothing here writes; every query is one aggregate per table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from lawful.datasets.checks import is_personal
from lawful.datasets.load import LoadedDataset
from lawful.datasets.model import ColumnErase, Dataset, TableErase
from lawful.disclosure.transfers import (
    SubjectConsent,
    applicable_jurisdictions,
    decide_transfer,
)
from lawful.notice.facts import (
    recipient_categories,
    recipient_purposes,
    rule_categories,
    rule_subjects,
)
from lawful.policy.model import Policy
from lawful.policy.vocabulary import Basis
from lawful.store import Store

SEVERITIES = ("error", "warning", "info")
DEFAULT_LAST_REQUESTS = 100
_HELD = ("given", "renewed")  # consent states that permit processing


@dataclass(frozen=True)
class Finding:
    check: str  # stable code: categories.undeclared, retention.uncovered_table, ...
    severity: str  # error | warning | info
    place: str  # where: a policy key, dataset.table.column, or a store table
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "severity": self.severity,
            "place": self.place,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{self.severity}: {self.place}: {self.message}.{fix}"


@dataclass(frozen=True)
class LintReport:
    findings: tuple[Finding, ...]
    checked: tuple[str, ...] = field(default=())  # which checks ran (others lacked input)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "checked": list(self.checked),
            "findings": [f.to_dict() for f in self.findings],
        }


def audit_policy(
    policy: Policy,
    datasets: Sequence[LoadedDataset | Dataset] = (),
    *,
    store: Store | None = None,
    live: bool = True,
    last_requests: int = DEFAULT_LAST_REQUESTS,
    now: datetime | None = None,
) -> LintReport:
    """Check the policy against the datasets (and their databases when `live`) and the store.

    Datasets should be loaded *without* the policy (`load_dataset(path)`): with it, the
    loader already refuses the mismatches this check exists to report.
    """
    if last_requests < 1:
        raise ValueError(f"last_requests must be at least 1, got {last_requests}")
    now = now or datetime.now(UTC)
    sets = [d.dataset if isinstance(d, LoadedDataset) else d for d in datasets]
    findings: list[Finding] = []
    checked = ["transfers"]
    filled = None
    if live and sets:
        filled, notes = _filled_tables(sets)
        findings += notes
    if sets:
        checked += ["categories", "retention"]
        findings += _categories(policy, sets, filled)
        findings += _retention(policy, sets, filled)
    counts: dict[str, int] = {}
    controller_id = None
    if store is not None:
        controller_id = _controller_id(store, policy.key)
        checked += ["consent", "disclosures", "deadlines"]
    if controller_id is not None and store is not None:
        counts = consent_counts(store, controller_id, now=now)
    findings += _consent(policy, counts, store is not None)
    findings += _policy_transfers(policy)
    if controller_id is not None and store is not None:
        findings += _disclosures(policy, store, controller_id)
        findings += _deadlines(store, controller_id, last_requests, now)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order[f.severity])
    return LintReport(tuple(findings), tuple(checked))


# --- datasets -----------------------------------------------------------------------------


def _columns(sets: Sequence[Dataset]) -> Iterable[tuple[Dataset, str, str, str]]:
    """(dataset, table, column, category) of every personal-data column."""
    for dataset in sets:
        for table_name, table in dataset.tables.items():
            for column_name, column in table.columns.items():
                if is_personal(column.category):
                    yield dataset, table_name, column_name, str(column.category)


def _filled_tables(sets: Sequence[Dataset]) -> tuple[dict[str, bool] | None, list[Finding]]:
    """'dataset.table' -> whether it has a row (None when a database can't be read)."""
    from lawful.datasets.connect import ConnectError, create_engine, dataset_url, first_line

    filled: dict[str, bool] = {}
    for dataset in sets:
        try:
            engine = create_engine(dataset_url(dataset))
            try:
                with engine.connect() as conn:
                    for name in dataset.tables:
                        t = sa.table(name, schema=dataset.connection.schema_)
                        query = sa.select(sa.literal(1)).select_from(t).limit(1)
                        filled[f"{dataset.key}.{name}"] = conn.execute(query).first() is not None
            finally:
                engine.dispose()
        except (ConnectError, sa.exc.DBAPIError) as exc:
            reason = str(exc) if isinstance(exc, ConnectError) else first_line(exc)
            note = Finding(
                "datasets.unreachable",
                "warning",
                dataset.key,
                f"the database could not be read, so empty tables are not noted: {reason}",
                "set the dataset's database URL, or pass --offline to check the annotations only",
            )
            return None, [note]
    return filled, []


def _categories(
    policy: Policy, sets: Sequence[Dataset], filled: dict[str, bool] | None
) -> list[Finding]:
    taxonomy = policy.taxonomy()
    declared = {c: n for n, p in policy.purposes.items() for c in p.categories}
    findings = []
    stored: list[tuple[str, str]] = []  # (category, dataset.table)
    for dataset, table, column, category in _columns(sets):
        stored.append((category, f"{dataset.key}.{table}"))
        if not any(taxonomy.covers(d, category) for d in declared):
            findings.append(
                Finding(
                    "categories.undeclared",
                    "error",
                    f"{dataset.key}.{table}.{column}",
                    f"holds '{category}', which no purpose of the policy declares",
                    f"add '{category}' (or a category above it) to the categories of the "
                    "purposes that use it, or correct the column's category in the dataset file",
                )
            )
    for category, purpose in declared.items():
        holders = [
            where
            for key, where in stored
            if taxonomy.covers(category, key) or taxonomy.covers(key, category)
        ]
        if not holders:
            users = [n for n, p in policy.purposes.items() if category in p.categories]
            findings.append(
                Finding(
                    "categories.stale",
                    "warning",
                    f"purposes.{users[0]}.categories",
                    f"'{category}' is declared (by {', '.join(users)}) but no annotated "
                    "table stores it",
                    "annotate the column that holds it, or remove it from the purposes if "
                    "it is no longer collected",
                )
            )
        elif filled is not None and not any(filled.get(w) for w in holders):
            findings.append(
                Finding(
                    "categories.empty",
                    "info",
                    f"purposes.{purpose}.categories",
                    f"'{category}' is stored in {', '.join(sorted(set(holders)))}, which hold no rows yet",
                )
            )
    return findings


def _annotation_rules(table: Any) -> set[str]:
    """Rules a table's annotation names: `retention:` (when the language has it) and keeps."""
    names = {str(use.rule) for use in getattr(table, "retention", None) or ()}
    if table.erase is TableErase.keep and table.rule:
        names.add(table.rule)
    names |= {c.rule for c in table.columns.values() if c.erase is ColumnErase.keep and c.rule}
    return names


def _rule_key(policy: Policy, name: str) -> str | None:
    """The key of `retention_rules()` an annotation's rule name means (None: unknown)."""
    if name in policy.retention:
        return name
    if f"purpose:{name}" in policy.retention_rules():
        return f"purpose:{name}"
    return None


def _retention(
    policy: Policy, sets: Sequence[Dataset], filled: dict[str, bool] | None
) -> list[Finding]:
    taxonomy = policy.taxonomy()
    rules = policy.retention_rules()
    findings = []
    used: dict[str, list[str]] = {}  # rule key -> dataset.table where it applies
    annotated_any = any(getattr(t, "retention", None) for d in sets for t in d.tables.values())
    if not annotated_any:
        findings.append(
            Finding(
                "retention.inferred",
                "info",
                ", ".join(d.key for d in sets),
                "no table has `retention:` annotations, so coverage is taken from the "
                "`rule:` of kept data and from the rules covering each table's categories",
                "annotate each table with the rules that apply to it and their clock column",
            )
        )
    for dataset in sets:
        for table_name, table in dataset.tables.items():
            where = f"{dataset.key}.{table_name}"
            personal = {str(c.category) for c in table.columns.values() if is_personal(c.category)}
            named = _annotation_rules(table)
            for name in sorted(named):
                key = _rule_key(policy, name)
                if key is None:
                    findings.append(
                        Finding(
                            "retention.unknown_rule",
                            "error",
                            where,
                            f"names retention rule '{name}', which the policy does not declare",
                            f"declare '{name}' under retention (or write the policy's rule name)",
                        )
                    )
                else:
                    used.setdefault(key, []).append(where)
            if not personal:
                continue
            covering = {k for n in named if (k := _rule_key(policy, n))}
            if not covering:
                for key, rule in rules.items():
                    cats = rule_categories(policy, key, rule)
                    kinds = rule_subjects(policy, key, rule)
                    if table.subject and kinds is not None and table.subject not in kinds:
                        continue
                    if any(
                        taxonomy.covers(c, p) or taxonomy.covers(p, c)
                        for c in cats
                        for p in personal
                    ):
                        covering.add(key)
                        used.setdefault(key, []).append(where)
            if not covering:
                findings.append(
                    Finding(
                        "retention.uncovered_table",
                        "warning",
                        where,
                        "holds personal data ("
                        + ", ".join(sorted(personal))
                        + ") that no retention rule covers"
                        + (f" for subject kind '{table.subject}'" if table.subject else ""),
                        "add a retention rule for it (or a retention to the purposes that use it) "
                        "and annotate the table with it",
                    )
                )
    for key, rule in rules.items():
        place = (
            f"purposes.{key.removeprefix('purpose:')}.retention"
            if key.startswith("purpose:")
            else f"retention.{key}"
        )
        if key in used:
            if filled is not None and not any(filled.get(w) for w in used[key]):
                findings.append(
                    Finding("retention.empty", "info", place, "covers only tables with no rows yet")
                )
            continue
        cats = rule_categories(policy, key, rule)
        stored = any(
            taxonomy.covers(c, col) or taxonomy.covers(col, c)
            for c in cats
            for _, _, _, col in _columns(sets)
        )
        if not stored:
            findings.append(
                Finding(
                    "retention.unused_rule",
                    "warning",
                    place,
                    "covers no data that the datasets store"
                    + (f" ({', '.join(sorted(cats))})" if cats else ""),
                    "annotate the tables it applies to, or remove the rule if that data is gone",
                )
            )
    return findings


# --- store ----------------------------------------------------------------------------------


def _controller_id(store: Store, key: str) -> int | None:
    from lawful.store.tables import controllers

    with store.engine.connect() as conn:
        return conn.execute(sa.select(controllers.c.id).where(controllers.c.key == key)).scalar()


def consent_counts(
    store: Store,
    controller_id: int,
    *,
    now: datetime | None = None,
    before_version: int | None = None,
) -> dict[str, int]:
    """Purpose -> how many subjects hold consent to it now (given or renewed, unexpired).

    `before_version`: only consent given under an earlier policy version (to renew).
    """
    from lawful.consent.tables import consent_state as cs

    now = now or datetime.now(UTC)
    query = (
        sa.select(cs.c.key, sa.func.count(sa.distinct(cs.c.subject_id)))
        .where(
            cs.c.controller_id == controller_id,
            cs.c.topic == "consent",
            cs.c.state.in_(_HELD),
            sa.or_(cs.c.expires_at.is_(None), cs.c.expires_at > now),
        )
        .group_by(cs.c.key)
    )
    if before_version is not None:
        query = query.where(
            sa.or_(cs.c.policy_version.is_(None), cs.c.policy_version < before_version)
        )
    with store.engine.connect() as conn:
        return {key: n for key, n in conn.execute(query)}


def _consent(policy: Policy, counts: dict[str, int], have_store: bool) -> list[Finding]:
    findings = []
    for name, purpose in policy.purposes.items():
        if Basis.consent not in purpose.bases():
            continue
        way = purpose.consent is not None and bool(purpose.consent.via)
        held = counts.get(name, 0)
        if not way and not held:
            findings.append(
                Finding(
                    "consent.no_way",
                    "error",
                    f"purposes.{name}",
                    "rests on consent, but the policy names no way to collect it and no "
                    "consent is recorded",
                    "add `consent: {via: [form]}` (or checkbox, banner, ...) and collect consent "
                    "before using data for it",
                )
            )
        elif not way:
            findings.append(
                Finding(
                    "consent.no_way",
                    "warning",
                    f"purposes.{name}",
                    f"{held} subject(s) hold consent, but the policy names no way to collect more",
                    "add `consent: {via: [...]}` to the purpose",
                )
            )
        elif have_store and not held:
            findings.append(
                Finding(
                    "consent.none_recorded",
                    "info",
                    f"purposes.{name}",
                    "rests on consent and none is recorded yet: the purpose may use no one's data",
                )
            )
    for key, held in sorted(counts.items()):
        purpose = policy.purposes.get(key)
        if purpose is None or Basis.consent not in purpose.bases():
            what = "not a purpose of the policy" if purpose is None else "not consent-based"
            findings.append(
                Finding(
                    "consent.stale_records",
                    "warning",
                    f"consent_state (purpose '{key}')",
                    f"{held} subject(s) hold consent to '{key}', which is {what}",
                    "declare the purpose with a consent basis, or stop relying on these records",
                )
            )
    return findings


def _policy_transfers(policy: Policy) -> list[Finding]:
    findings = []
    jurisdictions = applicable_jurisdictions(policy, None)
    everything = SubjectConsent(separate_consent=True, consent=True)
    for name in policy.recipients:
        decision = decide_transfer(policy, name, jurisdictions=jurisdictions, consent=everything)
        if not decision.allowed:
            findings.append(
                Finding(
                    "transfers.no_safeguard",
                    "error",
                    f"recipients.{name}.safeguards",
                    decision.reason,
                    "declare the safeguard the law accepts for that country in the recipient's "
                    "safeguards, or keep the data in the country",
                )
            )
    return findings


def _disclosures(policy: Policy, store: Store, controller_id: int) -> list[Finding]:
    from lawful.disclosure.tables import disclosures as d

    taxonomy = policy.taxonomy()
    cats = sa.cast(d.c.categories, sa.Text)
    query = (
        sa.select(
            d.c.recipient,
            d.c.purpose,
            cats.label("categories"),
            d.c.country,
            d.c.jurisdictions,
            d.c.safeguard,
            sa.func.count().label("n"),
        )
        .where(d.c.controller_id == controller_id)
        .group_by(d.c.recipient, d.c.purpose, cats, d.c.country, d.c.jurisdictions, d.c.safeguard)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    findings = []
    everything = SubjectConsent(separate_consent=True, consent=True)
    for row in rows:
        place = (
            f"disclosures (recipient '{row.recipient}', purpose '{row.purpose}', {row.n} logged)"
        )
        spec = policy.recipients.get(row.recipient)
        if spec is None:
            findings.append(
                Finding(
                    "disclosures.undeclared_recipient",
                    "error",
                    place,
                    f"data was disclosed to '{row.recipient}', which the policy does not declare",
                    f"declare '{row.recipient}' under recipients (with its role, country and "
                    "safeguards) and name it in the purpose, or stop disclosing to it",
                )
            )
            continue
        if row.purpose not in recipient_purposes(policy, row.recipient):
            findings.append(
                Finding(
                    "disclosures.purpose",
                    "error",
                    place,
                    f"'{row.recipient}' received data for '{row.purpose}', a purpose the policy "
                    "does not declare it for",
                    f"add '{row.recipient}' to purposes.{row.purpose}.recipients, or stop these "
                    "disclosures",
                )
            )
        sent = json.loads(row.categories) if row.categories else []
        allowed = recipient_categories(policy, row.recipient)
        extra = [c for c in sent if not any(taxonomy.covers(a, c) for a in allowed)]
        if extra:
            findings.append(
                Finding(
                    "disclosures.categories",
                    "error",
                    place,
                    f"'{row.recipient}' received {', '.join(extra)}, beyond what it is declared to receive",
                    f"add them to recipients.{row.recipient}.categories (and the notice), or send less",
                )
            )
        jurisdictions = [j for j in (row.jurisdictions or "").split(",") if j] or list(
            applicable_jurisdictions(policy, None)
        )
        try:
            decision = decide_transfer(
                policy, row.recipient, jurisdictions=jurisdictions, consent=everything
            )
        except ValueError:
            continue
        if not decision.allowed:
            findings.append(
                Finding(
                    "transfers.no_safeguard",
                    "error",
                    place,
                    f"under the current policy this transfer would be refused: {decision.reason}",
                    f"declare the missing safeguard on recipients.{row.recipient}",
                )
            )
        elif decision.abroad and not row.safeguard:
            findings.append(
                Finding(
                    "transfers.unrecorded_safeguard",
                    "error",
                    place,
                    f"data went abroad ({row.country}) with no safeguard recorded",
                    "log disclosures through lawful (engine.disclosures.disclose), which "
                    "records the safeguard relied on",
                )
            )
    return findings


def _deadlines(store: Store, controller_id: int, last: int, now: datetime) -> list[Finding]:
    from lawful.requests.tables import requests as r

    query = (
        sa.select(r.c.ref, r.c.kind, r.c.due_at, r.c.closed_at, r.c.paused_at)
        .where(r.c.controller_id == controller_id)
        .order_by(r.c.received_at.desc(), r.c.id.desc())
        .limit(last)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    findings = []
    late = 0
    for row in rows:
        if row.closed_at is not None and row.closed_at > row.due_at:
            late += 1
            days = max(1, (row.closed_at.date() - row.due_at.date()).days)
            findings.append(
                Finding(
                    "deadlines.missed",
                    "error",
                    f"requests.{row.ref}",
                    f"{row.kind} request answered {row.closed_at:%Y-%m-%d}, {days} day(s) after "
                    f"its deadline {row.due_at:%Y-%m-%d}",
                    "look at why it was late (`lawful request show`); extend in time when a "
                    "request is complex",
                )
            )
        elif row.closed_at is None and row.paused_at is None and row.due_at < now:
            late += 1
            findings.append(
                Finding(
                    "deadlines.overdue",
                    "error",
                    f"requests.{row.ref}",
                    f"{row.kind} request is open past its deadline {row.due_at:%Y-%m-%d}",
                    "answer it now and tell the person why it is late",
                )
            )
    if rows:
        findings.append(
            Finding(
                "deadlines.summary",
                "info",
                "requests",
                f"{len(rows) - late} of the last {len(rows)} request(s) answered or open within their deadline",
            )
        )
    return findings
