"""Finding a subject's rows: every shape of ownership, on SQLite, PostgreSQL and MariaDB.

The forum database (tests/datasets/forum.py) holds one case per table; each test checks
the rows found, and the role they were found with, against what the annotation says.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lawful.datasets import Datasets, Found, load_dataset_text
from tests.datasets import forum


@pytest.fixture
def datasets(forum_data: Datasets) -> Datasets:
    return forum_data


def found(datasets: Datasets, *identities: str) -> Found:
    return datasets.find(identities)["forum"]


def roles(result: Found, table: str) -> dict[tuple[object, ...], str]:
    t = result.tables[table]
    return {key: t.role(key).value for key in t.rows}


def test_every_table_reached_from_an_email(datasets: Datasets) -> None:
    alice = found(datasets, "email:alice@example.com")
    assert roles(alice, "users") == {(1,): "owner", (3,): "refers"}  # Carol was invited by her
    assert roles(alice, "profiles") == {(1,): "owner"}
    assert roles(alice, "posts") == {(10,): "owner"}
    # Her comments anywhere are hers; Bob's comment on her post she may only see.
    assert roles(alice, "comments") == {(100,): "accessor", (101,): "owner", (102,): "owner"}
    assert roles(alice, "memberships") == {(1, 20): "owner", (1, 21): "owner"}
    assert roles(alice, "groups") == {(20,): "owner", (21,): "owner"}
    assert roles(alice, "messages") == {(30,): "owner", (31,): "owner"}
    assert roles(alice, "friendships") == {(1, 2): "owner", (3, 1): "owner"}
    assert roles(alice, "activity") == {(50,): "owner", (51,): "owner"}  # no foreign key
    assert roles(alice, "newsletter") == {(60,): "owner"}  # ALICE@example.COM, by email only
    assert roles(alice, "invoices") == {(70,): "owner"}


def test_a_cycle_in_the_data_ends_the_walk(datasets: Datasets) -> None:
    alice = found(datasets, "email:alice@example.com")
    # root → child → grandchild → root again: each folder once, Bob's folder not at all.
    assert roles(alice, "folders") == {(40,): "owner", (41,): "owner", (42,): "owner"}


def test_one_query_per_table_per_hop(datasets: Datasets) -> None:
    alice = found(datasets, "email:alice@example.com")
    tables = sum(1 for t in alice.tables.values() if t.rows)
    # Each table is read once per hop it is reached in: the tables with identities at hop
    # 0 and again when a link reaches them (users, tickets), folders once per level.
    assert alice.statements <= tables + 8, alice.statements
    # The count depends on the shape of the graph, not on the rows: four people at once
    # take no more statements than one.
    everyone = found(datasets, *(f"account:{i}" for i in range(1, 5)))
    assert everyone.total > alice.total
    assert everyone.statements <= alice.statements + 2


def test_a_phone_typed_with_spaces_is_found_and_leads_to_the_email(datasets: Datasets) -> None:
    by_phone = found(datasets, "phone:+447400123456")
    assert roles(by_phone, "users") == {(1,): "owner", (3,): "refers"}
    # users.email `expands`: the newsletter, kept by email only, is found from the phone too.
    assert roles(by_phone, "newsletter") == {(60,): "owner"}


def test_an_account_id_is_an_entry_point(datasets: Datasets) -> None:
    bob = found(datasets, "account:2")
    assert roles(bob, "users") == {(2,): "owner"}
    assert roles(bob, "messages") == {(30,): "owner", (31,): "owner", (32,): "owner"}
    assert roles(bob, "newsletter") == {(61,): "owner"}


def test_a_person_in_no_table_of_accounts_is_found_where_they_are(datasets: Datasets) -> None:
    stranger = found(datasets, "email:stranger@example.com")
    assert stranger.total == 1
    assert roles(stranger, "newsletter") == {(62,): "owner"}


def test_an_unknown_identity_finds_nothing(datasets: Datasets) -> None:
    nobody = found(datasets, "email:nobody@example.com")
    assert not nobody
    assert nobody.total == 0


def test_several_identities_at_once(datasets: Datasets) -> None:
    both = found(datasets, "email:alice@example.com", "email:bob@example.com")
    assert set(roles(both, "users")) == {(1,), (2,), (3,)}
    assert roles(both, "comments") == {
        (100,): "owner",
        (101,): "owner",
        (102,): "owner",
        (103,): "owner",
    }


def test_rows_match_what_plain_sql_finds(datasets: Datasets, forum_url: str) -> None:
    alice = found(datasets, "email:alice@example.com")
    engine = sa.create_engine(forum_url)
    try:
        with engine.connect() as conn:
            mine = {
                "activity": "SELECT id FROM activity WHERE user_ref = 1",
                "messages": "SELECT id FROM messages WHERE sender_id = 1 OR recipient_id = 1",
                "comments": "SELECT id FROM comments WHERE author_id = 1 OR post_id IN (SELECT id FROM posts WHERE author_id = 1)",
            }
            for table, sql in mine.items():
                expected = {(row[0],) for row in conn.execute(sa.text(sql))}
                assert set(alice.tables[table].rows) == expected, table
    finally:
        engine.dispose()


def test_access_returns_personal_columns_with_their_categories(datasets: Datasets) -> None:
    (report,) = datasets.access(["email:alice@example.com"])
    by_table = {t.table: t for t in report.tables}
    users = by_table["users"]
    assert users.columns == {
        "email": "user.contact.email",
        "phone": "user.contact.phone_number",
        "name": "user.name",
    }
    # Carol's row only points at Alice: it is not Alice's to see.
    assert [r["data"]["name"] for r in users.rows] == ["Alice"]
    comments = by_table["comments"]
    assert sorted((r["role"], r["data"]["body"]) for r in comments.rows) == [
        ("accessor", "Bob on Alice's post"),
        ("owner", "Alice on Bob's post"),
        ("owner", "Alice on her own post"),
    ]
    assert "invited_by" not in users.rows[0]["data"]  # not annotated: not personal data
    assert report.to_dict()["tables"][0]["rows"][0]["data"]["email"] == "Alice@Example.com"


def test_a_link_without_an_index_is_a_warning(datasets: Datasets, forum_url: str) -> None:
    warnings = [str(w) for w in datasets.check()["forum"]]
    unindexed = any("users.invited_by" in w and "CREATE INDEX" in w for w in warnings)
    # InnoDB indexes every foreign key column itself; the others don't.
    assert unindexed == (not forum_url.startswith("mysql"))


def test_deleting_rows_an_unannotated_table_references_is_a_warning(forum_url: str) -> None:
    text = forum.ANNOTATION.replace(
        "    erase: anonymize\n    columns:\n      email:", "    columns:\n      email:", 1
    )
    with Datasets([load_dataset_text(text, "forum.yaml")]) as opened:
        warnings = [str(w) for w in opened.check()["forum"]]
    assert any(
        "table 'sessions' (not annotated) references users through user_id" in w for w in warnings
    ), warnings
