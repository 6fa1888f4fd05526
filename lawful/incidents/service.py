"""`Incidents`: the breach register of one controller.

    open (scope checked, affected people computed from the datasets, stored) ─▶
    assess / add_event (contained, measure, ...) ─▶ notify (authority, subjects: the
    notice drafted, the notice marked sent) ─▶ close (with the report)

Every change is one transaction of lawful's store with its audit event; the audit
events carry numbers, refs, table names and counts, never the summary, notes or report
(free text the team writes) nor any identity.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit import NewEvent, append
from lawful.audit.log import lock_head
from lawful.datasets import Datasets
from lawful.incidents import notices
from lawful.incidents.affected import (
    BATCH,
    ExtraSubjects,
    IncidentError,
    Scope,
    Tally,
    affected_subjects,
    resolve_scope,
)
from lawful.incidents.deadlines import AUTHORITY, SUBJECTS, BreachDeadline, breach_deadlines
from lawful.incidents.tables import incident_events, incident_subjects, incidents
from lawful.policy import Policy
from lawful.policy.jurisdictions import UnknownJurisdictionError, get_jurisdiction
from lawful.store import PolicyVersion, Store
from lawful.store.bulk import insert_rows
from lawful.subjects import Keyring
from lawful.subjects.tables import identities, subjects

# What a timeline entry may say; notify() and close() write their own.
EVENT_KINDS = (
    "contained",  # the breach is stopped
    "measure",  # a measure taken or proposed (shown in the notices)
    "assessed",  # the risk to people assessed (assess())
    "authority_notified",  # told outside lawful; notify() also writes it
    "subjects_notified",
    "update",  # anything else worth keeping: a finding, a call with the authority
)
_NUMBER = re.compile(r"[0-9]{1,30}")  # ASCII digits: str.isdigit() also takes "²"
CLOCK_SKEW = timedelta(minutes=5)  # a discovery time this far in the future is a mistake


@dataclass(frozen=True)
class IncidentEvent:
    at: datetime
    kind: str
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "kind": self.kind, "note": self.note}


@dataclass(frozen=True)
class Incident:
    """An incident as the register shows it, with its deadlines and timeline."""

    number: int
    ref: str
    state: str  # open, closed
    summary: str
    discovered_at: datetime
    opened_at: datetime
    high_risk: bool | None
    people_estimate: int | None
    tables: list[str]
    categories: list[str]
    systems: list[str]
    jurisdictions: list[str]  # those its deadlines are counted for
    consequences: str | None
    subjects_count: int
    records_count: int | None
    by_jurisdiction: dict[str, int]
    authority_notified_at: datetime | None
    subjects_notified_at: datetime | None
    closed_at: datetime | None
    report_hash: str | None
    deadlines: list[BreachDeadline] = field(default_factory=list)
    events: list[IncidentEvent] = field(default_factory=list)

    def overdue(self, now: datetime | None = None) -> list[BreachDeadline]:
        """The deadlines past due and not met (none once closed)."""
        if self.state == "closed":
            return []
        now = now or datetime.now(UTC)
        return [d for d in self.deadlines if d.overdue(now)]

    def next_due(self) -> datetime | None:
        """The earliest deadline still to meet."""
        due = [d.due_at for d in self.deadlines if d.required and not d.done_at and d.due_at]
        return min(due) if due and self.state != "closed" else None

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            out[name] = value
        out["deadlines"] = [d.to_dict(now) for d in self.deadlines]
        out["events"] = [e.to_dict() for e in self.events]
        out["overdue"] = bool(self.overdue(now))
        return out


IncidentLike = Incident | int | str  # the incident, its number, or its ref


class Incidents:
    """The breach register of the controller of `policy`."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        keyring: Keyring,
        datasets: Datasets | None = None,
        *,
        version: PolicyVersion | None = None,
        extra_subjects: ExtraSubjects | None = None,
        clock: Callable[[], datetime] | None = None,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.policy = policy
        self.keyring = keyring
        self.datasets = datasets
        self.version = version
        self.extra_subjects = extra_subjects
        self.clock = clock or (lambda: datetime.now(UTC))
        self.batch = batch
        self.key = policy.key
        self.controller_id = store.ensure_controller(policy.key, policy.controller.name)

    # -- opening -----------------------------------------------------------------------

    def open(
        self,
        discovered_at: datetime,
        summary: str,
        *,
        tables: Sequence[str] = (),
        categories: Sequence[str] = (),
        systems: Sequence[str] = (),
        people_estimate: int | None = None,
        high_risk: bool | None = None,
        jurisdictions: Sequence[str] | None = None,
        consequences: str | None = None,
        extra_subjects: ExtraSubjects | None = None,
    ) -> Incident:
        """Record an incident and compute the people it affects.

        `tables` are annotated tables (`dataset.table`); with only `categories`, the tables
        holding them are affected. The people are the owners of every row of those tables
        (one keyed identity hash each), plus those `extra_subjects(scope)` names (e.g. from
        the disclosure log: identities, or `SubjectHash`es already keyed). `jurisdictions`
        fixes the laws whose deadlines apply; by default those of the people affected as
        lawful knows them, and the policy's for people it does not know.
        """
        now = self.clock()
        summary = (summary or "").strip()
        problems = []
        if not summary:
            problems.append("give a summary of what happened (--summary)")
        if discovered_at.tzinfo is None or discovered_at.utcoffset() is None:
            problems.append("give the discovery time with its time zone, e.g. 2026-03-01T09:00Z")
        elif discovered_at > now + CLOCK_SKEW:
            problems.append("the discovery time is in the future; give when it was discovered")
        if people_estimate is not None and people_estimate < 0:
            problems.append("the estimate of people affected can't be negative")
        explicit = None
        if jurisdictions is not None:
            explicit = []
            for key in jurisdictions:
                try:
                    explicit.append(get_jurisdiction(key).key)
                except UnknownJurisdictionError as exc:
                    problems.append(str(exc))
        if problems:
            raise IncidentError("; ".join(problems))
        scope = resolve_scope(self.policy, self.datasets, tables, categories, systems)
        extra = extra_subjects or self.extra_subjects
        discovered = discovered_at.astimezone(UTC)
        ref = uuid.uuid4().hex

        def work(conn: Connection) -> int:
            number = (
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(incidents.c.number), 0)).where(
                        incidents.c.controller_id == self.controller_id
                    )
                ).scalar_one()
                + 1
            )
            incident_id = conn.execute(
                sa.insert(incidents)
                .values(
                    controller_id=self.controller_id,
                    number=number,
                    ref=ref,
                    state="open",
                    summary=summary,
                    discovered_at=discovered,
                    opened_at=now,
                    high_risk=high_risk,
                    people_estimate=people_estimate,
                    tables=scope.table_names,
                    categories=scope.categories,
                    systems=scope.systems,
                    jurisdictions=explicit,
                    consequences=consequences,
                    subjects_count=0,
                    by_jurisdiction={},
                    policy_version=self.version.number if self.version else None,
                    updated_at=now,
                )
                .returning(incidents.c.id)
            ).scalar_one()
            # The walk streams into the store batch by batch; the audit head is taken
            # only at the end, so other writers are not held up while the datasets are read.
            tally = Tally()
            for rows in affected_subjects(
                self.datasets, self.keyring, scope, tally, extra=extra, batch=self.batch
            ):
                insert_rows(
                    conn,
                    incident_subjects,
                    [
                        {
                            "controller_id": self.controller_id,
                            "incident_id": incident_id,
                            "identity_hash": digest,
                            "identity_kind": kind,
                            "source": source,
                        }
                        for digest, kind, source in rows
                    ],
                )
            by_jurisdiction = self._known_subjects(conn, incident_id)
            counted = sum(tally.subjects.values())
            records = sum(tally.records.values()) if tally.records else None
            conn.execute(
                sa.update(incidents)
                .where(incidents.c.id == incident_id)
                .values(
                    subjects_count=counted, records_count=records, by_jurisdiction=by_jurisdiction
                )
            )
            note = None
            if tally.unreached:
                note = (
                    "no owner link leads from "
                    + ", ".join(tally.unreached)
                    + " to a table with identities: its people could not be computed"
                )
            self._event(conn, incident_id, now, "opened", note)
            lock_head(conn, self.controller_id)
            append(
                conn,
                self.controller_id,
                self.key,
                [
                    NewEvent(
                        "incident.opened",
                        data={
                            "number": number,
                            "ref": ref,
                            "discovered_at": discovered.isoformat(),
                            "tables": scope.table_names,
                            "categories": scope.categories,
                            "systems": scope.systems,
                            "high_risk": high_risk,
                            "subjects": counted,
                            "subjects_by_source": tally.subjects,
                            "records": records,
                            "by_jurisdiction": by_jurisdiction,
                            "unreached": tally.unreached,
                        },
                    )
                ],
            )
            return number

        number = self.store.write(work)
        return self.show(number)

    def _known_subjects(self, conn: Connection, incident_id: int) -> dict[str, int]:
        """Fill in lawful's subject ref and jurisdiction where it knows the person, set-based;
        the count of people per jurisdiction ("" for those it does not know)."""
        known = conn.execute(
            sa.select(identities.c.id)
            .where(identities.c.controller_id == self.controller_id)
            .limit(1)
        ).first()
        if known is not None:
            match = sa.and_(
                identities.c.controller_id == self.controller_id,
                identities.c.hash == incident_subjects.c.identity_hash,
            )
            joined = identities.join(subjects, subjects.c.id == identities.c.subject_id)
            conn.execute(
                sa.update(incident_subjects)
                .where(
                    incident_subjects.c.incident_id == incident_id,
                    sa.exists(sa.select(identities.c.id).where(match)),
                )
                .values(
                    subject_ref=sa.select(subjects.c.ref)
                    .select_from(joined)
                    .where(match)
                    .limit(1)
                    .scalar_subquery(),
                    jurisdiction=sa.select(subjects.c.jurisdiction)
                    .select_from(joined)
                    .where(match)
                    .limit(1)
                    .scalar_subquery(),
                )
            )
        rows = conn.execute(
            sa.select(incident_subjects.c.jurisdiction, sa.func.count())
            .where(incident_subjects.c.incident_id == incident_id)
            .group_by(incident_subjects.c.jurisdiction)
        ).all()
        return {j or "": n for j, n in sorted(rows, key=lambda r: r[0] or "")}

    # -- the timeline ------------------------------------------------------------------

    def add_event(
        self,
        incident: IncidentLike,
        kind: str,
        note: str | None = None,
        *,
        at: datetime | None = None,
    ) -> Incident:
        """Add an entry to the timeline: contained, measure, update, ... (`EVENT_KINDS`).

        `authority_notified` and `subjects_notified` also mark the notice as given (when
        it was sent outside lawful).
        """
        if kind not in EVENT_KINDS:
            raise IncidentError(
                f"'{kind}' is not a kind of timeline entry; use one of {', '.join(EVENT_KINDS)}"
            )
        return self._change(incident, kind, note, at=at)

    def assess(self, incident: IncidentLike, high_risk: bool, note: str | None = None) -> Incident:
        """Record the risk assessment: whether the breach is likely to put people at high risk."""
        return self._change(incident, "assessed", note, high_risk=high_risk)

    def notify(
        self, incident: IncidentLike, audience: str, *, at: datetime | None = None
    ) -> notices.Notice:
        """Draft the notice to `audience` ("authority" or "subjects") and mark it given."""
        if audience not in (AUTHORITY, SUBJECTS):
            raise IncidentError(f"notify the authority or the subjects, not {audience!r}")
        current = self.show(incident)
        notice = notices.draft(self.policy, current, audience)
        self._change(
            current,
            f"{audience}_notified",
            f"notice sha256 {notice.sha256}",
            at=at,
            notice_hash=notice.sha256,
        )
        return notice

    def draft(self, incident: IncidentLike, audience: str) -> notices.Notice:
        """The notice to `audience`, drafted without marking anything."""
        if audience not in (AUTHORITY, SUBJECTS):
            raise IncidentError(
                f"draft a notice to the authority or the subjects, not {audience!r}"
            )
        return notices.draft(self.policy, self.show(incident), audience)

    def close(self, incident: IncidentLike, report: str) -> Incident:
        """Close the incident with its report (kept, and its sha256 audited)."""
        if not (report or "").strip():
            raise IncidentError(
                "an incident is closed with a report: give its text (--report FILE)"
            )
        return self._change(incident, "closed", None, report=report)

    def _change(
        self,
        incident: IncidentLike,
        kind: str,
        note: str | None,
        *,
        at: datetime | None = None,
        high_risk: bool | None = None,
        report: str | None = None,
        notice_hash: str | None = None,
    ) -> Incident:
        now = self.clock()
        when = (at or now).astimezone(UTC) if (at is None or at.tzinfo) else None
        if when is None:
            raise IncidentError("give the time of the entry with its time zone")

        def work(conn: Connection) -> int:
            lock_head(conn, self.controller_id)
            row = self._row(conn, incident, lock=True)
            if row.state == "closed":
                raise IncidentError(f"incident {row.number} is closed; nothing more can be added")
            if when < row.discovered_at:
                raise IncidentError("an entry can't be earlier than the incident's discovery")
            values: dict[str, Any] = {"updated_at": now}
            data: dict[str, Any] = {"number": row.number, "ref": row.ref}
            if kind == "authority_notified" and row.authority_notified_at is None:
                values["authority_notified_at"] = when
            if kind == "subjects_notified" and row.subjects_notified_at is None:
                values["subjects_notified_at"] = when
            if kind == "assessed":
                values["high_risk"] = high_risk
                data["high_risk"] = high_risk
            if kind == "closed":
                assert report is not None
                digest = hashlib.sha256(report.encode()).hexdigest()
                values.update(state="closed", closed_at=when, report=report, report_hash=digest)
                data["report_sha256"] = digest
            if notice_hash is not None:
                data["notice_sha256"] = notice_hash
            data["at"] = when.isoformat()
            conn.execute(sa.update(incidents).where(incidents.c.id == row.id).values(**values))
            self._event(conn, row.id, when, kind, note)
            append(conn, self.controller_id, self.key, [NewEvent(f"incident.{kind}", data=data)])
            return int(row.number)

        return self.show(self.store.write(work))

    def _event(
        self, conn: Connection, incident_id: int, at: datetime, kind: str, note: str | None
    ) -> None:
        conn.execute(
            sa.insert(incident_events).values(
                controller_id=self.controller_id,
                incident_id=incident_id,
                at=at,
                kind=kind,
                note=note,
            )
        )

    # -- reading -----------------------------------------------------------------------

    def show(self, incident: IncidentLike) -> Incident:
        """The incident with its deadlines and timeline."""
        with self.store.engine.connect() as conn:
            row = self._row(conn, incident)
            events = conn.execute(
                sa.select(incident_events.c.at, incident_events.c.kind, incident_events.c.note)
                .where(incident_events.c.incident_id == row.id)
                .order_by(incident_events.c.at, incident_events.c.id)
            ).all()
        return self._view(row, [IncidentEvent(*e) for e in events])

    def list(self, *, open_only: bool = False, now: datetime | None = None) -> list[Incident]:
        """The register: overdue incidents first, then by the next deadline, closed last."""
        now = now or self.clock()
        query = sa.select(incidents).where(incidents.c.controller_id == self.controller_id)
        if open_only:
            query = query.where(incidents.c.state == "open")
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        views = [self._view(row, []) for row in rows]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(
            views,
            key=lambda v: (
                v.state == "closed",
                not v.overdue(now),
                v.next_due() or far,
                -v.number,
            ),
        )

    def subjects(self, incident: IncidentLike) -> list[dict[str, Any]]:
        """The people affected: identity hash, kind, source, and lawful's ref when known."""
        with self.store.engine.connect() as conn:
            row = self._row(conn, incident)
            rows = conn.execute(
                sa.select(
                    incident_subjects.c.identity_hash,
                    incident_subjects.c.identity_kind,
                    incident_subjects.c.source,
                    incident_subjects.c.subject_ref,
                    incident_subjects.c.jurisdiction,
                )
                .where(incident_subjects.c.incident_id == row.id)
                .order_by(incident_subjects.c.identity_hash)
            ).all()
        return [r._asdict() for r in rows]

    def _row(self, conn: Connection, incident: IncidentLike, *, lock: bool = False) -> Any:
        query = sa.select(incidents).where(incidents.c.controller_id == self.controller_id)
        if isinstance(incident, Incident):
            query = query.where(incidents.c.ref == incident.ref)
        elif isinstance(incident, int) or (
            isinstance(incident, str) and _NUMBER.fullmatch(incident)
        ):
            if not 0 < int(incident) < 2**63:  # beyond any number the column can hold
                raise IncidentError(
                    f"there is no incident {incident}; `lawful incident list` shows them"
                )
            query = query.where(incidents.c.number == int(incident))
        else:
            query = query.where(incidents.c.ref == str(incident))
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            name = incident.number if isinstance(incident, Incident) else incident
            raise IncidentError(f"there is no incident {name}; `lawful incident list` shows them")
        return row

    def _view(self, row: Any, events: list[IncidentEvent]) -> Incident:
        by_jurisdiction: dict[str, int] = dict(row.by_jurisdiction or {})
        if row.jurisdictions:
            applies = list(row.jurisdictions)
        else:
            applies = [j for j in by_jurisdiction if j]
            if "" in by_jurisdiction or not applies:
                applies += [str(j) for j in self.policy.jurisdictions if str(j) not in applies]
        deadlines = breach_deadlines(
            self.policy,
            row.discovered_at,
            applies,
            high_risk=row.high_risk,
            authority_notified_at=row.authority_notified_at,
            subjects_notified_at=row.subjects_notified_at,
        )
        return Incident(
            number=row.number,
            ref=row.ref,
            state=row.state,
            summary=row.summary,
            discovered_at=row.discovered_at,
            opened_at=row.opened_at,
            high_risk=row.high_risk,
            people_estimate=row.people_estimate,
            tables=list(row.tables),
            categories=list(row.categories),
            systems=list(row.systems),
            jurisdictions=applies,
            consequences=row.consequences,
            subjects_count=row.subjects_count,
            records_count=row.records_count,
            by_jurisdiction=by_jurisdiction,
            authority_notified_at=row.authority_notified_at,
            subjects_notified_at=row.subjects_notified_at,
            closed_at=row.closed_at,
            report_hash=row.report_hash,
            deadlines=deadlines,
            events=events,
        )


def parse_when(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is read as UTC. IncidentError when unreadable."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise IncidentError(
            f"'{text}' is not a time; write it as ISO 8601, e.g. 2026-03-01T09:30Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["EVENT_KINDS", "Incident", "IncidentError", "IncidentEvent", "Incidents", "Scope"]
