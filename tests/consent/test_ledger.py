"""The consent ledger and preferences through `engine.consent` (SQLite + PostgreSQL).

The ledger is append-only and every change writes its audit event in the same
transaction; failed writes leave nothing behind; batch imports are set-based; each
preference is recorded as its own topic; identities, links and merges name one person;
decisions are cached for `cache_ttl` seconds and audited as `DecisionLogging` says.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from lawful.audit.log import AuditLog, Event
from lawful.audit.tables import audit_events, audit_heads
from lawful.consent import (
    ChoiceInput,
    Consent,
    ConsentError,
    ConsentRecord,
    DecisionLogging,
    Signals,
    Status,
    Topic,
    UnknownName,
)
from lawful.consent.decide import OPT_OUTS
from lawful.consent.tables import consent_records, consent_state
from lawful.engine import Engine, record_policy
from lawful.policy import load_policy_text
from lawful.store import StoreError
from lawful.store.tables import metadata
from lawful.subjects import Identity, IdentityConflict, Keyring
from lawful.subjects.tables import identities, subjects
from tests.consent.conftest import POLICY, open_engine

ALICE = "email:alice@example.com"
ALICE_TYPED = "Alice@Example.com "  # the same person, as typed into a form
BOB = "email:bob@example.com"
CAROL = "email:carol@example.com"
PHONE_TYPED = "+1 (415) 555-0100"
PHONE = "phone:+14155550100"
PARENT = "email:parent@example.com"
NOW = datetime.now(UTC)

TEXT = POLICY.read_text()
NEWSLETTER_CONSENT = "    consent: {via: [checkbox, form], expires: 1 year}\n"
assert NEWSLETTER_CONSENT in TEXT


# -- helpers -------------------------------------------------------------------------------


def audit(engine: Engine) -> AuditLog:
    return AuditLog(engine.store, engine.policy.key)


def events(engine: Engine, after: int = 0) -> list[Event]:
    return audit(engine).events(after=after)


def last_seq(engine: Engine) -> int:
    found = audit(engine).events(last=1)
    return found[0].seq if found else 0


def table_rows(engine: Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.store.engine.connect() as conn:
        query = sa.select(table)
        if "id" in table.c:
            query = query.order_by(table.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


def counts(engine: Engine) -> dict[str, int]:
    with engine.store.engine.connect() as conn:
        return {
            t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0
            for t in (consent_records, consent_state, audit_events, subjects, identities)
        }


def subject_ref(engine: Engine, who: str) -> str:
    found = engine.consent.subject(who)
    assert found is not None
    return found.ref


def as_list(result: ConsentRecord | list[ConsentRecord]) -> list[ConsentRecord]:
    return result if isinstance(result, list) else [result]


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine.store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine.store.engine, "before_cursor_execute", record)


def variant(old: str, new: str, text: str = TEXT) -> str:
    assert old in text, old
    return text.replace(old, new)


# -- append-only ---------------------------------------------------------------------------


def test_give_withdraw_give_appends_three_records(engine: Engine) -> None:
    made = [
        engine.consent.give(ALICE, "newsletter", method="checkbox"),
        engine.consent.withdraw(ALICE, "newsletter"),
        engine.consent.give(ALICE, "newsletter", method="form"),
    ]
    history = engine.consent.history(ALICE)
    assert [r.ref for r in history] == [r.ref for r in made]
    assert [r.state for r in history] == [Status.given, Status.withdrawn, Status.given]
    assert [r.method for r in history] == ["checkbox", "api", "form"]
    assert history[0].at <= history[1].at <= history[2].at
    assert len({r.ref for r in history}) == 3
    assert history == made  # what was returned is what was stored
    # The current state is the newest record.
    current = engine.consent.state(ALICE).get("consent", "newsletter")
    assert current is not None and current.state == "given" and current.method == "form"
    assert counts(engine)["consent_state"] == 1


def test_ledger_rows_are_never_updated(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter", evidence={"form": "signup"})
    engine.consent.unsubscribe(ALICE, channel="email")
    engine.consent.give(BOB, "newsletter")
    before = table_rows(engine, consent_records)
    assert len(before) == 3

    # Everything that changes a subject's choices or identities afterwards.
    engine.consent.withdraw(ALICE, "newsletter")
    engine.consent.resubscribe(ALICE, channel="email")
    engine.consent.record_many(
        [ChoiceInput(ALICE, Topic.consent, "newsletter", Status.given, at=NOW - timedelta(days=9))]
    )
    engine.consent.set_subject(ALICE, jurisdiction="eu", kind="customer")
    engine.consent.link(ALICE, PHONE)
    engine.consent.merge(ALICE, BOB)
    engine.consent.give(ALICE, "newsletter")

    after = table_rows(engine, consent_records)
    assert len(after) == 3 + 4
    assert after[:3] == before  # the old rows, byte for byte
    # The merge moved state, not records: Bob's record still names Bob's subject.
    assert after[2]["subject_id"] == before[2]["subject_id"] != before[0]["subject_id"]


# -- audit ---------------------------------------------------------------------------------

Action = Callable[[Consent], "ConsentRecord | list[ConsentRecord]"]

CHANGES: dict[str, tuple[Action | None, Action, str]] = {
    # name: (setup, change, expected event kind)
    "give": (None, lambda c: c.give(ALICE, "newsletter"), "consent.given"),
    "give_channel": (None, lambda c: c.give(ALICE, "newsletter", channel="sms"), "consent.given"),
    "withdraw": (None, lambda c: c.withdraw(ALICE, "newsletter"), "consent.withdrawn"),
    "refuse": (None, lambda c: c.refuse(ALICE, "newsletter"), "consent.refused"),
    "request": (None, lambda c: c.request(ALICE, "newsletter"), "consent.requested"),
    "renew": (
        lambda c: c.give(ALICE, "newsletter", at=NOW - timedelta(days=400)),
        lambda c: c.give(ALICE, "newsletter"),
        "consent.renewed",
    ),
    "unsubscribe_channel": (
        None,
        lambda c: c.unsubscribe(ALICE, channel="email"),
        "preference.withdrawn",
    ),
    "unsubscribe_all_lists": (
        None,
        lambda c: c.unsubscribe(ALICE, list_name="*"),
        "preference.withdrawn",
    ),
    "resubscribe_list": (
        None,
        lambda c: c.resubscribe(ALICE, list_name="news"),
        "preference.given",
    ),
    "cookie_refused": (
        None,
        lambda c: c.set_cookies(ALICE, {"analytics": False}),
        "preference.refused",
    ),
    "opt_out": (None, lambda c: c.opt_out(ALICE, "share"), "preference.withdrawn"),
    "opt_in": (None, lambda c: c.opt_in(ALICE, "sale"), "preference.given"),
    "object": (None, lambda c: c.object(ALICE), "preference.withdrawn"),
    "withdraw_objection": (
        None,
        lambda c: c.withdraw_objection(ALICE, "fraud"),
        "preference.given",
    ),
    "restrict": (None, lambda c: c.restrict(ALICE), "preference.withdrawn"),
    "lift_restriction": (None, lambda c: c.lift_restriction(ALICE), "preference.given"),
    "restrict_recipient": (
        None,
        lambda c: c.restrict_recipient(ALICE, "adnet"),
        "preference.withdrawn",
    ),
    "allow_recipient": (None, lambda c: c.allow_recipient(ALICE, "adnet"), "preference.given"),
    "parental_consent": (
        None,
        lambda c: c.parental_consent(ALICE, parent=PARENT),
        "preference.given",
    ),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_every_change_writes_one_audit_event(engine: Engine, name: str) -> None:
    setup, change, kind = CHANGES[name]
    engine.consent.set_subject(ALICE, jurisdiction="eu")  # the subject exists beforehand
    if setup is not None:
        setup(engine.consent)
    seq = last_seq(engine)
    records = as_list(change(engine.consent))
    assert len(records) == 1
    [record] = records
    [event] = events(engine, after=seq)
    assert event.kind == kind
    assert event.subject == engine.keyring.subject_hash(subject_ref(engine, ALICE))
    assert event.data == {
        "record": record.ref,
        "topic": str(record.topic),
        "key": record.key,
        "scope": record.scope or None,
        "method": record.method,
        "policy_version": engine.policy_version.number,
    }
    assert audit(engine).verify().ok


def test_batch_writes_one_event_per_record(engine: Engine) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    seq = last_seq(engine)
    records = engine.consent.apply_signals(ALICE, Signals(gpc=True))
    written = events(engine, after=seq)
    assert len(records) == 3
    assert [e.kind for e in written] == ["preference.withdrawn"] * 3
    assert [e.data["record"] for e in written if e.data] == [r.ref for r in records]
    seq = last_seq(engine)
    imported = engine.consent.record_many(
        [ChoiceInput(ALICE, Topic.consent, "newsletter", Status.given) for _ in range(5)]
    )
    written = events(engine, after=seq)
    assert [e.kind for e in written] == ["consent.given"] * 5
    assert [e.data["record"] for e in written if e.data] == [r.ref for r in imported]


def test_audit_event_and_record_share_one_transaction(engine: Engine) -> None:
    engine.consent.give(BOB, "newsletter")
    engine.consent.set_subject(ALICE, kind="customer")
    before = counts(engine)
    # Rewind the chain head: the next event then takes a sequence number that is already
    # used, and the database refuses it after the record and its state were written.
    with engine.store.engine.begin() as conn:
        [head] = conn.execute(sa.select(audit_heads.c.controller_id, audit_heads.c.seq)).all()
        conn.execute(sa.update(audit_heads).values(seq=0))
    changes: list[Action] = [
        lambda c: c.withdraw(BOB, "newsletter"),
        lambda c: c.give(ALICE, "newsletter"),
        lambda c: c.set_cookies(ALICE, {"analytics": True}),
        lambda c: c.record_many(
            [
                ChoiceInput(BOB, Topic.opt_out, "sale", Status.withdrawn),
                ChoiceInput(CAROL, Topic.consent, "newsletter", Status.given),
            ]
        ),
    ]
    for change in changes:
        with pytest.raises(StoreError):
            change(engine.consent)
        # Without its event, no record, no state and no new subject was committed.
        assert counts(engine) == before
    with engine.store.engine.begin() as conn:
        conn.execute(sa.update(audit_heads).values(seq=head.seq))
    assert engine.decide(BOB, "newsletter").allowed
    assert audit(engine).verify().ok
    engine.consent.withdraw(BOB, "newsletter")
    assert engine.decide(BOB, "newsletter").rule == "consent.withdrawn"
    assert audit(engine).verify().ok


def test_audit_events_hold_no_identity(engine: Engine, keyring: Keyring) -> None:
    engine.consent.give(ALICE_TYPED, "newsletter", evidence={"form": "signup"})
    engine.consent.link(ALICE, PHONE_TYPED)
    engine.consent.unsubscribe(PHONE_TYPED, channel="email")
    engine.consent.set_subject(ALICE, kind="customer", jurisdiction="eu", country="IE")
    engine.consent.parental_consent(ALICE, parent=PARENT)
    engine.consent.give(BOB, "newsletter")
    engine.consent.record_many([ChoiceInput(CAROL, Topic.opt_out, "sale", Status.withdrawn)])
    engine.consent.merge(ALICE, BOB)
    engine.decide(ALICE, "newsletter")
    engine.decide("email:nobody@example.com", "newsletter")
    engine.consent.flush()

    written = events(engine)
    kinds = {e.kind for e in written}
    assert {"consent.given", "subject.identity_linked", "subject.merged"} <= kinds
    assert {"decision.allowed", "decision.refused", "preference.withdrawn"} <= kinds
    people = [ALICE, ALICE_TYPED, PHONE, PHONE_TYPED, PARENT, BOB, CAROL]
    forbidden = {p.strip() for p in people}
    forbidden |= {Identity.parse(p).value for p in people}
    forbidden |= {"alice", "bob", "carol", "parent@", "4155550100", "555-0100"}
    for event in written:
        text = json.dumps([event.subject, event.data]).lower()
        for value in forbidden:
            assert value.lower() not in text, (event.kind, value)
    # Subjects are named by the keyed hash of their ref, nothing else.
    refs = {subject_ref(engine, ALICE), subject_ref(engine, CAROL)}
    alice_events = [e for e in written if e.kind == "consent.given"]
    assert alice_events[0].subject == keyring.subject_hash(subject_ref(engine, ALICE))
    assert all(e.subject is None or len(e.subject) == 64 for e in written)
    assert not any(ref in json.dumps(e.to_dict()) for e in written for ref in refs)
    assert audit(engine).verify().ok
    # The store holds no identity in the clear either (none was linked with keep_raw).
    with engine.store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            dump = repr(conn.execute(sa.select(table)).all()).lower()
            for value in (Identity.parse(p).value.lower() for p in people):
                assert value not in dump, (table.name, value)


# -- failed writes -------------------------------------------------------------------------

FAILURES: dict[str, tuple[Action, str]] = {
    "email_in_evidence": (
        lambda c: c.give(ALICE, "newsletter", evidence={"by": "alice@example.com"}),
        "email address",
    ),
    "ip_in_evidence": (
        lambda c: c.give(ALICE, "newsletter", evidence={"from": "203.0.113.9"}),
        "keep_ip",
    ),
    "nested_evidence": (
        lambda c: c.give(ALICE, "newsletter", evidence={"form": {"id": 1}}),
        "text, a number, true/false or null",
    ),
    "unknown_purpose": (lambda c: c.give(ALICE, "newsleter"), "did you mean 'newsletter'"),
    "contract_purpose": (lambda c: c.withdraw(ALICE, "orders"), "based on contract"),
    "channel_and_list": (
        lambda c: c.give(ALICE, "newsletter", channel="email", list_name="news"),
        "not both",
    ),
    "naive_time": (
        lambda c: c.give(ALICE, "newsletter", at=datetime(2025, 1, 1, 12, 0)),
        "time zone",
    ),
    "unknown_method": (
        lambda c: c.give(ALICE, "newsletter", method="telepathy"),
        "way of collecting a choice",
    ),
    "strictly_necessary_refused": (
        lambda c: c.set_cookies(ALICE, {"analytics": True, "strictly_necessary": False}),
        "strictly necessary",
    ),
    "unknown_cookie": (
        lambda c: c.set_cookies(ALICE, {"analytics": True, "analytcs": False}),
        "did you mean 'analytics'",
    ),
    "unknown_recipient": (
        lambda c: c.restrict_recipient(ALICE, "adnett"),
        "did you mean 'adnet'",
    ),
    "batch_with_unknown_purpose": (
        lambda c: c.record_many(
            [
                ChoiceInput(BOB, Topic.consent, "newsletter", Status.withdrawn),
                ChoiceInput(ALICE, Topic.consent, "newsletter", Status.given),
                ChoiceInput(CAROL, Topic.consent, "newsleter", Status.given),
            ]
        ),
        "did you mean 'newsletter'",
    ),
    "batch_with_unknown_cookie": (
        lambda c: c.record_many(
            [
                ChoiceInput(ALICE, Topic.cookie, "analytics", Status.given),
                ChoiceInput(CAROL, Topic.cookie, "marketing", Status.given),
            ]
        ),
        "cookie category",
    ),
    # Evidence is checked inside the transaction, after the subjects were resolved and
    # created: the whole transaction must roll back.
    "batch_with_email_in_evidence": (
        lambda c: c.record_many(
            [
                ChoiceInput(BOB, Topic.channel, "email", Status.withdrawn),
                ChoiceInput(ALICE, Topic.consent, "newsletter", Status.given),
                ChoiceInput(
                    CAROL,
                    Topic.consent,
                    "newsletter",
                    Status.given,
                    evidence={"contact": "carol@example.com"},
                ),
            ]
        ),
        "email address",
    ),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_failed_write_records_nothing(engine: Engine, name: str) -> None:
    action, message = FAILURES[name]
    engine.consent.give(BOB, "newsletter")  # an existing subject, with a record and state
    before = counts(engine)
    seq = last_seq(engine)
    with pytest.raises(ConsentError, match=message):
        action(engine.consent)
    assert counts(engine) == before
    assert last_seq(engine) == seq
    assert engine.consent.subject(ALICE) is None
    assert engine.consent.history(ALICE) == []
    assert [r.state for r in engine.consent.history(BOB)] == [Status.given]
    assert audit(engine).verify().ok


def test_batch_with_a_naive_time_records_nothing(engine: Engine) -> None:
    engine.consent.give(BOB, "newsletter")
    before = counts(engine)
    naive = datetime(2025, 1, 1, 12, 0)  # no time zone: its meaning depends on the machine
    batch = [
        ChoiceInput(f"email:p{i}@example.com", Topic.consent, "newsletter", Status.given, at=naive)
        for i in range(60)  # enough rows for the bulk path (COPY on PostgreSQL)
    ]
    with pytest.raises((ValueError, sa.exc.StatementError), match=r"time ?zone"):
        engine.consent.record_many(
            [ChoiceInput(BOB, Topic.channel, "sms", Status.withdrawn), *batch]
        )
    assert counts(engine) == before


# -- record_many ---------------------------------------------------------------------------


def test_record_many_creates_each_subject_once(engine: Engine) -> None:
    people = [f"person{i}@example.com" for i in range(300)]
    choices: list[ChoiceInput] = []
    for i, person in enumerate(people):
        # The same people, spelled two ways in one batch.
        choices.append(ChoiceInput(f"email:{person}", Topic.consent, "newsletter", Status.given))
        if i % 2:
            choices.append(ChoiceInput(person.upper(), Topic.channel, "email", Status.withdrawn))
    records = engine.consent.record_many(choices)
    assert len(records) == 300 + 150
    assert counts(engine)["subjects"] == 300
    assert counts(engine)["identities"] == 300
    assert counts(engine)["consent_records"] == 450
    subject_created = [e for e in events(engine) if e.kind == "subject.created"]
    assert len(subject_created) == 300
    # The records of one person name one subject.
    by_key = {(r.subject_ref, r.topic): r for r in records}
    assert len({r.subject_ref for r in records}) == 300
    assert len(by_key) == 450
    decisions = engine.decide_many([f"email:{p}" for p in people], "newsletter", channel="email")
    assert [d.rule for d in decisions] == [
        "channel.unsubscribed" if i % 2 else "basis.consent" for i in range(300)
    ]
    state = engine.consent.state(people[1])
    assert state.get("consent", "newsletter") is not None
    assert state.get("channel", "email").state == "withdrawn"  # type: ignore[union-attr]
    # A second import for the same people finds them.
    engine.consent.record_many(
        [ChoiceInput(p.title(), Topic.opt_out, "sale", Status.withdrawn) for p in people]
    )
    assert counts(engine)["subjects"] == 300
    assert counts(engine)["consent_state"] == 450 + 300


def test_older_import_does_not_overwrite_newer_state(engine: Engine) -> None:
    given = engine.consent.give(ALICE, "newsletter")
    last_year = NOW - timedelta(days=365)
    [old] = engine.consent.record_many(
        [ChoiceInput(ALICE, Topic.consent, "newsletter", Status.withdrawn, at=last_year)]
    )
    assert engine.decide(ALICE, "newsletter").allowed
    current = engine.consent.state(ALICE).get("consent", "newsletter")
    assert current is not None and current.state == "given"
    history = engine.consent.history(ALICE)
    assert [r.ref for r in history] == [old.ref, given.ref]  # oldest first, both kept
    assert history[0].state is Status.withdrawn and history[0].method == "import"
    # A newer import does move the state.
    engine.consent.record_many(
        [ChoiceInput(ALICE, Topic.consent, "newsletter", Status.withdrawn, at=NOW + timedelta(1))]
    )
    assert engine.decide(ALICE, "newsletter").rule == "consent.withdrawn"


def test_newest_choice_of_one_batch_wins_whatever_its_order(engine: Engine) -> None:
    engine.consent.record_many(
        [
            ChoiceInput(ALICE, Topic.consent, "newsletter", Status.given, at=NOW),
            ChoiceInput(
                ALICE, Topic.consent, "newsletter", Status.withdrawn, at=NOW - timedelta(9)
            ),
            ChoiceInput(BOB, Topic.consent, "newsletter", Status.given, at=NOW - timedelta(9)),
            ChoiceInput(BOB, Topic.consent, "newsletter", Status.refused, at=NOW),
        ]
    )
    assert engine.decide(ALICE, "newsletter").allowed
    assert engine.decide(BOB, "newsletter").rule == "consent.refused"
    assert len(engine.consent.history(ALICE)) == len(engine.consent.history(BOB)) == 2


def test_record_many_statement_count_does_not_grow(engine: Engine) -> None:
    def run(n: int, prefix: str) -> int:
        choices = [
            ChoiceInput(f"email:{prefix}{i}@example.com", Topic.consent, "newsletter", Status.given)
            for i in range(n)
        ]
        with statements(engine) as seen:
            engine.consent.record_many(choices)
        return len(seen)

    run(10, "warm")  # first use of the store's connections
    small = run(100, "a")
    large = run(1000, "b")
    assert small <= 20
    assert large == small, (small, large)
    assert counts(engine)["consent_records"] == 1110
    # Existing subjects: still a fixed number of statements.
    with statements(engine) as seen:
        engine.consent.record_many(
            [
                ChoiceInput(f"email:b{i}@example.com", Topic.channel, "email", Status.withdrawn)
                for i in range(1000)
            ]
        )
    assert len(seen) <= small


# -- expiry, notice, evidence --------------------------------------------------------------


def test_consent_expires_as_the_policy_says(engine: Engine) -> None:
    at = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
    record = engine.consent.give(ALICE, "newsletter", at=at)
    assert record.expires_at == datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    # 29 February + 1 year ends on the last day of February.
    leap = engine.consent.give(BOB, "newsletter", at=datetime(2024, 2, 29, 8, tzinfo=UTC))
    assert leap.expires_at == datetime(2025, 2, 28, 8, tzinfo=UTC)
    # An explicit expiry wins over the policy's.
    explicit = at + timedelta(days=30)
    short = engine.consent.give(CAROL, "newsletter", at=at, expires_at=explicit)
    assert short.expires_at == explicit
    # Purposes without an expiry never lapse.
    assert engine.consent.give(ALICE, "site_analytics").expires_at is None
    # Imports get the policy's expiry too, unless they carry their own.
    [imported, own] = engine.consent.record_many(
        [
            ChoiceInput("email:dan@example.com", Topic.consent, "newsletter", Status.given, at=at),
            ChoiceInput(
                "email:eve@example.com",
                Topic.consent,
                "newsletter",
                Status.given,
                at=at,
                expires_at=explicit,
            ),
        ]
    )
    assert imported.expires_at == datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    assert own.expires_at == explicit
    # What is read back is what was written.
    stored = {r.ref: r.expires_at for p in (ALICE, BOB, CAROL) for r in engine.consent.history(p)}
    assert stored[record.ref] == record.expires_at
    assert stored[leap.ref] == leap.expires_at
    assert stored[short.ref] == explicit
    assert engine.consent.state(CAROL).get("consent", "newsletter").expires_at == explicit  # type: ignore[union-attr]


def test_notice_language_and_jurisdiction_are_kept(engine: Engine) -> None:
    notice = "Get our newsletter: news and deals by email, about twice a month."
    record = engine.consent.give(
        ALICE, "newsletter", notice_text=notice, language="fr", jurisdiction="eu"
    )
    assert record.notice_hash == hashlib.sha256(notice.encode("utf-8")).hexdigest()
    assert (record.language, record.jurisdiction) == ("fr", "eu")
    assert record.policy_version == engine.policy_version.number
    [stored] = engine.consent.history(ALICE)
    assert stored == record
    digest = hashlib.sha256(b"another notice").hexdigest()
    assert engine.consent.give(BOB, "newsletter", notice_hash=digest).notice_hash == digest
    # The jurisdiction defaults to the subject's; none is recorded when it is unknown.
    assert engine.consent.give(CAROL, "newsletter").jurisdiction is None
    engine.consent.set_subject(CAROL, jurisdiction="us-ca")
    assert engine.consent.give(CAROL, "newsletter").jurisdiction == "us-ca"
    assert engine.consent.give(CAROL, "newsletter", jurisdiction="eu").jurisdiction == "eu"
    assert engine.consent.unsubscribe(CAROL, channel="sms").jurisdiction == "us-ca"


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "A" * 64,  # upper case
        "g" * 64,
        hashlib.sha256(b"x").hexdigest() + "0",
        hashlib.sha256(b"x").hexdigest()[:-1],
    ],
)
def test_malformed_notice_hash_is_refused(engine: Engine, bad: str) -> None:
    with pytest.raises(ConsentError, match="64 lowercase hex digits"):
        engine.consent.give(ALICE, "newsletter", notice_hash=bad)
    assert engine.consent.history(ALICE) == []


def test_record_many_refuses_a_malformed_notice_hash(engine: Engine) -> None:
    with pytest.raises(ConsentError, match="64 lowercase hex digits"):
        engine.consent.record_many(
            [ChoiceInput(ALICE, Topic.consent, "newsletter", Status.given, notice_hash="NOTAHASH")]
        )


def test_give_refuses_an_unknown_jurisdiction(engine: Engine) -> None:
    with pytest.raises(ValueError, match="jurisdiction"):
        engine.consent.give(ALICE, "newsletter", jurisdiction="mars")


def test_evidence_plain_json_is_kept(engine: Engine) -> None:
    evidence = {
        "form": "signup-v2",
        "page": "https://shop.example/signup?from=footer",
        "checkbox": True,
        "form_version": 3,
        "score": 0.5,
    }
    record = engine.consent.give(ALICE, "newsletter", evidence=evidence)
    assert record.evidence == evidence
    [stored] = engine.consent.history(ALICE)
    assert stored.evidence == evidence
    assert engine.consent.give(BOB, "newsletter").evidence is None


@pytest.mark.parametrize(
    ("evidence", "message"),
    [
        ({"who": "alice@example.com"}, "email address"),
        ({"note": "sent by ALICE@EXAMPLE.COM"}, "email address"),
        ({"from": "203.0.113.9"}, "keep_ip"),
        ({"from": "2001:db8::1"}, "keep_ip"),
        ({"ip": "redacted"}, "keep_ip"),  # the name says what it holds
        ({"remote_addr": "10.0.0.1"}, "keep_ip"),
        ({"form": ["a", "b"]}, "text, a number, true/false or null"),
    ],
)
def test_evidence_with_personal_data_is_refused(
    engine: Engine, evidence: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConsentError, match=message):
        engine.consent.give(ALICE, "newsletter", evidence=evidence)
    with pytest.raises(ConsentError, match=message):
        engine.consent.parental_consent(ALICE, parent=PARENT, evidence=evidence)
    assert engine.consent.history(ALICE) == []


def test_ip_evidence_kept_when_the_purpose_says_keep_ip(store_url: str, keyring: Keyring) -> None:
    text = variant(
        NEWSLETTER_CONSENT,
        "    consent: {via: [checkbox, form], expires: 1 year, keep_ip: true}\n",
    )
    with open_engine(store_url, keyring, text) as engine:
        record = engine.consent.give(ALICE, "newsletter", evidence={"ip": "203.0.113.9"})
        assert record.evidence == {"ip": "203.0.113.9"}
        assert engine.consent.history(ALICE)[0].evidence == {"ip": "203.0.113.9"}
        [imported] = engine.consent.record_many(
            [
                ChoiceInput(
                    BOB, Topic.consent, "newsletter", Status.given, evidence={"ip": "2001:db8::1"}
                )
            ]
        )
        assert imported.evidence == {"ip": "2001:db8::1"}
        # Only for that purpose, and an email is still refused.
        with pytest.raises(ConsentError, match="keep_ip"):
            engine.consent.give(ALICE, "site_analytics", evidence={"ip": "203.0.113.9"})
        with pytest.raises(ConsentError, match="keep_ip"):
            engine.consent.parental_consent(ALICE, parent=PARENT, evidence={"ip": "203.0.113.9"})
        with pytest.raises(ConsentError, match="email address"):
            engine.consent.give(ALICE, "newsletter", evidence={"who": "alice@example.com"})


# -- preferences ---------------------------------------------------------------------------


def choice(engine: Engine, who: str, topic: str, key: str, scope: str = "") -> str | None:
    found = engine.consent.state(who).get(topic, key, scope)
    return found.state if found is not None else None


def test_unsubscribe_from_a_list_and_from_every_list(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter")
    record = engine.consent.unsubscribe(ALICE, list_name="news")
    assert (record.topic, record.key, record.scope) == (Topic.list, "news", "")
    assert (record.state, record.method) == (Status.withdrawn, "email_link")
    assert choice(engine, ALICE, "list", "news") == "withdrawn"
    assert choice(engine, ALICE, "list", "*") is None
    assert engine.decide(ALICE, "newsletter", list_name="news").rule == "list.unsubscribed"
    assert engine.decide(ALICE, "newsletter", list_name="deals").allowed
    every = engine.consent.unsubscribe(ALICE, list_name="*")
    assert (every.topic, every.key) == (Topic.list, "*")
    assert engine.decide(ALICE, "newsletter", list_name="deals").rule == "list.unsubscribed"
    engine.consent.resubscribe(ALICE, list_name="*")
    assert choice(engine, ALICE, "list", "*") == "given"
    assert engine.decide(ALICE, "newsletter", list_name="deals").allowed
    assert engine.decide(ALICE, "newsletter", list_name="news").rule == "list.unsubscribed"
    with pytest.raises(ConsentError, match="did you mean 'news'"):
        engine.consent.unsubscribe(ALICE, list_name="newz")
    with pytest.raises(ConsentError, match="name either a channel"):
        engine.consent.unsubscribe(ALICE)
    with pytest.raises(ConsentError, match="name either a channel"):
        engine.consent.unsubscribe(ALICE, channel="email", list_name="news")


def test_leaving_every_list_needs_the_policy_to_offer_it(store_url: str, keyring: Keyring) -> None:
    text = variant(
        "  limit_ad_tracking: true\n",
        "  limit_ad_tracking: true\n  unsubscribe: {all_lists: false}\n",
    )
    with open_engine(store_url, keyring, text) as engine:
        with pytest.raises(ConsentError, match="all_lists"):
            engine.consent.unsubscribe(ALICE, list_name="*")
        assert engine.consent.unsubscribe(ALICE, list_name="news").key == "news"


def test_channel_preferences_are_recorded(engine: Engine) -> None:
    record = engine.consent.unsubscribe(ALICE, channel="sms", method="form")
    assert (record.topic, record.key, record.state) == (Topic.channel, "sms", Status.withdrawn)
    assert choice(engine, ALICE, "channel", "sms") == "withdrawn"
    assert choice(engine, ALICE, "channel", "email") is None
    again = engine.consent.resubscribe(ALICE, channel="sms")
    assert again.state is Status.given and choice(engine, ALICE, "channel", "sms") == "given"
    with pytest.raises(ConsentError, match="marketing channel"):
        engine.consent.unsubscribe(ALICE, channel="fax")
    assert [r.state for r in engine.consent.history(ALICE)] == [Status.withdrawn, Status.given]


def test_cookie_choices_per_category(engine: Engine) -> None:
    records = engine.consent.set_cookies(ALICE, {"analytics": True, "strictly_necessary": True})
    # Strictly necessary cookies are always on: nothing to record.
    assert [(r.topic, r.key, r.state, r.method) for r in records] == [
        (Topic.cookie, "analytics", Status.given, "banner")
    ]
    assert choice(engine, ALICE, "cookie", "analytics") == "given"
    [refused] = engine.consent.set_cookies(ALICE, {"analytics": False})
    assert refused.state is Status.refused
    assert choice(engine, ALICE, "cookie", "analytics") == "refused"
    with pytest.raises(ConsentError, match=r"strictly necessary.*cannot be refused"):
        engine.consent.set_cookies(ALICE, {"strictly_necessary": False})
    with pytest.raises(ConsentError, match=r"'analitics' is not a cookie category.*'analytics'"):
        engine.consent.set_cookies(ALICE, {"analitics": True})
    assert len(engine.consent.history(ALICE)) == 2


def test_opt_out_and_back_in_of_each_kind(engine: Engine) -> None:
    for kind in OPT_OUTS:
        out = engine.consent.opt_out(ALICE, kind)
        assert (out.topic, out.key, out.state) == (Topic.opt_out, kind, Status.withdrawn)
        assert choice(engine, ALICE, "opt_out", kind) == "withdrawn"
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    assert engine.decide(ALICE, "ad_sharing").rule == "opt_out.sale"
    for kind in OPT_OUTS:
        back = engine.consent.opt_in(ALICE, kind)
        assert (back.key, back.state) == (kind, Status.given)
        assert choice(engine, ALICE, "opt_out", kind) == "given"
    assert engine.decide(ALICE, "ad_sharing").allowed
    with pytest.raises(ConsentError, match="did you mean 'sale'"):
        engine.consent.opt_out(ALICE, "sael")
    assert len(engine.consent.history(ALICE)) == 2 * len(OPT_OUTS)


def test_limit_ad_tracking_only_where_the_policy_offers_it(
    store_url: str, keyring: Keyring
) -> None:
    text = variant("  limit_ad_tracking: true\n", "  limit_ad_tracking: false\n")
    with open_engine(store_url, keyring, text) as engine:
        with pytest.raises(ConsentError, match="limit_ad_tracking"):
            engine.consent.opt_out(ALICE, "ad_tracking")
        with pytest.raises(ConsentError, match="limit_ad_tracking"):
            engine.consent.opt_in(ALICE, "ad_tracking")
        with pytest.raises(ConsentError, match="limit_ad_tracking"):
            engine.consent.record_many(
                [ChoiceInput(ALICE, Topic.opt_out, "ad_tracking", Status.withdrawn)]
            )
        assert engine.consent.history(ALICE) == []
        assert engine.consent.opt_out(ALICE, "targeted_advertising").key == "targeted_advertising"


def test_objection_and_its_withdrawal(engine: Engine) -> None:
    record = engine.consent.object(ALICE, "fraud")
    assert (record.topic, record.key, record.state) == (Topic.objection, "fraud", Status.withdrawn)
    assert engine.decide(ALICE, "fraud").rule == "objection"
    engine.consent.withdraw_objection(ALICE, "fraud")
    assert choice(engine, ALICE, "objection", "fraud") == "given"
    assert engine.decide(ALICE, "fraud").allowed
    everything = engine.consent.object(ALICE)
    assert everything.key == "*marketing"
    assert choice(engine, ALICE, "objection", "*marketing") == "withdrawn"
    engine.consent.withdraw_objection(ALICE)
    assert choice(engine, ALICE, "objection", "*marketing") == "given"
    with pytest.raises(UnknownName, match="did you mean 'fraud'"):
        engine.consent.object(ALICE, "frad")


def test_restriction_and_its_lifting(engine: Engine) -> None:
    record = engine.consent.restrict(ALICE)
    assert (record.topic, record.key, record.state) == (Topic.restriction, "*", Status.withdrawn)
    assert engine.decide(ALICE, "orders").rule == "restriction"
    lifted = engine.consent.lift_restriction(ALICE)
    assert lifted.state is Status.given and choice(engine, ALICE, "restriction", "*") == "given"
    assert engine.decide(ALICE, "orders").allowed


def test_recipient_restriction(engine: Engine) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    record = engine.consent.restrict_recipient(ALICE, "adnet")
    assert (record.topic, record.key, record.state) == (Topic.recipient, "adnet", Status.withdrawn)
    assert engine.decide(ALICE, "ad_sharing", recipient="adnet").rule == "recipient.restricted"
    engine.consent.allow_recipient(ALICE, "adnet")
    assert choice(engine, ALICE, "recipient", "adnet") == "given"
    assert engine.decide(ALICE, "ad_sharing", recipient="adnet").allowed
    with pytest.raises(ConsentError, match="did you mean 'adnet'"):
        engine.consent.restrict_recipient(ALICE, "adnett")
    with pytest.raises(ConsentError, match="recipient of the policy"):
        engine.consent.allow_recipient(ALICE, "nobody-corp")


def test_parental_consent_names_the_parent_by_hash(engine: Engine, keyring: Keyring) -> None:
    record = engine.consent.parental_consent(ALICE, parent=" Parent@Example.COM")
    expected = keyring.hash(Identity.parse(PARENT))
    assert record.actor == expected
    assert (record.topic, record.key, record.state, record.method) == (
        Topic.parental,
        "*",
        Status.given,
        "parent",
    )
    [stored] = engine.consent.history(ALICE)
    assert stored.actor == expected
    assert "parent" not in (stored.actor or "").lower()
    withdrawn = engine.consent.parental_consent(ALICE, parent=PARENT, withdraw=True)
    assert withdrawn.state is Status.withdrawn and withdrawn.actor == expected
    assert choice(engine, ALICE, "parental", "*") == "withdrawn"
    given = engine.consent.give(BOB, "newsletter", parent=PARENT)
    assert (given.method, given.actor) == ("parent", expected)
    assert engine.consent.give(BOB, "newsletter").actor is None


# -- identities ----------------------------------------------------------------------------


def test_one_person_however_the_identity_is_written(engine: Engine) -> None:
    record = engine.consent.give(ALICE_TYPED, "newsletter")
    assert engine.decide(ALICE, "newsletter").allowed
    assert engine.decide("alice@EXAMPLE.com", "newsletter").allowed
    assert record.subject_ref == subject_ref(engine, ALICE) == subject_ref(engine, ALICE_TYPED)
    assert counts(engine)["subjects"] == 1 and counts(engine)["identities"] == 1
    engine.consent.withdraw(ALICE, "newsletter")
    assert engine.decide(ALICE_TYPED, "newsletter").rule == "consent.withdrawn"
    assert len(engine.consent.history(ALICE_TYPED)) == 2


def test_linked_phone_sees_the_same_consent(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter")
    assert engine.decide(PHONE, "newsletter").rule == "consent.missing"
    seq = last_seq(engine)
    linked = engine.consent.link(ALICE, PHONE_TYPED)
    assert linked.ref == subject_ref(engine, ALICE) == subject_ref(engine, PHONE)
    [event] = events(engine, after=seq)
    assert (event.kind, event.data) == (
        "subject.identity_linked",
        {"kind": "phone", "raw_kept": False},
    )
    assert engine.decide(PHONE, "newsletter").allowed
    engine.consent.withdraw(PHONE_TYPED, "newsletter")
    assert engine.decide(ALICE, "newsletter").rule == "consent.withdrawn"
    assert engine.consent.history(PHONE) == engine.consent.history(ALICE)
    # A phone that is someone else's is not taken over: merge the two instead.
    engine.consent.give(BOB, "newsletter")
    with pytest.raises(IdentityConflict, match="merge"):
        engine.consent.link(BOB, PHONE)


def test_merge_moves_choices_newest_wins(engine: Engine, keyring: Keyring) -> None:
    day = timedelta(days=1)
    c = engine.consent
    mine = [
        c.give(ALICE, "newsletter", at=NOW - 10 * day),  # older than Bob's withdrawal
        c.opt_out(ALICE, "sale", at=NOW - 1 * day),  # newer than Bob's opt-in
    ]
    theirs = [
        c.withdraw(BOB, "newsletter", at=NOW - 1 * day),
        c.opt_in(BOB, "sale", at=NOW - 10 * day),
        c.unsubscribe(BOB, channel="sms", at=NOW - 5 * day),  # only Bob chose this
    ]
    c.link(BOB, PHONE)
    alice_ref, bob_ref = subject_ref(engine, ALICE), subject_ref(engine, BOB)
    assert engine.decide(BOB, "newsletter").rule == "consent.withdrawn"
    assert engine.decide(ALICE, "newsletter").allowed  # cached now

    survivor = c.merge(ALICE, BOB)
    assert survivor.ref == alice_ref
    # Bob's identities find Alice's subject.
    assert subject_ref(engine, BOB) == subject_ref(engine, PHONE) == alice_ref
    assert choice(engine, ALICE, "consent", "newsletter") == "withdrawn"  # Bob's newer choice
    assert choice(engine, ALICE, "opt_out", "sale") == "withdrawn"  # Alice's newer choice
    assert choice(engine, ALICE, "channel", "sms") == "withdrawn"
    # The merge reached the cache at once.
    assert engine.decide(ALICE, "newsletter").rule == "consent.withdrawn"
    assert engine.decide(PHONE, "newsletter", channel="sms").rule == "channel.unsubscribed"
    with engine.store.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count())
            .select_from(consent_state.join(subjects))
            .where(subjects.c.ref == bob_ref)
        ).scalar()
    assert left == 0
    # History of the survivor holds both people's records, each as it was made.
    history = c.history(ALICE)
    assert {r.ref for r in history} == {r.ref for r in mine + theirs}
    assert {r.ref for r in history if r.subject_ref == bob_ref} == {r.ref for r in theirs}
    assert [r.at for r in history] == sorted(r.at for r in history)
    assert c.history(BOB) == history
    # Audited, and the chain holds.
    merged = [e for e in events(engine) if e.kind == "subject.merged"]
    assert len(merged) == 1
    assert merged[0].subject == keyring.subject_hash(alice_ref)
    assert merged[0].data is not None
    assert merged[0].data["merged"] == keyring.subject_hash(bob_ref)
    assert merged[0].data["identities"] == 2
    assert audit(engine).verify().ok
    with pytest.raises(ConsentError, match="both subjects must be known"):
        c.merge(ALICE, CAROL)


# -- the decision cache --------------------------------------------------------------------


def test_other_engines_writes_are_seen_after_cache_ttl(store_url: str, keyring: Keyring) -> None:
    with open_engine(store_url, keyring) as a, open_engine(store_url, keyring) as b:
        assert a.consent.cache_ttl > 0  # cached by default
        a.consent.cache_ttl = 3600
        a.consent.give(ALICE, "newsletter")
        assert a.decide(ALICE, "newsletter").allowed  # now cached in engine A
        b.consent.withdraw(ALICE, "newsletter")
        assert b.decide(ALICE, "newsletter").rule == "consent.withdrawn"
        # By design, engine A answers from its cache until its entry is cache_ttl old:
        # another process's change is seen within cache_ttl seconds, not at once.
        assert a.decide(ALICE, "newsletter").allowed
        a.consent.cache_ttl = 0  # read the store on every decision
        assert a.decide(ALICE, "newsletter").rule == "consent.withdrawn"
        b.consent.give(ALICE, "newsletter")
        assert a.decide(ALICE, "newsletter").allowed
        # A short ttl: stale only until it runs out (Carol was never cached before).
        a.consent.cache_ttl = 1.0
        b.consent.give(CAROL, "newsletter")
        assert a.decide(CAROL, "newsletter").allowed
        b.consent.withdraw(CAROL, "newsletter")
        assert a.decide(CAROL, "newsletter").allowed
        time.sleep(1.1)
        assert a.decide(CAROL, "newsletter").rule == "consent.withdrawn"


def test_own_writes_are_seen_at_once(engine: Engine) -> None:
    engine.consent.cache_ttl = 3600
    assert engine.decide(ALICE, "newsletter").rule == "consent.missing"  # cached
    engine.consent.give(ALICE, "newsletter")
    assert engine.decide(ALICE, "newsletter").allowed
    engine.consent.unsubscribe(ALICE, channel="email")
    assert engine.decide(ALICE, "newsletter", channel="email").rule == "channel.unsubscribed"
    engine.consent.record_many([ChoiceInput(ALICE, Topic.consent, "newsletter", Status.refused)])
    assert engine.decide(ALICE, "newsletter").rule == "consent.refused"
    assert engine.decide(ALICE, "ad_sharing").rule == "consent.missing"  # cached
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    assert engine.decide(ALICE, "ad_sharing").allowed  # legitimate interests in California


# -- decision audit ------------------------------------------------------------------------


def decision_events(engine: Engine) -> list[Event]:
    return [e for e in events(engine) if e.kind.startswith("decision.")]


def three_decisions(engine: Engine) -> None:
    engine.decide(ALICE, "newsletter")  # allowed
    engine.decide(ALICE, "ad_sharing", jurisdiction="us-ca", signals=Signals(gpc=True))  # refused
    engine.decide(BOB, "newsletter")  # refused: nobody known


def test_decision_logging_all(store_url: str, keyring: Keyring) -> None:
    logging = DecisionLogging(mode="all", batch=100)
    with open_engine(store_url, keyring, decision_logging=logging) as engine:
        engine.consent.give(ALICE, "newsletter")
        three_decisions(engine)
        assert decision_events(engine) == []  # buffered until the batch fills or a flush
        engine.consent.flush()
        written = decision_events(engine)
        assert [e.kind for e in written] == [
            "decision.allowed",
            "decision.refused",
            "decision.refused",
        ]
        assert [e.data for e in written] == [
            {
                "purpose": "newsletter",
                "rule": "basis.consent",
                "jurisdiction": None,
                "signal": None,
            },
            {
                "purpose": "ad_sharing",
                "rule": "signal.gpc",
                "jurisdiction": "us-ca",
                "signal": "gpc",
            },
            {
                "purpose": "newsletter",
                "rule": "consent.missing",
                "jurisdiction": None,
                "signal": None,
            },
        ]
        alice = keyring.subject_hash(subject_ref(engine, ALICE))
        assert [e.subject for e in written] == [alice, alice, None]
        text = json.dumps([e.to_dict() for e in written])
        assert "alice" not in text and "bob" not in text
        engine.consent.flush()  # nothing pending: nothing more
        assert len(decision_events(engine)) == 3
        assert audit(engine).verify().ok


def test_decision_events_are_written_per_batch_and_on_close(
    store_url: str, keyring: Keyring
) -> None:
    engine = open_engine(store_url, keyring, decision_logging=DecisionLogging("all", batch=2))
    try:
        engine.decide(ALICE, "orders")
        assert decision_events(engine) == []
        engine.decide(ALICE, "orders")
        assert len(decision_events(engine)) == 2  # the batch filled
        engine.decide(ALICE, "orders")
    finally:
        engine.close()  # flushes
    with open_engine(store_url, keyring) as again:
        assert len(decision_events(again)) == 3


@pytest.mark.parametrize(
    ("logging", "expected"),
    [
        (DecisionLogging(mode="refusals", batch=100), ["decision.refused"] * 2),
        (DecisionLogging(mode="off", batch=100), []),
        (DecisionLogging(mode="sample", rate=0.0, batch=100), []),
        (
            DecisionLogging(mode="sample", rate=1.0, batch=100),
            ["decision.allowed", "decision.refused", "decision.refused"],
        ),
    ],
    ids=["refusals", "off", "sample-0", "sample-1"],
)
def test_decision_logging_modes(
    store_url: str, keyring: Keyring, logging: DecisionLogging, expected: list[str]
) -> None:
    with open_engine(store_url, keyring, decision_logging=logging) as engine:
        engine.consent.give(ALICE, "newsletter")
        three_decisions(engine)
        engine.consent.flush()
        assert [e.kind for e in decision_events(engine)] == expected


def test_decide_many_flushes_its_events(store_url: str, keyring: Keyring) -> None:
    logging = DecisionLogging(mode="all", batch=1000)
    with open_engine(store_url, keyring, decision_logging=logging) as engine:
        engine.consent.give(ALICE, "newsletter")
        decisions = engine.decide_many([ALICE, BOB, CAROL], "newsletter")
        written = decision_events(engine)  # no flush() called
        assert [e.kind for e in written] == [
            "decision.allowed" if d.allowed else "decision.refused" for d in decisions
        ]
        assert [e.data["rule"] for e in written if e.data] == [
            "basis.consent",
            "consent.missing",
            "consent.missing",
        ]


def test_decision_logging_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="mode must be all, refusals, sample or off, not 'some'"):
        DecisionLogging(mode="some")  # type: ignore[arg-type]
    for rate in (-0.1, 1.5):
        with pytest.raises(ValueError, match="rate must be between 0 and 1"):
            DecisionLogging(mode="sample", rate=rate)


# -- a new policy version on an open engine ------------------------------------------------


def test_refresh_picks_up_a_policy_version_recorded_elsewhere(
    store_url: str, keyring: Keyring
) -> None:
    v2 = variant(
        "    categories: [user.contact.email]\n    channels: [email, sms]",
        "    categories: [user.contact.email, user.name]\n    channels: [email, sms]",
    )
    with open_engine(store_url, keyring) as engine:
        engine.consent.cache_ttl = 0
        engine.consent.give(ALICE, "newsletter")
        engine.consent.give(ALICE, "site_analytics")
        engine.consent.set_cookies(ALICE, {"analytics": True})
        # Another process records version 2, which changes the newsletter materially.
        recorded = record_policy(engine.store, load_policy_text(v2, "v2.yaml"))
        assert recorded.version.number == 2
        assert recorded.version.renew_consent == ("newsletter",)
        assert engine.decide(ALICE, "newsletter").allowed  # this engine has not looked yet
        engine.consent.refresh(recorded.version)
        refused = engine.decide(ALICE, "newsletter")
        assert (refused.allowed, refused.rule) == (False, "consent.renewal_needed")
        assert engine.decide(ALICE, "site_analytics").allowed  # untouched by the change
        renewed = engine.consent.give(ALICE, "newsletter")
        assert renewed.state is Status.renewed and renewed.policy_version == 2
        assert engine.decide(ALICE, "newsletter").allowed


def test_a_notice_hash_contradicting_the_notice_text_is_refused(engine: Engine) -> None:
    import hashlib

    text = "We send our newsletter monthly."
    with pytest.raises(ConsentError, match="not the SHA-256 of notice_text"):
        engine.consent.give(ALICE, "newsletter", notice_text=text, notice_hash="0" * 64)
    agreeing = hashlib.sha256(text.encode()).hexdigest()
    record = engine.consent.give(ALICE, "newsletter", notice_text=text, notice_hash=agreeing)
    assert record.notice_hash == agreeing
