"""The bulk form: a batch export of 10,000 subjects is judged set-based and logged in one
insert, with a handful of statements, not thousands."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from lawful.consent import ChoiceInput, Status, Topic, ledger
from lawful.disclosure import Disclosures
from lawful.disclosure import service as disclosure_service
from lawful.engine import Engine

N = 10_000


@contextmanager
def statements(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement sent to the store while the block runs.

    SQLAlchemy's event sees what goes through it; the consent ledger's hot reads use the
    driver's cursor and the log's bulk insert uses COPY on PostgreSQL, so those are
    counted where they are made (an insert through SQLAlchemy is then counted twice).
    """
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    real_tuples = ledger._tuples
    real_insert = disclosure_service.insert_rows

    def tuples(conn: Any, sql: str, params: Any) -> Any:
        seen.append("RAW " + sql.split(None, 1)[0].upper())
        return real_tuples(conn, sql, params)

    def insert_rows(conn: Any, table: Any, rows: Any) -> None:
        if rows:
            seen.append(f"BULK INSERT {table.name}")
        real_insert(conn, table, rows)

    monkeypatch.setattr(ledger, "_tuples", tuples)
    monkeypatch.setattr(disclosure_service, "insert_rows", insert_rows)
    sa.event.listen(engine.store.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine.store.engine, "before_cursor_execute", listener)


def people(n: int) -> list[str]:
    return [f"email:u{i}@bulk.example" for i in range(n)]


def test_ten_thousand_subjects_in_a_handful_of_statements(
    engine: Engine, disclosures: Disclosures, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = people(N - 500)  # the last 500 are people lawful has never seen
    subjects = people(N)
    choices = [ChoiceInput(s, Topic.opt_out, "sale", Status.given) for s in known]
    choices += [ChoiceInput(s, Topic.recipient, "mailer", Status.withdrawn) for s in known[::100]]
    choices += [ChoiceInput(s, Topic.restriction, "*", Status.withdrawn) for s in known[1::250]]
    engine.consent.record_many(choices)

    with statements(engine, monkeypatch) as seen:
        decisions = disclosures.disclose_many(subjects, "mailer", ["user.contact.email"], "orders")
    # 6 on PostgreSQL: count the identities, read every state at once (the batch names
    # most of them), lock the audit head, COPY the log, insert the event, move the head
    assert len(seen) <= 8, Counter(seen)
    assert Counter(s for s in seen if "SELECT" in s)["RAW SELECT"] == 1

    assert len(decisions) == N
    rules = Counter(d.rule for d in decisions)
    assert rules == {"allowed": N - 95 - 38, "recipient.restricted": 95, "restriction": 38}
    assert decisions[0].rule == "recipient.restricted"  # known[0]: restricted the mailer
    assert decisions[1].rule == "restriction"
    assert decisions[-1].allowed and decisions[-1].subject is None  # unknown person
    batch = decisions[0].batch
    assert batch and all(d.batch == batch for d in decisions)
    assert len({d.ref for d in decisions if d.allowed}) == N - 133

    with engine.store.engine.connect() as conn:
        logged = conn.execute(
            sa.text(
                "SELECT count(*), count(subject_id), count(DISTINCT identity_hash),"
                " min(recipient), max(recipient), min(country), min(safeguard)"
                " FROM disclosures WHERE batch = :b"
            ),
            {"b": batch},
        ).one()
        assert tuple(logged) == (N - 133, N - 500 - 133, N - 133, "mailer", "mailer", "US", "dpf")
        # the refused people are not in the log
        refused = [engine.keyring.hash_many([s])[0] for s in (known[0], known[1])]
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM disclosures WHERE identity_hash IN (:a, :b)"),
                {"a": refused[0], "b": refused[1]},
            ).scalar_one()
            == 0
        )
        [data] = conn.execute(
            sa.text("SELECT data FROM audit_events WHERE kind = 'disclosure.batch'")
        ).scalars()
    data = json.loads(data) if isinstance(data, str) else data
    assert data["subjects"] == N and data["disclosed"] == N - 133
    assert data["refused"] == {"recipient.restricted": 95, "restriction": 38}
    assert len(data["digest"]) == 64


def test_bulk_answers_are_the_single_answers(engine: Engine, disclosures: Disclosures) -> None:
    subjects = people(6)
    engine.consent.set_subject(subjects[0], jurisdiction="us-ca")
    engine.consent.set_subject(subjects[1], jurisdiction="us-ca")
    engine.consent.opt_out(subjects[1], "sale")
    engine.consent.set_subject(subjects[2], jurisdiction="eu")
    engine.consent.give(subjects[2], "ad_sharing", method="banner")
    engine.consent.set_subject(subjects[3], jurisdiction="eu")
    engine.consent.restrict_recipient(subjects[4], "adnet")
    bulk = disclosures.disclose_many(subjects, "adnet", ["user.device.cookie_id"], "ad_sharing")
    single = [
        disclosures.disclose(s, "adnet", ["user.device.cookie_id"], "ad_sharing") for s in subjects
    ]
    assert [(d.allowed, d.rule) for d in bulk] == [(d.allowed, d.rule) for d in single]
    assert [d.rule for d in bulk] == [
        "allowed",
        "opt_out.sale",
        "allowed",
        "consent.missing",
        "recipient.restricted",
        "consent.missing",  # unknown: in the EU the ad network needs consent
    ]


def test_a_batch_refused_by_the_policy_reads_nobody(
    engine: Engine, disclosures: Disclosures, monkeypatch: pytest.MonkeyPatch
) -> None:
    with statements(engine, monkeypatch) as seen:
        decisions = disclosures.disclose_many(people(50), "carrier", ["user.name"], "newsletter")
    assert {d.rule for d in decisions} == {"purpose.not_declared"}
    assert not any(s.startswith("RAW") for s in seen)
    with engine.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM disclosures")).scalar_one() == 0
        [data] = conn.execute(
            sa.text("SELECT data FROM audit_events WHERE kind = 'disclosure.batch'")
        ).scalars()
    data = json.loads(data) if isinstance(data, str) else data
    assert data["refused"] == {"purpose.not_declared": 50} and data["disclosed"] == 0


def test_a_batch_naming_few_of_many_people_reads_them_in_batches(
    engine: Engine, disclosures: Disclosures, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.consent.record_many(
        ChoiceInput(s, Topic.opt_out, "sale", Status.given) for s in people(N)
    )
    with statements(engine, monkeypatch) as seen:
        decisions = disclosures.disclose_many(people(3000), "carrier", ["user.name"], "orders")
    assert all(d.allowed for d in decisions)
    reads = Counter(seen)["RAW SELECT"]
    # one read per 1000 identities (PostgreSQL: per 10,000, as one array parameter)
    assert reads == (1 if engine.store.engine.dialect.name == "postgresql" else 3)
    assert len(seen) <= reads + 6, Counter(seen)
