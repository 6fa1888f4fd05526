"""`Children`: the children report, and erasure requests raised for the children found.

An erasure is raised through `lawful.requests` for each child the policy deletes on
discovery (`below_min_age: [..., delete_on_discovery]`, and no parent's consent where the
policy accepts one): `Requests.submit("erasure", identity, submitted_by="children-report")`,
so the request is verified by the controller itself (as a processor's controller vouches
for its subjects) and runs like any other, with its receipt. A child who already has an
open erasure request gets no second one. Each report and each request raised writes an
audit event, naming the child by the keyed hash of their identity only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit import NewEvent, append
from lawful.audit.log import lock_head
from lawful.children.report import ChildrenReport, children_report
from lawful.datasets import Datasets
from lawful.policy import Policy
from lawful.requests.service import RequestError, Requests
from lawful.requests.states import CLOSED
from lawful.requests.tables import requests as request_rows
from lawful.store import Store
from lawful.subjects import Keyring

SUBMITTED_BY = "children-report"


class ChildrenError(ValueError):
    """The children report can't run or act as asked; the message says why."""


@dataclass(frozen=True)
class RaisedErasure:
    """What `raise_erasures` did for one child."""

    identity_hash: str
    dataset: str
    table: str
    request_ref: str | None  # the request raised, or the open one already there
    raised: bool  # False: an erasure request was already open


class Children:
    """Children in the datasets of the controller of `policy`."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        keyring: Keyring,
        datasets: Datasets | None,
        requests: Requests | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.keyring = keyring
        self.datasets = datasets
        self.requests = requests
        self.key = policy.key
        self.controller_id = store.ensure_controller(policy.key, policy.controller.name)

    def report(self, *, today: date | None = None) -> ChildrenReport:
        """The children report (see lawful.children.report), audited with its counts."""
        if self.datasets is None:
            raise ChildrenError(
                "the children report reads the datasets' birth-date columns: give the "
                "dataset annotations (--dataset FILE)"
            )
        found = children_report(
            self.datasets, self.policy, keyring=self.keyring, store=self.store, today=today
        )
        counts = {f"{t.dataset}.{t.table}.{t.column}": len(t.children) for t in found.tables}

        def work(conn: Connection) -> None:
            lock_head(conn, self.controller_id)
            event = NewEvent(
                "children.report",
                data={
                    "today": found.today.isoformat(),
                    "columns": counts,
                    "children": len(found.children),
                    "to_delete": sum(c.to_delete for c in found.children),
                },
            )
            append(conn, self.controller_id, self.key, [event])

        self.store.write(work)
        return found

    def raise_erasures(self, report: ChildrenReport) -> list[RaisedErasure]:
        """An erasure request for each child to delete on discovery (none twice)."""
        if self.requests is None:
            raise ChildrenError("raising erasure requests needs lawful.requests (a Requests)")
        offered = {str(k) for k in self.policy.requests.kinds}
        targets = [c for c in report.children if c.to_delete and c.identity is not None]
        if targets and "erasure" not in offered:
            raise ChildrenError(
                "the policy deletes children's data on discovery but offers no erasure "
                "request (add erasure to requests.kinds)"
            )
        open_refs = self._open_erasures([c.identity_hash for c in targets])
        out: list[RaisedErasure] = []
        done: set[str] = set()
        for child in targets:
            if child.identity_hash in done:
                continue  # found in two tables: one request erases everywhere
            done.add(child.identity_hash)
            existing = open_refs.get(child.identity_hash)
            if existing is not None:
                out.append(
                    RaisedErasure(child.identity_hash, child.dataset, child.table, existing, False)
                )
                continue
            assert child.identity is not None
            try:
                intake = self.requests.submit(
                    "erasure",
                    child.identity,
                    jurisdiction=child.jurisdiction,
                    channel="api",
                    submitted_by=SUBMITTED_BY,
                )
            except RequestError as exc:
                raise ChildrenError(f"an erasure request could not be raised: {exc}") from None
            self._audit(
                child.identity_hash, intake.ref, child.dataset, child.table, child.age_limit
            )
            out.append(
                RaisedErasure(child.identity_hash, child.dataset, child.table, intake.ref, True)
            )
        return out

    def _open_erasures(self, hashes: list[str]) -> dict[str, str]:
        if not hashes:
            return {}
        closed = [s.value for s in CLOSED]
        out: dict[str, str] = {}
        with self.store.engine.connect() as conn:
            for start in range(0, len(hashes), 1000):
                rows = conn.execute(
                    sa.select(request_rows.c.identity_hash, request_rows.c.ref).where(
                        request_rows.c.controller_id == self.controller_id,
                        request_rows.c.kind == "erasure",
                        request_rows.c.identity_hash.in_(hashes[start : start + 1000]),
                        request_rows.c.state.not_in(closed),
                    )
                )
                out.update({h: ref for h, ref in rows})
        return out

    def _audit(self, identity_hash: str, ref: str, dataset: str, table: str, age: int) -> None:
        def work(conn: Connection) -> None:
            lock_head(conn, self.controller_id)
            event = NewEvent(
                "children.erasure_raised",
                subject=identity_hash,
                data={"request": ref, "dataset": dataset, "table": table, "age_limit": age},
            )
            append(conn, self.controller_id, self.key, [event])

        self.store.write(work)
