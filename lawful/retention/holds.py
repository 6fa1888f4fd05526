"""Legal holds: placed, released and listed; and the rows they keep out of a sweep.

A hold names a subject (an identity), a table (`table` or `dataset.table`), or both, and
a reason from the policy's vocabulary (dispute, legal_claim, legal_hold,
legal_obligation, investigation). Every active hold suspends the sweeps of what it
covers, whatever the rule: a rule's `exceptions` say which reasons the policy foresees,
and a hold for another reason is still obeyed (deleting data under a hold can't be
undone; the privacy team decides, and releases the hold). The identity is stored as its
keyed hash and sealed (AES-GCM), so a sweep can find the subject's rows
(`Datasets.find`) without the store holding it in clear.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from lawful.datasets import Datasets
from lawful.policy.vocabulary import HoldReason, unknown
from lawful.retention.sweep import Held, Key
from lawful.retention.tables import legal_holds
from lawful.subjects import Identity, Keyring

HOLD_CONTEXT = b"retention.hold"  # a sealed identity opens only as a hold's
WHO_MAX = 100
CASE_MAX = 100


class RetentionError(ValueError):
    """A sweep or hold asked for something that can't be done; the message says why."""


class HoldError(RetentionError):
    """A hold that can't be placed or released as asked; the message says why."""


@dataclass(frozen=True)
class HoldView:
    """A hold as the privacy team sees it: never the identity, only its kind."""

    ref: str
    reason: str
    case: str | None
    subject_kind: str | None  # email, phone... when the hold is about one subject
    subject_hash: str | None  # the keyed hash (as in audit events)
    dataset: str | None
    table: str | None
    created_at: datetime
    created_by: str
    released_at: datetime | None
    released_by: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    @property
    def scope(self) -> str:
        where = f"{self.dataset}.{self.table}" if self.table else "every table"
        who = f"one subject ({self.subject_kind})" if self.subject_kind else "every row"
        return f"{who} in {where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "hold": self.ref,
            "reason": self.reason,
            "case": self.case,
            "subject_kind": self.subject_kind,
            "subject_hash": self.subject_hash,
            "dataset": self.dataset,
            "table": self.table,
            "scope": self.scope,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "released_by": self.released_by,
        }


def check_reason(reason: str) -> HoldReason:
    if reason in HoldReason.__members__:
        return HoldReason(reason)
    spaced = reason.strip().lower().replace(" ", "_").replace("-", "_")
    if spaced in HoldReason.__members__:
        return HoldReason(spaced)
    raise HoldError(unknown(reason, "a hold reason", list(HoldReason.__members__)))


def check_text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > limit:
        raise HoldError(f"{what} must be 1 to {limit} characters, got {len(text)}")
    return text


def insert_hold(
    conn: Connection,
    controller_id: int,
    keyring: Keyring,
    *,
    identity: Identity | None,
    dataset: str | None,
    table: str | None,
    reason: HoldReason,
    case: str | None,
    by: str,
    now: datetime,
) -> HoldView:
    ref = uuid.uuid4().hex
    values: dict[str, Any] = {
        "controller_id": controller_id,
        "ref": ref,
        "reason": reason.value,
        "case_ref": case,
        "dataset": dataset,
        "table_name": table,
        "created_at": now,
        "created_by": by,
    }
    if identity is not None:
        key_id, sealed = keyring.encrypt(str(identity), context=HOLD_CONTEXT + ref.encode())
        values |= {
            "identity_kind": identity.kind.value,
            "identity_hash": keyring.hash(identity),
            "identity_ciphertext": sealed,
            "key_id": key_id,
        }
    conn.execute(sa.insert(legal_holds).values(values))
    row = conn.execute(sa.select(legal_holds).where(legal_holds.c.ref == ref)).one()
    return view(row)


def view(row: Row[Any]) -> HoldView:
    return HoldView(
        ref=row.ref,
        reason=row.reason,
        case=row.case_ref,
        subject_kind=row.identity_kind,
        subject_hash=row.identity_hash,
        dataset=row.dataset,
        table=row.table_name,
        created_at=row.created_at,
        created_by=row.created_by,
        released_at=row.released_at,
        released_by=row.released_by,
    )


def active_rows(conn: Connection, controller_id: int) -> list[Row[Any]]:
    h = legal_holds.c
    return list(
        conn.execute(
            sa.select(legal_holds)
            .where(h.controller_id == controller_id, h.released_at.is_(None))
            .order_by(h.id)
        )
    )


def held_identities(keyring: Keyring, rows: Iterable[Row[Any]]) -> list[tuple[Row[Any], Identity]]:
    """The active subject holds with their identities unsealed."""
    out = []
    for row in rows:
        if row.identity_ciphertext is None:
            continue
        text = keyring.decrypt(
            row.key_id, row.identity_ciphertext, context=HOLD_CONTEXT + row.ref.encode()
        )
        out.append((row, Identity.parse(text)))
    return out


def held_rows(
    datasets: Datasets | None, keyring: Keyring, rows: list[Row[Any]]
) -> Mapping[tuple[str, str], Held]:
    """What the active holds keep out of each (dataset, table)'s sweeps, found set-based.

    Holds on whole tables mark the table; holds on subjects are resolved through the
    datasets' traversal, one walk per scope (every table, or one table) for all the
    subjects held in it, and give the keys of the rows they reach.
    """
    out: dict[tuple[str, str], Held] = {}
    for row in rows:
        if row.identity_ciphertext is None and row.table_name is not None:
            out[(row.dataset, row.table_name)] = Held(table=True)
    if datasets is None:
        return out
    scopes: dict[tuple[str, str] | None, list[Identity]] = {}
    for row, identity in held_identities(keyring, rows):
        scope = (row.dataset, row.table_name) if row.table_name else None
        scopes.setdefault(scope, []).append(identity)
    keys: dict[tuple[str, str], set[Key]] = {}
    for scope, identities in scopes.items():
        for dataset, found in datasets.find(identities).items():
            for name, table in found.tables.items():
                if scope is None or scope == (dataset, name):
                    keys.setdefault((dataset, name), set()).update(table.keys())
    for where, found_keys in keys.items():
        if where in out or not found_keys:
            continue
        out[where] = Held(keys=frozenset(found_keys))
    return out


def held_hashes(rows: Iterable[Row[Any]]) -> frozenset[str]:
    """Identity hashes under a hold that covers every table (and so lawful's records)."""
    return frozenset(r.identity_hash for r in rows if r.identity_hash and r.table_name is None)
