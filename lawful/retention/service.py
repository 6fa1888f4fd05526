"""`Retention`: the policy's retention rules kept against the datasets and lawful's records.

    plan()                     what a sweep would do now, per rule: rows, held, oldest
    sweep(dry_run=False)       do it, in batches; one audit event per rule per run
    hold(...), release(ref)    legal holds, each with its audit event
    holds()                    the holds, active first

Every rule of the policy that a dataset applies to a table (`retention:` in the
annotation) is swept there; the policy's request-correspondence rule (by name, default
`request_correspondence`) and fixed periods sweep lawful's own records too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit import NewEvent, append
from lawful.audit.log import lock_head
from lawful.datasets import Datasets
from lawful.datasets.checks import find_rule
from lawful.datasets.masks import MASK_KEY_PURPOSE
from lawful.policy import Policy
from lawful.policy.durations import Duration
from lawful.policy.vocabulary import did_you_mean
from lawful.retention import holds as hold_store
from lawful.retention import records
from lawful.retention.holds import HoldError, HoldView, RetentionError
from lawful.retention.sweep import (
    DEFAULT_BATCH,
    NOTHING_HELD,
    RuleSweep,
    TableSweep,
    cutoff,
    plan_target,
    sweep_target,
)
from lawful.retention.tables import legal_holds
from lawful.retention.targets import Target, dataset_targets
from lawful.store import Store
from lawful.subjects import Identity, Keyring

SWEPT = "retention.swept"
HOLD_PLACED = "retention.hold_placed"
HOLD_RELEASED = "retention.hold_released"
MESSAGES_AFTER = Duration(days=30)  # sent messages (sealed address and body) kept this long


@dataclass
class SweepReport:
    """One run: per rule, per table, what went (or would go)."""

    run: str
    at: dt.datetime
    dry_run: bool
    rules: list[RuleSweep] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.rules)

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.rules)

    def rule(self, name: str) -> RuleSweep:
        return next(r for r in self.rules if r.rule == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "rows": self.rows,
            "rules": [r.to_dict() for r in self.rules],
        }


class Retention:
    """Retention sweeps and legal holds for the controller of `policy`."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        keyring: Keyring,
        datasets: Datasets | None = None,
        *,
        batch: int = DEFAULT_BATCH,
        correspondence_rule: str = "request_correspondence",
        messages_after: Duration = MESSAGES_AFTER,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"a sweep batch is 1 row or more, not {batch}")
        self.store = store
        self.policy = policy
        self.keyring = keyring
        self.datasets = datasets
        self.batch = batch
        self.correspondence_rule = correspondence_rule
        self.messages_after = messages_after
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.key = policy.key
        self.controller_id = store.ensure_controller(policy.key, policy.controller.name)
        self._targets: list[Target] | None = None
        self._mask_key: bytes | None = None

    # -- what applies where ----------------------------------------------------------------

    def targets(self) -> list[Target]:
        """Every (rule, table) of the datasets, checked against the live schemas."""
        if self._targets is None:
            found: list[Target] = []
            if self.datasets is not None:
                for key in self.datasets.loaded:
                    found += dataset_targets(self.datasets.graph(key), self.policy)
            self._targets = found
        return self._targets

    def rule_names(self) -> list[str]:
        """The rules a sweep runs: those applied in a dataset, then lawful's records."""
        names = list(dict.fromkeys(t.rule for t in self.targets()))
        return names + [r.name for r in self._record_rules(frozenset())]

    def _record_rules(self, held: frozenset[str]) -> list[records.RecordRule]:
        rule = find_rule(self.policy, self.correspondence_rule)
        period = rule.keep if rule is not None else None
        return records.record_rules(self.controller_id, period, self.messages_after, held)

    def _selected(self, rules: Iterable[str] | None) -> set[str] | None:
        if rules is None:
            return None
        wanted = set(rules)
        known = self.rule_names()
        bad = sorted(wanted - set(known))
        if bad:
            guess = did_you_mean(bad[0], known)
            hint = f"did you mean '{guess}'?" if guess else f"rules swept: {', '.join(known)}"
            raise RetentionError(
                f"no dataset or lawful record is swept under rule '{bad[0]}'; {hint}"
            )
        return wanted

    # -- sweeps ----------------------------------------------------------------------------

    def plan(
        self, *, rules: Iterable[str] | None = None, now: dt.datetime | None = None
    ) -> SweepReport:
        """What a sweep would do now (a dry run): per rule and table, the rows and the oldest."""
        return self.sweep(dry_run=True, rules=rules, now=now)

    def sweep(
        self,
        *,
        dry_run: bool = False,
        rules: Iterable[str] | None = None,
        now: dt.datetime | None = None,
    ) -> SweepReport:
        """Apply the rules (all, or those named): delete or anonymize what has expired.

        Each batch commits on its own, so an interrupted sweep is finished by the next.
        A real sweep writes one `retention.swept` audit event per rule, with the counts.
        """
        wanted = self._selected(rules)
        at = (now or self.clock()).astimezone(dt.UTC)
        report = SweepReport(run=uuid.uuid4().hex, at=at, dry_run=dry_run)
        active = self.store.write(lambda conn: hold_store.active_rows(conn, self.controller_id))
        held = hold_store.held_rows(self.datasets, self.keyring, active) if active else {}
        by_rule: dict[str, RuleSweep] = {}
        for target in self.targets():
            if wanted is not None and target.rule not in wanted:
                continue
            sweep = by_rule.setdefault(
                target.rule,
                RuleSweep(target.rule, str(target.keep), target.spec.then.value),
            )
            assert self.datasets is not None
            engine = self.datasets.engine(target.dataset)
            limit = cutoff(target.keep, at)
            holding = held.get((target.dataset, target.table), NOTHING_HELD)
            if dry_run:
                sweep.tables.append(plan_target(engine, target, limit, holding, self.mask_key()))
            else:
                sweep.tables.append(
                    sweep_target(engine, target, limit, holding, self.mask_key(), self.batch)
                )
        for rule in self._record_rules(hold_store.held_hashes(active)):
            if wanted is not None and rule.name not in wanted:
                continue
            sweep = RuleSweep(rule.name, str(rule.keep), rule.then)
            by_rule[rule.name] = sweep
            sweep.tables.append(self._records(rule, at, dry_run))
        report.rules = list(by_rule.values())
        if not dry_run:
            self._audit(report)
        return report

    def mask_key(self) -> bytes:
        if self._mask_key is None:
            given = self.datasets.mask_key if self.datasets is not None else None
            self._mask_key = given or self.keyring.derive(MASK_KEY_PURPOSE)
        return self._mask_key

    def _records(self, rule: records.RecordRule, at: dt.datetime, dry_run: bool) -> TableSweep:
        out = records.result(rule, at)
        if dry_run:
            with self.store.engine.connect() as conn:
                out.rows, out.oldest = rule.count(conn, at)
            return out
        out.rows = self.store.write(lambda conn: rule.clear(conn, at))
        out.batches = 1
        return out

    def _audit(self, report: SweepReport) -> None:
        events = [
            NewEvent(
                SWEPT,
                data={
                    "run": report.run,
                    "rule": rule.rule,
                    "keep": rule.keep,
                    "then": rule.then,
                    "rows": rule.rows,
                    "tables": [
                        {
                            "dataset": t.dataset,
                            "table": t.table,
                            "action": t.action,
                            "from": t.clock,
                            "cutoff": t.cutoff.isoformat(),
                            "rows": t.rows,
                            "held": t.held,
                            "skipped": t.skipped,
                            "failed": t.error is not None,
                        }
                        for t in rule.tables
                    ],
                },
            )
            for rule in report.rules
        ]
        self.store.write(lambda conn: append(conn, self.controller_id, self.key, events))

    # -- legal holds -----------------------------------------------------------------------

    def hold(
        self,
        *,
        reason: str,
        by: str,
        identity: Identity | str | None = None,
        table: str | None = None,
        case: str | None = None,
    ) -> HoldView:
        """Place a hold on a subject's rows, a table, or a subject's rows in one table.

        `table` is `table` or `dataset.table`; `by` names who placed it (an operator's
        id, not a person's name if it can be avoided).
        """
        why = hold_store.check_reason(reason)
        who = hold_store.check_text(by, "who places the hold (by)", hold_store.WHO_MAX)
        case_ref = hold_store.check_text(case, "the case reference", hold_store.CASE_MAX)
        person = self._identity(identity)
        dataset, table_name = self._table(table) if table is not None else (None, None)
        if person is None and table_name is None:
            raise HoldError("say what the hold covers: a subject (an identity), a table, or both")
        assert who is not None

        def place(conn: Connection) -> HoldView:
            lock_head(conn, self.controller_id)
            placed = hold_store.insert_hold(
                conn,
                self.controller_id,
                self.keyring,
                identity=person,
                dataset=dataset,
                table=table_name,
                reason=why,
                case=case_ref,
                by=who,
                now=self.clock(),
            )
            append(conn, self.controller_id, self.key, [self._event(HOLD_PLACED, placed)])
            return placed

        return self.store.write(place)

    def release(self, ref: str, *, by: str) -> HoldView:
        """Release an active hold; the next sweep applies the rules to what it held."""
        who = hold_store.check_text(by, "who releases the hold (by)", hold_store.WHO_MAX)
        h = legal_holds.c

        def release(conn: Connection) -> HoldView:
            lock_head(conn, self.controller_id)
            row = conn.execute(
                sa.select(legal_holds).where(h.controller_id == self.controller_id, h.ref == ref)
            ).first()
            if row is None:
                raise HoldError(f"there is no hold '{ref}'; `lawful hold list` shows them")
            if row.released_at is not None:
                raise HoldError(f"hold '{ref}' was already released on {row.released_at:%Y-%m-%d}")
            conn.execute(
                sa.update(legal_holds)
                .where(h.id == row.id)
                .values(released_at=self.clock(), released_by=who)
            )
            done = hold_store.view(conn.execute(sa.select(legal_holds).where(h.id == row.id)).one())
            append(conn, self.controller_id, self.key, [self._event(HOLD_RELEASED, done)])
            return done

        return self.store.write(release)

    def holds(self, *, released: bool = False) -> list[HoldView]:
        """The active holds, oldest first (with `released`, the released ones too)."""
        h = legal_holds.c
        query = sa.select(legal_holds).where(h.controller_id == self.controller_id)
        if not released:
            query = query.where(h.released_at.is_(None))
        with self.store.engine.connect() as conn:
            return [hold_store.view(row) for row in conn.execute(query.order_by(h.id))]

    def _event(self, kind: str, hold: HoldView) -> NewEvent:
        return NewEvent(
            kind,
            subject=hold.subject_hash,
            data={
                "hold": hold.ref,
                "reason": hold.reason,
                "dataset": hold.dataset,
                "table": hold.table,
            },
        )

    def _identity(self, identity: Identity | str | None) -> Identity | None:
        if identity is None or isinstance(identity, Identity):
            return identity
        return Identity.parse(identity)

    def _table(self, text: str) -> tuple[str, str]:
        """`dataset.table` or `table` (which one dataset must annotate)."""
        if self.datasets is None:
            raise HoldError(
                "a hold on a table needs the dataset that annotates it (--dataset FILE)"
            )
        loaded = self.datasets.loaded
        dataset, _, name = text.rpartition(".")
        if dataset:
            if dataset not in loaded:
                raise HoldError(f"there is no dataset '{dataset}' (have: {', '.join(loaded)})")
            owners = [dataset] if name in loaded[dataset].dataset.tables else []
        else:
            owners = [k for k, item in loaded.items() if name in item.dataset.tables]
        if len(owners) != 1:
            tables = sorted({t for item in loaded.values() for t in item.dataset.tables})
            if not owners:
                guess = did_you_mean(name, tables)
                hint = f"did you mean '{guess}'?" if guess else f"annotated: {', '.join(tables)}"
                raise HoldError(f"no dataset annotates a table '{name}'; {hint}")
            raise HoldError(
                f"several datasets annotate '{name}' ({', '.join(owners)}); write dataset.table"
            )
        return owners[0], name
