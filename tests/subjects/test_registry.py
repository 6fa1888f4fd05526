"""Subjects in the store, on SQLite and PostgreSQL: resolve, link, merge, update, rotate."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date

import pytest
import sqlalchemy as sa

from lawful.audit import AuditLog
from lawful.store import Store, open_store
from lawful.subjects import (
    Identity,
    IdentityConflict,
    Keyring,
    KeyringError,
    Subject,
    SubjectError,
    Subjects,
    registry,
)
from lawful.subjects.tables import identities, keyring_checks, subjects

ADA = Identity.parse("email:Ada@Example.com")
ADA_PHONE = Identity.parse("phone:+372 5123 4567")
ADA_ACCOUNT = Identity.parse("account:u-1001")
BOB = Identity.parse("email:bob@example.org")
BOB_DEVICE = Identity.parse("device:cookie-77")
RAW = ["ada@example.com", "Ada@Example.com", "+37251234567", "5123 4567", "bob@example.org"]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def people(store: Store, keyring: Keyring) -> Subjects:
    return Subjects(store, "acme", "Acme Ltd", keyring)


@contextmanager
def counting(store: Store) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block (executemany counts once)."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def rows(store: Store, table: sa.Table) -> list[sa.Row]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(table)).all()


def audit_text(store: Store) -> str:
    return json.dumps([e.to_dict() for e in AuditLog(store, "acme").events()])


def assert_no_personal_data(store: Store) -> None:
    text = audit_text(store).lower()
    for raw in RAW:
        assert raw.lower() not in text
    assert "51234567" not in text and "u-1001" not in text and "cookie-77" not in text
    assert AuditLog(store, "acme").verify().ok


# -- resolving -------------------------------------------------------------------------------


def test_resolve_creates_once_and_finds_again(store: Store, people: Subjects) -> None:
    first = people.resolve([ADA, BOB, ADA, Identity.parse("email: ADA@example.com")], create=True)
    assert set(first) == {ADA, BOB}
    assert first[ADA] != first[BOB]
    assert len(first[ADA].ref) == 32 and first[ADA].merged_into is None
    again = people.resolve([BOB, ADA], create=True)
    assert again == first
    assert people.find(ADA) == first[ADA]
    assert people.find("email:ADA@example.COM") == first[ADA]
    assert len(rows(store, subjects)) == 2 and len(rows(store, identities)) == 2
    events = AuditLog(store, "acme").events()
    created = [e for e in events if e.kind == "subject.created"]
    assert sorted(e.subject for e in created) == sorted(
        s.audit_id(people.keyring) for s in first.values()
    )
    assert all(e.data == {"identity": "email"} for e in created)
    assert_no_personal_data(store)


def test_identities_are_stored_as_keyed_hashes_only(
    store: Store, people: Subjects, keyring: Keyring
) -> None:
    people.resolve([ADA, ADA_PHONE], create=True)
    stored = rows(store, identities)
    assert {r.hash for r in stored} == {keyring.hash(ADA), keyring.hash(ADA_PHONE)}
    assert all(r.ciphertext is None and r.key_id is None for r in stored)
    dump = repr(stored).lower() + repr(rows(store, subjects)).lower()
    for raw in RAW:
        assert raw.lower() not in dump


def test_without_create_unknown_identities_are_absent(store: Store, people: Subjects) -> None:
    people.resolve([ADA], create=True)
    found = people.resolve([ADA, BOB], create=False)
    assert set(found) == {ADA}
    assert people.find(BOB) is None
    assert len(rows(store, subjects)) == 1


def test_new_subjects_get_kind_jurisdiction_and_country(people: Subjects) -> None:
    ada = people.resolve([ADA], create=True)[ADA]
    made = people.resolve(
        [ADA, BOB], create=True, kind="customer", jurisdiction=" EU ", country="de"
    )
    assert made[ADA] == ada  # known subjects are not changed by resolve
    assert (made[BOB].kind, made[BOB].jurisdiction, made[BOB].country) == ("customer", "eu", "DE")
    with pytest.raises(SubjectError, match="jurisdiction must be one of eu, uk"):
        people.resolve([Identity.parse("account:9")], create=True, jurisdiction="gdpr")
    with pytest.raises(SubjectError, match="two-letter ISO 3166-1 code"):
        people.resolve([Identity.parse("account:9")], create=True, country="UK")


def test_controllers_do_not_share_subjects(store: Store, keyring: Keyring) -> None:
    acme = Subjects(store, "acme", "Acme Ltd", keyring)
    other = Subjects(store, "other", "Other Ltd", keyring)
    mine = acme.resolve([ADA], create=True)[ADA]
    assert other.find(ADA) is None
    theirs = other.resolve([ADA], create=True)[ADA]
    assert theirs.id != mine.id
    assert acme.by_ref(theirs.ref) is None
    assert other.by_ref(theirs.ref) == theirs


def test_resolving_is_set_based(store: Store, people: Subjects) -> None:
    people.context()  # controller and keyring check: not part of what is measured

    def many(n: int, prefix: str) -> list[Identity]:
        return [Identity.parse(f"account:{prefix}-{i}") for i in range(n)]

    with counting(store) as small:
        people.resolve(many(30, "s"), create=True)
    with counting(store) as large:
        created = people.resolve(many(3000, "l"), create=True)
    assert len(set(created.values())) == 3000
    # Per 1000 identities: one SELECT, one INSERT page of subjects, one of identities,
    # one of audit events; everything else is constant.
    assert len(large) <= len(small) + 4 * 3, large
    assert len(large) <= 25
    with counting(store) as again:
        found = people.resolve(many(3000, "l"), create=True)
    assert found == created
    selects = [s for s in again if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3  # one per 1000 hashes
    # and nothing else but the audit head lock every writer takes first: no inserts, no events
    others = [s for s in again if s not in selects]
    assert len(others) == 1 and "audit_heads" in others[0], others
    assert len(rows(store, subjects)) == 3030
    assert AuditLog(store, "acme").verify().ok


def test_subjects_by_id_and_by_ref(people: Subjects, store: Store) -> None:
    made = people.resolve([ADA, BOB], create=True)
    with store.engine.connect() as conn:
        by_id = registry.subjects_by_id(conn, [s.id for s in made.values()] + [999_999])
    assert by_id == {s.id: s for s in made.values()}
    assert people.by_ref(made[ADA].ref) == made[ADA]
    assert people.by_ref("f" * 32) is None


# -- linking ---------------------------------------------------------------------------------


def test_link_makes_a_subject_findable_by_another_identity(store: Store, people: Subjects) -> None:
    ada = people.resolve([ADA], create=True)[ADA]
    people.link(ada, ADA_PHONE)
    people.link(ada, "account:u-1001")
    assert people.find(ADA_PHONE) == ada
    assert people.find(ADA_ACCOUNT) == ada
    assert people.resolve([ADA, ADA_PHONE, ADA_ACCOUNT], create=True) == {
        ADA: ada,
        ADA_PHONE: ada,
        ADA_ACCOUNT: ada,
    }
    linked = [e for e in AuditLog(store, "acme").events() if e.kind == "subject.identity_linked"]
    assert [e.data for e in linked] == [
        {"kind": "phone", "raw_kept": False},
        {"kind": "account", "raw_kept": False},
    ]
    assert {e.subject for e in linked} == {ada.audit_id(people.keyring)}
    # linking again changes nothing and records nothing
    before = len(AuditLog(store, "acme").events())
    people.link(ada, ADA_PHONE)
    assert len(AuditLog(store, "acme").events()) == before
    assert_no_personal_data(store)


def test_link_conflict_says_merge_without_naming_the_identity(people: Subjects) -> None:
    made = people.resolve([ADA, BOB], create=True)
    with pytest.raises(IdentityConflict) as caught:
        people.link(made[BOB], ADA)
    message = str(caught.value)
    assert message == (
        "this email identity belongs to another subject; merge the two subjects instead"
    )
    assert people.find(ADA) == made[ADA]


def test_explicit_creation_then_link(store: Store, people: Subjects) -> None:
    child = people.create(kind="child", birth_date=date(2015, 5, 1), country="ee")
    assert (child.kind, child.birth_date, child.country) == ("child", date(2015, 5, 1), "EE")
    assert people.find(ADA) is None
    people.link(child, ADA)
    assert people.find(ADA) == child
    kinds = [e.kind for e in AuditLog(store, "acme").events()]
    assert kinds == ["subject.created", "subject.identity_linked"]
    assert "2015-05-01" not in audit_text(store)


def test_kept_values_are_encrypted_and_bound_to_their_row(store: Store, people: Subjects) -> None:
    ada = people.resolve([ADA], create=True)[ADA]
    people.link(ada, ADA_PHONE, keep_raw=True)
    assert people.raw_identities(ada) == [ADA_PHONE]
    people.link(ada, ADA, keep_raw=True)  # known identity: its value is kept now
    assert people.raw_identities(ada) == [ADA, ADA_PHONE]  # oldest link first
    assert people.raw_identities(ada, "email") == [ADA]
    kept = [r for r in rows(store, identities) if r.ciphertext is not None]
    assert len(kept) == 2 and {r.key_id for r in kept} == {"k1"}
    for r in kept:
        assert b"ada@example.com" not in r.ciphertext and b"51234567" not in r.ciphertext
    events = [(e.kind, e.data) for e in AuditLog(store, "acme").events()]
    assert ("subject.identity_linked", {"kind": "phone", "raw_kept": True}) in events
    assert ("subject.identity_kept", {"kind": "email"}) in events
    # a ciphertext copied onto another row does not decrypt there
    email_row = next(r for r in kept if r.kind == "email")
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(identities)
            .where(identities.c.kind == "phone")
            .values(ciphertext=email_row.ciphertext)
        )
    with pytest.raises(KeyringError, match="does not decrypt: wrong key or altered"):
        people.raw_identities(ada)
    assert_no_personal_data(store)


# -- merging ---------------------------------------------------------------------------------


def test_merge_moves_identities_and_lookups_follow(store: Store, people: Subjects) -> None:
    ada = people.resolve([ADA], create=True, kind="customer")[ADA]
    other = people.resolve([ADA_PHONE], create=True, country="EE")[ADA_PHONE]
    people.link(other, ADA_ACCOUNT, keep_raw=True)
    survivor = people.merge(ada, other)
    assert survivor.id == ada.id and survivor.country == "EE"  # filled from the other
    assert people.find(ADA_PHONE) == survivor
    assert people.find(ADA_ACCOUNT) == survivor
    assert people.resolve([ADA, ADA_PHONE], create=True) == {ADA: survivor, ADA_PHONE: survivor}
    assert people.raw_identities(survivor) == [ADA_ACCOUNT]
    assert people.by_ref(other.ref) == survivor  # old refs (tokens, receipts) still work
    merged = people.by_ref(other.ref, follow=False)
    assert merged is not None and merged.merged_into == ada.id
    assert {r.subject_id for r in rows(store, identities)} == {ada.id}
    [event] = [e for e in AuditLog(store, "acme").events() if e.kind == "subject.merged"]
    assert event.subject == ada.audit_id(people.keyring)
    assert event.data == {
        "merged": other.audit_id(people.keyring),
        "identities": 2,
        "filled": ["country"],
    }
    assert_no_personal_data(store)


def test_merge_repoints_earlier_merges_and_refuses_bad_merges(people: Subjects) -> None:
    made = people.resolve([ADA, ADA_PHONE, BOB], create=True)
    a, b, c = made[ADA], made[ADA_PHONE], made[BOB]
    people.merge(b, a)  # a → b
    people.merge(c, b)  # b → c, and a now points to c directly
    assert people.by_ref(a.ref, follow=False).merged_into == c.id
    assert people.find(ADA) == people.find(ADA_PHONE) == people.find(BOB)
    with pytest.raises(SubjectError, match="cannot merge a subject into itself"):
        people.merge(c, c)
    with pytest.raises(SubjectError, match=f"subject {a.ref} was already merged"):
        people.merge(c, a)
    with pytest.raises(SubjectError, match=f"subject {b.ref} was already merged"):
        people.merge(b, c)
    with pytest.raises(SubjectError, match=f"subject {a.ref} was merged"):
        people.link(a, BOB_DEVICE)
    with pytest.raises(SubjectError, match=f"no subject {'0' * 32}"):
        people.merge(c, Subject(999_999, "0" * 32, None, None, None, None, None))


def test_merged_subject_found_through_a_stale_identity_row(store: Store, people: Subjects) -> None:
    # Identities normally move on merge; an identity row still naming the merged
    # subject (written by an older lawful, or a concurrent writer) resolves to the survivor.
    made = people.resolve([ADA, BOB], create=True)
    survivor = people.merge(made[BOB], made[ADA])
    with store.engine.begin() as conn:
        conn.execute(sa.update(identities).values(subject_id=made[ADA].id))
    assert people.find(ADA) == survivor
    assert people.resolve([ADA, BOB], create=True) == {ADA: survivor, BOB: survivor}


# -- updating --------------------------------------------------------------------------------


def test_update_sets_given_fields_and_logs_their_names_only(store: Store, people: Subjects) -> None:
    ada = people.resolve([ADA], create=True)[ADA]
    born = date(1990, 12, 10)
    updated = people.update(ada, birth_date=born, country="GB")
    assert (updated.birth_date, updated.country, updated.kind) == (born, "GB", None)
    assert people.find(ADA) == updated
    again = people.update(updated, birth_date=born)  # no change, no event
    assert again == updated
    cleared = people.update(updated, country=None, kind="customer")
    assert (cleared.country, cleared.kind, cleared.birth_date) == (None, "customer", born)
    events = [e for e in AuditLog(store, "acme").events() if e.kind == "subject.updated"]
    assert [e.data for e in events] == [
        {"fields": ["birth_date", "country"]},
        {"fields": ["country", "kind"]},
    ]
    text = audit_text(store)
    assert "1990-12-10" not in text and '"GB"' not in text
    with pytest.raises(SubjectError, match="can't be in the future"):
        people.update(ada, birth_date=date(2999, 1, 1))
    with pytest.raises(SubjectError, match="must be a date"):
        people.update(ada, birth_date="1990-12-10")  # type: ignore[arg-type]


# -- keyrings --------------------------------------------------------------------------------


def test_another_keyring_is_refused(store: Store, keyring: Keyring) -> None:
    Subjects(store, "acme", "Acme Ltd", keyring).resolve([ADA], create=True)
    with pytest.raises(KeyringError) as caught:
        Subjects(store, "acme", "Acme Ltd", Keyring.generate()).find(ADA)
    assert str(caught.value) == (
        "this keyring is not the one the store's identities were hashed with; "
        "use the original keyring file"
    )
    # a rotated keyring keeps the hash key, so it is the same keyring to the store
    assert Subjects(store, "acme", "Acme Ltd", keyring.rotated()).find(ADA) is not None
    [check] = rows(store, keyring_checks)
    assert check.hash_key_fingerprint == keyring.fingerprint()


def test_rotate_reencrypts_then_the_old_key_can_be_retired(
    store: Store, people: Subjects, keyring: Keyring
) -> None:
    made = people.resolve([ADA, BOB], create=True)
    people.link(made[ADA], ADA, keep_raw=True)
    people.link(made[ADA], ADA_PHONE, keep_raw=True)
    people.link(made[BOB], BOB, keep_raw=True)
    people.link(made[BOB], BOB_DEVICE)  # nothing kept: nothing to re-encrypt
    rotated = keyring.rotated()
    newer = Subjects(store, "acme", "Acme Ltd", rotated)
    assert newer.rotate(batch=2) == 3  # two batches
    assert {r.key_id for r in rows(store, identities) if r.ciphertext is not None} == {"k2"}
    assert newer.rotate() == 0
    retired = Subjects(store, "acme", "Acme Ltd", rotated.without("k1"))
    assert sorted(str(i) for i in retired.raw_identities(made[ADA])) == sorted(
        [str(ADA), str(ADA_PHONE)]
    )
    assert retired.raw_identities(made[BOB]) == [BOB]
    # the retired key is gone: the old keyring can't read the new values
    with pytest.raises(KeyringError, match="'k2', which this keyring does not have"):
        people.raw_identities(made[ADA])
    events = [e.data for e in AuditLog(store, "acme").events() if e.kind == "keyring.rotated"]
    assert events == [{"reencrypted": 3, "key": "k2"}, {"reencrypted": 0, "key": "k2"}]
    assert_no_personal_data(store)


def test_functions_work_inside_a_callers_transaction(store: Store, keyring: Keyring) -> None:
    controller_id = store.ensure_controller("acme", "Acme Ltd")
    ctx = registry.Context(controller_id, "acme", keyring)

    def work(conn: sa.Connection) -> Subject:
        registry.check_keyring(conn, ctx)
        ada = registry.resolve_many(conn, ctx, [ADA], create=True)[ADA]
        registry.link(conn, ctx, ada, BOB_DEVICE)
        raise RuntimeError("the caller's own change failed")

    with pytest.raises(RuntimeError):
        store.write(work)
    # nothing of it was committed: not the subject, not the identity, not the events
    assert rows(store, subjects) == [] and rows(store, identities) == []
    assert AuditLog(store, "acme").events() == []
    with store.engine.begin() as conn:
        ada = registry.resolve_many(conn, ctx, [ADA], create=True)[ADA]
        assert registry.find(conn, ctx, ADA) == ada
    assert AuditLog(store, "acme").verify().ok


@pytest.mark.postgresql
def test_concurrent_resolvers_create_each_subject_once(pg_url: str) -> None:
    # Several API servers resolving the same new people at once: the losers of the
    # unique-index race retry (Store.write) and find the winners' subjects.
    keyring = Keyring.generate()
    wanted = [Identity.parse(f"account:race-{i}") for i in range(300)]
    with open_store(pg_url) as store:
        Subjects(store, "acme", "Acme Ltd", keyring).context()
        barrier = threading.Barrier(4)

        def resolve(seed: int) -> dict[Identity, Subject]:
            people = Subjects(store, "acme", "Acme Ltd", keyring)
            people.context()
            mine = list(wanted)
            random.Random(seed).shuffle(mine)
            barrier.wait()
            return people.resolve(mine, create=True)

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(resolve, range(4)))
        assert all(r == results[0] for r in results)
        assert len(set(results[0].values())) == 300
        assert len(rows(store, subjects)) == 300
        log = AuditLog(store, "acme")
        assert log.verify().ok
        assert len([e for e in log.events() if e.kind == "subject.created"]) == 300
