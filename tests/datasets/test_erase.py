"""Erasure on the forum database: each annotated action, shared rows, rows of others that
point at the subject, idempotence, dry runs and all-or-nothing, on SQLite, PostgreSQL and
MariaDB. Results are read back with plain SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from lawful.datasets import Datasets, ErasureFailed, MaskKeyMissing, load_dataset_text
from lawful.datasets.masks import keyed_hash
from tests.datasets import forum

KEY = forum.MASK_KEY


@pytest.fixture
def datasets(forum_data: Datasets) -> Datasets:
    return forum_data


@pytest.fixture
def db(forum_url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(forum_url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def rows(db: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    db.rollback()  # a fresh snapshot each time
    return [tuple(r) for r in db.execute(sa.text(sql))]


def snapshot(db: sa.Connection) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for name in forum.INSERT_ORDER:
        table = forum.metadata.tables[name]
        order = [c for c in table.primary_key.columns]
        db.rollback()
        out[name] = [tuple(r) for r in db.execute(sa.select(table).order_by(*order))]
    return out


def outcome(report: Any, table: str) -> dict[str, Any]:
    return next(t for t in report.tables if t.table == table).to_dict()


def test_alice_erased_as_annotated(datasets: Datasets, db: sa.Connection) -> None:
    (report,) = datasets.erase(["email:alice@example.com"])
    # users: anonymized in place; Carol's row, which only pointed at Alice, unlinked.
    assert rows(db, "SELECT id, email, phone, name, invited_by FROM users ORDER BY id") == [
        (1, keyed_hash("Alice@Example.com", KEY, 200), None, "deleted user", None),
        (2, "bob@example.com", "+447400123457", "Bob", None),
        (3, "carol@example.com", None, "Carol", None),
        (4, "dave@example.com", None, "Dave", None),
    ]
    assert outcome(report, "users") | {} == {
        **outcome(report, "users"),
        "found": 1,
        "referring": 1,
        "anonymized": 1,
        "unlinked": 1,
    }
    # profiles: each mask.
    (profile,) = rows(
        db, "SELECT born, last_ip, postcode, nickname, motto FROM profiles WHERE id = 1"
    )
    assert profile[0] in (dt.date(1990, 1, 1), "1990-01-01")
    assert profile[1:3] == ("203.0.113.0", "SW")
    assert profile[3] == keyed_hash("ally", KEY, 64) and profile[3].startswith("~")
    assert profile[4] == ""
    # Bob's profile (an IPv6 address among them) untouched.
    assert rows(db, "SELECT last_ip, nickname FROM profiles WHERE id = 2") == [
        ("2001:db8:1234:5678::1", None)
    ]
    assert rows(db, "SELECT title, body FROM posts ORDER BY id") == [
        ("[deleted]", None),
        ("Bob's post", "about bob"),
    ]
    # Her comments go; Bob's comment on her post was only hers to see: it stays.
    assert rows(db, "SELECT id FROM comments ORDER BY id") == [(100,), (103,)]
    # The group she shared with Bob stays for him; her own group goes with her membership.
    assert rows(db, "SELECT user_id, group_id FROM memberships") == [(2, 20)]
    assert rows(db, "SELECT id FROM groups") == [(20,)]
    assert outcome(report, "groups")["reasons"] == ["1 kept: shared with other subjects"]
    # Messages with Bob: kept for him, her side unlinked.
    assert rows(db, "SELECT id, sender_id, recipient_id FROM messages ORDER BY id") == [
        (30, None, 2),
        (31, 2, None),
        (32, 2, 3),
    ]
    # Friendships: the key can't be unlinked (release: keep), so they stay for the friend.
    assert rows(db, "SELECT user_a, user_b FROM friendships ORDER BY user_a") == [(1, 2), (3, 1)]
    assert outcome(report, "friendships")["kept"] == 2
    assert rows(db, "SELECT id FROM folders ORDER BY id") == [(43,)]
    assert rows(db, "SELECT id FROM activity ORDER BY id") == [(52,), (53,)]
    assert rows(db, "SELECT id FROM newsletter ORDER BY id") == [(61,), (62,)]
    # Invoices are kept, and the report says why.
    assert rows(db, "SELECT id, buyer FROM invoices") == [(70, "Alice")]
    assert outcome(report, "invoices")["reasons"] == ["1 kept: tax law keeps invoices for 10 years"]


def test_a_second_erasure_changes_nothing_and_says_so(
    datasets: Datasets, db: sa.Connection
) -> None:
    (first,) = datasets.erase(["account:1"])
    after = snapshot(db)
    (second,) = datasets.erase(["account:1"])
    assert first.changed > 0
    assert second.changed == 0
    assert snapshot(db) == after
    # The anonymized row is still found by its id; its masks are already in place.
    assert outcome(second, "users")["unchanged"] == 1
    assert outcome(second, "profiles")["unchanged"] == 1


def test_the_last_owner_erasing_removes_the_shared_rows(
    datasets: Datasets, db: sa.Connection
) -> None:
    datasets.erase(["email:alice@example.com"])
    (report,) = datasets.erase(["email:bob@example.com"])
    # Alice's side is gone (unlinked, or her row anonymized): Bob owns what is left alone.
    assert rows(db, "SELECT id, sender_id, recipient_id FROM messages ORDER BY id") == [
        (32, None, 3)
    ]
    assert rows(db, "SELECT id FROM groups") == []
    assert rows(db, "SELECT user_a, user_b FROM friendships ORDER BY user_a") == [(3, 1)]
    assert outcome(report, "friendships")["deleted"] == 1
    # Carol's rows are untouched by either.
    assert rows(db, "SELECT name FROM users WHERE id = 3") == [("Carol",)]


def test_a_batch_erases_rows_shared_only_within_it(datasets: Datasets, db: sa.Connection) -> None:
    datasets.erase(["email:alice@example.com", "email:bob@example.com"])
    assert rows(db, "SELECT id FROM messages ORDER BY id") == [(32,)]
    assert rows(db, "SELECT id FROM groups") == []
    assert rows(db, "SELECT user_a, user_b FROM friendships") == [(3, 1)]
    assert rows(db, "SELECT id FROM comments") == []


def test_a_dry_run_reports_the_same_and_writes_nothing(
    datasets: Datasets, db: sa.Connection
) -> None:
    before = snapshot(db)
    (dry,) = datasets.erase(["email:alice@example.com"], dry_run=True)
    assert snapshot(db) == before
    (real,) = datasets.erase(["email:alice@example.com"])
    assert dry.dry_run and not real.dry_run
    assert [t.to_dict() for t in dry.tables] == [t.to_dict() for t in real.tables]


def test_a_dry_run_needs_no_key(forum_url: str) -> None:
    with Datasets([load_dataset_text(forum.ANNOTATION, "forum.yaml")]) as keyless:
        (dry,) = keyless.erase(["email:alice@example.com"], dry_run=True)
        assert outcome(dry, "users")["anonymized"] == 1
        with pytest.raises(MaskKeyMissing, match="lawful keyring init"):
            keyless.erase(["email:alice@example.com"])


def test_a_refused_delete_rolls_everything_back(forum_url: str, db: sa.Connection) -> None:
    # Deleting users is annotated, but Dave has a session (a table lawful doesn't know).
    text = forum.ANNOTATION.replace(
        "    erase: anonymize\n    columns:\n      email:", "    columns:\n      email:", 1
    )
    before = snapshot(db)
    with (
        Datasets([load_dataset_text(text, "forum.yaml")], mask_key=KEY) as deleting,
        pytest.raises(ErasureFailed) as info,
    ):
        deleting.erase(["email:dave@example.com"])
    message = str(info.value)
    assert message.startswith("dataset forum: the database refused the change")
    assert "nothing was changed" in message
    assert "dave" not in message.lower()
    # His activity row was planned for deletion before the users row: it is still there.
    assert snapshot(db) == before


def test_unknown_subject_erases_nothing(datasets: Datasets, db: sa.Connection) -> None:
    before = snapshot(db)
    (report,) = datasets.erase(["email:nobody@example.com"])
    assert report.found == 0 and report.changed == 0
    assert snapshot(db) == before


def test_rectify_updates_own_rows_and_validates_first(
    datasets: Datasets, db: sa.Connection
) -> None:
    from lawful.datasets import RectifyError

    with pytest.raises(RectifyError) as info:
        datasets.rectify(
            ["email:alice@example.com"],
            {
                "users.email": "not an email",
                "profiles.born": "yesterday",
                "users.id": 9,
                "posts.nope": 1,
            },
        )
    text = str(info.value)
    assert "users.email: the email address contains whitespace" in text
    assert "profiles.born: the value is not a valid date for this column" in text
    assert "users.id: only annotated personal columns can be rectified" in text
    assert "posts.nope" in text
    assert "not an email" not in text and "yesterday" not in text
    assert rows(db, "SELECT email FROM users WHERE id = 1") == [("Alice@Example.com",)]

    (report,) = datasets.rectify(
        ["email:alice@example.com"],
        {"users.email": " Alice.New@Example.com ", "profiles.born": "1991-02-03"},
    )
    assert {t.table: t.updated for t in report.tables} == {"users": 1, "profiles": 1}
    assert rows(db, "SELECT email FROM users WHERE id = 1") == [("alice.new@example.com",)]
    (born,) = rows(db, "SELECT born FROM profiles WHERE id = 1")[0]
    assert str(born) == "1991-02-03"
    # A shared row (the group with Bob) is not changed for him.
    (report,) = datasets.rectify(["email:alice.new@example.com"], {"groups.name": "Renamed"})
    assert report.tables[0].to_dict() | {} == {
        "table": "groups",
        "columns": ["name"],
        "updated": 1,
        "unchanged": 0,
        "skipped_shared": 1,
    }
    assert rows(db, "SELECT id, name FROM groups ORDER BY id") == [
        (20, "Alice and Bob"),
        (21, "Renamed"),
    ]


def test_the_correctable_columns_are_those_rectify_takes(datasets: Datasets) -> None:
    """What a form may offer to correct: each column rectify accepts (given a value of its
    type), with what a form needs to show it; no column rectify refuses whatever the value."""
    offered = {c.target: c for c in datasets.correctable()}
    email, born = offered["forum.users.email"], offered["forum.profiles.born"]
    assert (email.identity, email.subject_table, email.label) == ("email", True, "Email")
    assert email.table_label == "Users" and email.max_length == 200
    assert born.python_type is dt.date and not born.subject_table and born.identity is None
    graph = datasets.graph("forum")
    for name, plan in graph.tables.items():
        for column in plan.columns:
            target = f"forum.{name}.{column}"
            refused = datasets.change_problems({target: "x"}).get(target, "")
            whatever = "can't be rectified" in refused or "only annotated personal" in refused
            assert (target in offered) is not whatever, (target, refused)
    assert "forum.users.id" not in offered and "forum.users.name" in offered
    assert datasets.change_problems({"forum.profiles.born": "1991-02-03"}) == {}
    assert datasets.change_problems({"nowhere.users.name": "x"}) == {
        "nowhere.users.name": "there is no dataset 'nowhere' (have: forum)"
    }


def test_an_accessor_link_with_release_unlink_is_cut(datasets: Datasets, db: sa.Connection) -> None:
    (bob,) = datasets.access(["email:bob@example.com"])
    shares = next(t for t in bob.tables if t.table == "shares")
    assert [r["role"] for r in shares.rows] == ["accessor"]
    (report,) = datasets.erase(["email:bob@example.com"])
    # Alice's share stays hers; it no longer names Bob.
    assert rows(db, "SELECT id, owner_id, shared_with FROM shares") == [(90, 1, None)]
    assert outcome(report, "shares")["unlinked"] == 1
    assert outcome(report, "shares")["reasons"] == [
        "1 rows this subject could see: their link to this subject is removed"
    ]


def test_a_shared_row_found_by_identity_loses_that_identity(
    datasets: Datasets, db: sa.Connection
) -> None:
    # The guest's ticket is Bob's too (he handles it): it stays, without the guest's email.
    (report,) = datasets.erase(["email:guest@example.com"])
    assert rows(db, "SELECT id, email, agent_id FROM tickets") == [(95, None, 2)]
    assert outcome(report, "tickets")["unlinked"] == 1
    assert not datasets.find(["email:guest@example.com"])["forum"]


def test_a_row_reached_by_a_link_holding_someone_elses_identity_is_theirs_too(
    datasets: Datasets, db: sa.Connection
) -> None:
    # Bob handled the guest's ticket: erasing Bob unlinks him; the guest still finds it.
    datasets.erase(["email:bob@example.com"])
    assert rows(db, "SELECT id, email, agent_id FROM tickets") == [(95, "guest@example.com", None)]
    assert set(datasets.find(["email:guest@example.com"])["forum"].tables["tickets"].rows) == {
        (95,)
    }
