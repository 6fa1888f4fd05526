"""lawful's own records as sweep targets: what the store keeps only for a while.

* `lawful:packages`: access and portability packages past their download window; their
  content is deleted (`lawful.requests.package.purge_expired`), the row stays as proof.
* `lawful:request_contacts`: the sealed contact and parameters of closed requests, once
  the policy's request-correspondence rule has run from the request's closing (Sera: 3
  years); the request, its outcome and its receipt stay as the proof of the answer.
  Without such a rule in the policy they are kept (the plan says so).
* `lawful:verification_codes`: one-time codes (their hashes) past their expiry.
* `lawful:messages`: messages sent to people (sealed address and body), a period after
  they were sent (30 days unless told).

Each is one set-based statement in the store, scoped to the controller; identities under
a hold on every table keep their request's contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.policy.durations import Duration
from lawful.requests.package import purge_expired
from lawful.requests.tables import (
    request_messages,
    request_packages,
    requests,
    verification_codes,
)
from lawful.retention.sweep import TableSweep, cutoff

PACKAGES = "lawful:packages"
CONTACTS = "lawful:request_contacts"
CODES = "lawful:verification_codes"
MESSAGES = "lawful:messages"
NAMES = (PACKAGES, CONTACTS, CODES, MESSAGES)


@dataclass(frozen=True)
class RecordRule:
    """One kind of lawful's records, its period, and the statements that count and clear it."""

    name: str
    table: str
    action: str
    clock: str
    keep: Duration
    then: str
    count: Callable[[Connection, dt.datetime], tuple[int, object]]
    clear: Callable[[Connection, dt.datetime], int]


def record_rules(
    controller_id: int,
    correspondence: Duration | None,
    messages_after: Duration,
    held: frozenset[str],
) -> list[RecordRule]:
    """The rules for lawful's records; the contacts' only when the policy gives a period."""
    mine = requests.c.controller_id == controller_id
    of_mine = sa.select(requests.c.id).where(mine)

    p = request_packages.c
    rules = [
        RecordRule(
            PACKAGES,
            "request_packages",
            "delete content",
            "expires_at",
            Duration(),
            "delete",
            lambda conn, now: _count(
                conn, request_packages, p.expires_at, p.expires_at <= now, p.deleted_at.is_(None)
            ),
            purge_expired,
        )
    ]
    if correspondence is not None:
        r = requests.c

        def contacts(limit: dt.datetime) -> sa.ColumnElement[bool]:
            conditions = [
                mine,
                r.closed_at.is_not(None),
                r.closed_at < limit,
                sa.or_(r.contact_ciphertext.is_not(None), r.params_ciphertext.is_not(None)),
            ]
            if held:
                conditions.append(r.identity_hash.not_in(sorted(held)))
            return sa.and_(*conditions)

        rules.append(
            RecordRule(
                CONTACTS,
                "requests",
                "clear contact and parameters",
                "closed_at",
                correspondence,
                "delete",
                lambda conn, now: _count(
                    conn, requests, r.closed_at, contacts(cutoff(correspondence, now))
                ),
                lambda conn, now: (
                    conn.execute(
                        sa.update(requests)
                        .where(contacts(cutoff(correspondence, now)))
                        .values(contact_ciphertext=None, params_ciphertext=None)
                    ).rowcount
                ),
            )
        )
    v = verification_codes.c
    rules.append(
        RecordRule(
            CODES,
            "verification_codes",
            "delete",
            "expires_at",
            Duration(),
            "delete",
            lambda conn, now: _count(
                conn,
                verification_codes,
                v.expires_at,
                v.expires_at < now,
                v.request_id.in_(of_mine),
            ),
            lambda conn, now: (
                conn.execute(
                    sa.delete(verification_codes).where(
                        v.expires_at < now, v.request_id.in_(of_mine)
                    )
                ).rowcount
            ),
        )
    )
    m = request_messages.c

    def sent(now: dt.datetime) -> sa.ColumnElement[bool]:
        limit = cutoff(messages_after, now)
        return sa.and_(m.controller_id == controller_id, m.sent_at.is_not(None), m.sent_at < limit)

    rules.append(
        RecordRule(
            MESSAGES,
            "request_messages",
            "delete",
            "sent_at",
            messages_after,
            "delete",
            lambda conn, now: _count(conn, request_messages, m.sent_at, sent(now)),
            lambda conn, now: conn.execute(sa.delete(request_messages).where(sent(now))).rowcount,
        )
    )
    return rules


def _count(
    conn: Connection,
    table: sa.Table,
    clock: sa.ColumnElement[object],
    *where: sa.ColumnElement[bool],
) -> tuple[int, object]:
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.min(clock)).select_from(table).where(*where)
    ).one()
    return int(row[0]), row[1]


def result(rule: RecordRule, now: dt.datetime) -> TableSweep:
    return TableSweep(
        rule=rule.name,
        dataset=None,
        table=rule.table,
        action=rule.action,
        clock=rule.clock,
        cutoff=cutoff(rule.keep, now),
    )
