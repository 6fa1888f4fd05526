"""K9db's Lobsters and ownCloud schemas, annotated in lawful's language: the same behaviour.

`tests/datasets/k9db/` holds K9db's annotated schemas (the ground truth for ownership),
the plain schemas that load into MariaDB, and their annotations in lawful's language
(`lobsters.yaml`, `owncloud.yaml`, `owncloud-owners.yaml`), each table's comment citing
the K9db annotation it expresses and any difference. Each test loads a plain schema into
a fresh database (MariaDB, and PostgreSQL and SQLite with the few type changes their DDL
needs), inserts a small hand-made population, and checks with plain SQL that lawful finds
what K9db puts in a user's shard and erases what K9db's forget erases.

Foreign keys: K9db's ownership columns (OWNED_BY, OWNS, ACCESSES, implicit owners) are
enforced by the database during erasure, so "the foreign keys still hold" is the
database's word. K9db's other references (a comment's story, a share's recipient) are
not kept consistent by K9db's forget: they are checked with plain SQL, and the tests
named `..._refused_...` show what happens when the database enforces them too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lawful.datasets import Datasets, ErasureFailed
from lawful.datasets.traverse import Found

K9DB = Path(__file__).parent / "k9db"

Fk = tuple[str, str, str, str]  # table, column, referenced table, referenced column
Rows = dict[str, dict[Any, dict[str, Any]]]  # table -> key -> row


# --- loading the plain schemas --------------------------------------------------------------


def statements(
    file: str, backend: str, *, add: tuple[Fk, ...] = (), drop: tuple[tuple[str, str], ...] = ()
) -> list[str]:
    """The DDL of `file` for `backend`, with foreign keys added (`add`) or removed (`drop`).

    MariaDB takes the files as they are. PostgreSQL has no DATETIME; neither it nor SQLite
    knows ENGINE= or backquotes. Nothing else changes.
    """
    text = (K9DB / file).read_text()
    for table, column in drop:
        # `  column TYPE REFERENCES t(c),` in `CREATE TABLE table`: the REFERENCES goes.
        body = re.search(rf"CREATE TABLE {table} \((.*?)\n\)", text, re.S)
        assert body is not None, table
        new, n = re.subn(
            rf"(\n\s*{column}\s[^,\n]*?)\s+REFERENCES\s+\w+\(\w+\)", r"\1", body.group(1)
        )
        assert n == 1, (table, column)
        text = text.replace(body.group(1), new)
    out = []
    for stmt in re.split(r";\s*\n", text):
        stmt = stmt.strip().rstrip(";")
        if not stmt or stmt.startswith("--"):
            continue
        created = re.match(r"CREATE TABLE (\w+)", stmt)
        if created:
            fks = [f for f in add if f[0] == created.group(1)]
            if fks:
                end = stmt.rindex(")")
                extra = "".join(f",\n  FOREIGN KEY ({c}) REFERENCES {t}({k})" for _, c, t, k in fks)
                stmt = stmt[:end].rstrip() + extra + "\n" + stmt[end:]
        if backend != "mysql":
            stmt = re.sub(r"\)\s*ENGINE=\w+ DEFAULT CHARSET=\w+$", ")", stmt)
            stmt = stmt.replace("`", "")
        if backend == "postgresql":
            stmt = re.sub(r"\bdatetime\b", "timestamp", stmt, flags=re.I)
        out.append(stmt)
    return out


_engines: dict[str, sa.Engine] = {}


def engine(url: str) -> sa.Engine:
    """One engine per test database for the checks (disposed after each test)."""
    if url not in _engines:
        _engines[url] = sa.create_engine(url)
    return _engines[url]


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    while _engines:
        _engines.popitem()[1].dispose()


def build(url: str, file: str, rows: dict[str, list[dict[str, Any]]], **changes: Any) -> None:
    """Create the schema of `file` at `url` and insert `rows` (in their order)."""
    backend = make_url(url).get_backend_name()
    with engine(url).begin() as conn:
        for stmt in statements(file, backend, **changes):
            conn.exec_driver_sql(stmt)
        metadata = sa.MetaData()
        metadata.reflect(conn)
        for table, values in rows.items():
            columns = {c for row in values for c in row}  # one shape for executemany
            filled = [{c: row.get(c) for c in columns} for row in values]
            conn.execute(metadata.tables[table].insert(), filled)


def dump(url: str, tables: list[str]) -> Rows:
    """Every row of `tables`, by primary key."""
    metadata = sa.MetaData()
    out: Rows = {}
    with engine(url).connect() as conn:
        metadata.reflect(conn, only=tables)
        for name in tables:
            table = metadata.tables[name]
            (key,) = table.primary_key.columns
            out[name] = {
                r._mapping[key.name]: dict(r._mapping) for r in conn.execute(table.select())
            }
    return out


def changes(before: Rows, after: Rows) -> tuple[dict[str, set[Any]], dict[tuple[str, Any], dict]]:
    """What changed between two dumps: deleted keys per table, changed columns per row."""
    deleted: dict[str, set[Any]] = {}
    changed: dict[tuple[str, Any], dict[str, Any]] = {}
    for table, rows in before.items():
        assert set(after[table]) <= set(rows), f"rows appeared in {table}"
        gone = set(rows) - set(after[table])
        if gone:
            deleted[table] = gone
        for key, row in after[table].items():
            diff = {c: v for c, v in row.items() if rows[key][c] != v}
            if diff:
                changed[(table, key)] = diff
    return deleted, changed


def query(url: str, sql: str, **params: Any) -> set[Any]:
    with engine(url).connect() as conn:
        return {row[0] for row in conn.execute(sa.text(sql), params)}


def shard(url: str, oracle: dict[str, dict[str, str]], user: Any) -> dict[str, dict[Any, str]]:
    """What K9db puts in `user`'s shard, by plain SQL: table -> key -> owner|accessor.

    `oracle` gives, per table, the WHERE clause of each role (`:u` is the user); a row
    both owned and accessed is owned.
    """
    out: dict[str, dict[Any, str]] = {}
    for table, roles in oracle.items():
        found: dict[Any, str] = {}
        for role in ("accessor", "owner"):
            if role in roles:
                key = KEYS.get(table, "id")
                sql = f"SELECT {key} FROM {table} WHERE {roles[role]}"
                found |= dict.fromkeys(query(url, sql, u=user), role)
        if found:
            out[table] = found
    return out


def rows_found(found: Found) -> dict[str, dict[Any, str]]:
    """What lawful found: table -> key -> role."""
    return {
        name: {key[0]: table.role(key).value for key in table.rows}
        for name, table in found.tables.items()
        if table.rows
    }


def orphans(url: str, fks: tuple[Fk, ...]) -> set[tuple[str, str, Any]]:
    """Rows whose reference in `fks` names no row: (table, column, key)."""
    out = set()
    for table, column, target, target_column in fks:
        key = KEYS.get(table, "id")
        sql = (
            f"SELECT {key} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT IN "
            f"(SELECT {target_column} FROM {target})"
        )
        out |= {(table, column, k) for k in query(url, sql)}
    return out


KEYS = {"oc_users": "uid", "oc_groups": "gid", "oc_filecache": "fileid"}


# --- Lobsters -----------------------------------------------------------------------------

A, B, C, D = 1, 2, 3, 4  # alice, bob, carol, dave (a moderator)

# K9db's ownership foreign keys (OWNED_BY; REFERENCES that K9db makes an implicit owner;
# ACCESSES), which the plain MariaDB file leaves out: added, so the database enforces them.
LOBSTERS_OWNERSHIP: tuple[Fk, ...] = (
    ("stories", "user_id", "users", "id"),  # implicit owner
    ("comments", "user_id", "users", "id"),
    ("hat_requests", "user_id", "users", "id"),  # implicit owner
    ("hats", "user_id", "users", "id"),
    ("hats", "granted_by_user_id", "users", "id"),
    ("hidden_stories", "user_id", "users", "id"),
    ("invitations", "user_id", "users", "id"),
    ("messages", "author_user_id", "users", "id"),
    ("messages", "recipient_user_id", "users", "id"),
    ("moderations", "user_id", "users", "id"),
    ("moderations", "moderator_user_id", "users", "id"),
    ("read_ribbons", "user_id", "users", "id"),
    ("saved_stories", "user_id", "users", "id"),
    ("suggested_taggings", "user_id", "users", "id"),
    ("suggested_taggings", "tag_id", "tags", "id"),  # ACCESSES
    ("suggested_titles", "user_id", "users", "id"),
    ("tag_filters", "user_id", "users", "id"),  # implicit owner
    ("taggings", "story_id", "stories", "id"),  # implicit owner
    ("votes", "user_id", "users", "id"),
)
# K9db's plain references: to rows someone else owns, which K9db's forget leaves pointing
# at nothing. (K9db's `suggested_taggings.story_id REFERENCES users(id)` is a slip for
# stories(id); left out.)
LOBSTERS_REFERENCES: tuple[Fk, ...] = (
    ("comments", "story_id", "stories", "id"),
    ("hidden_stories", "story_id", "stories", "id"),
    ("read_ribbons", "story_id", "stories", "id"),
    ("saved_stories", "story_id", "stories", "id"),
    ("suggested_titles", "story_id", "stories", "id"),
    ("tag_filters", "tag_id", "tags", "id"),
    ("taggings", "tag_id", "tags", "id"),
    ("votes", "story_id", "stories", "id"),
    ("votes", "comment_id", "comments", "id"),
)

# K9db's shard of user :u, table by table, as plain SQL over lobsters-annotated.k9db.sql.
LOBSTERS_SHARD = {
    "users": {"owner": "id = :u"},
    "stories": {"owner": "user_id = :u"},
    "taggings": {"owner": "story_id IN (SELECT id FROM stories WHERE user_id = :u)"},
    **{
        t: {"owner": "user_id = :u"}
        for t in (
            "comments",
            "votes",
            "hidden_stories",
            "read_ribbons",
            "saved_stories",
            "suggested_taggings",
            "suggested_titles",
            "tag_filters",
            "hat_requests",
            "invitations",
        )
    },
    "hats": {"owner": "user_id = :u OR granted_by_user_id = :u"},
    "moderations": {"owner": "user_id = :u OR moderator_user_id = :u"},
    "messages": {"owner": "author_user_id = :u OR recipient_user_id = :u"},
    "tags": {"accessor": "id IN (SELECT tag_id FROM suggested_taggings WHERE user_id = :u)"},
}
LOBSTERS_TABLES = [*LOBSTERS_SHARD, "invitation_requests"]

T0 = dt.datetime(2026, 1, 5, 10, 0)


def _user(id: int, name: str) -> dict[str, Any]:
    return {
        "id": id,
        "username": name,
        "email": f"{name}@lobste.rs.example",
        "password_digest": f"digest-{name}",
        "session_token": f"session-{name}",
        "karma": 10 * id,
        "created_at": T0,
        "about": f"I am {name}",
    }


def _story(id: int, user: int, title: str) -> dict[str, Any]:
    zero = dict.fromkeys(
        ("is_expired", "upvotes", "downvotes", "is_moderated", "hotness", "comments_count"), 0
    )
    return {"id": id, "user_id": user, "title": title, "short_id": f"s{id}", **zero}


def _comment(id: int, user: int, story: int, parent: int | None = None) -> dict[str, Any]:
    return {
        "id": id,
        "created_at": T0,
        "short_id": f"c{id}",
        "story_id": story,
        "user_id": user,
        "parent_comment_id": parent,
        "comment": f"comment {id}",
        "upvotes": 1,
        "downvotes": 0,
        "confidence": 1,
    }


def _message(id: int, author: int, recipient: int) -> dict[str, Any]:
    return {
        "id": id,
        "created_at": T0,
        "author_user_id": author,
        "recipient_user_id": recipient,
        "subject": f"message {id}",
        "body": f"from {author} to {recipient}",
        "short_id": f"m{id}",
    }


def _stamped(**row: Any) -> dict[str, Any]:
    return {"created_at": T0, "updated_at": T0, **row}


LOBSTERS_ROWS: dict[str, list[dict[str, Any]]] = {
    "users": [_user(A, "alice"), _user(B, "bob"), _user(C, "carol"), _user(D, "dave")],
    "tags": [{"id": 2, "tag": "python"}],  # tag 1 'test' comes with the schema
    "stories": [_story(10, A, "Alice's story"), _story(11, B, "Bob's"), _story(12, C, "Carol's")],
    "taggings": [
        {"id": 20, "story_id": 10, "tag_id": 1},
        {"id": 21, "story_id": 11, "tag_id": 1},
        {"id": 22, "story_id": 11, "tag_id": 2},
    ],
    "comments": [
        _comment(100, A, 11),  # A on B's story
        _comment(101, B, 10),  # B on A's story
        _comment(102, C, 10, parent=101),  # C replies to B, on A's story
        _comment(103, A, 10),  # A on their own story
    ],
    "votes": [
        {"id": 200, "user_id": A, "story_id": 11, "vote": 1},
        {"id": 201, "user_id": B, "story_id": 10, "vote": 1},
        {"id": 202, "user_id": B, "story_id": 10, "comment_id": 103, "vote": 1},
        {"id": 203, "user_id": C, "story_id": 12, "vote": 1},
    ],
    "messages": [
        _message(300, A, B),
        _message(301, B, A),
        _message(302, A, C),
        _message(303, B, C),
    ],
    "invitations": [
        _stamped(id=400, user_id=A, email="newbie@example.org", code="i400", memo="welcome"),
        _stamped(id=401, user_id=B, email="friend@example.org", code="i401"),
    ],
    "invitation_requests": [
        _stamped(id=450, email="hopeful@example.org", name="Hope", ip_address="192.0.2.7")
    ],
    "hats": [
        {"id": 500, "user_id": B, "granted_by_user_id": A, "hat": "Sysop"},  # A granted B's
        {"id": 501, "user_id": A, "granted_by_user_id": D, "hat": "Author"},  # D granted A's
    ],
    "hat_requests": [{"id": 550, "user_id": A, "hat": "Maintainer", "comment": "please"}],
    "moderations": [
        _stamped(id=600, user_id=A, moderator_user_id=D, action="warned", reason="tone"),
        _stamped(id=601, user_id=B, moderator_user_id=A, action="edited", reason="spam"),
        _stamped(id=602, user_id=C, moderator_user_id=D, action="banned", reason="abuse"),
    ],
    "hidden_stories": [
        {"id": 700, "user_id": A, "story_id": 12},
        {"id": 701, "user_id": C, "story_id": 10},
    ],
    "read_ribbons": [
        _stamped(id=800, user_id=A, story_id=11, is_following=1),
        _stamped(id=801, user_id=B, story_id=10, is_following=1),
    ],
    "saved_stories": [
        _stamped(id=900, user_id=A, story_id=11),
        _stamped(id=901, user_id=B, story_id=10),
    ],
    "suggested_taggings": [
        {"id": 1000, "user_id": A, "story_id": 12, "tag_id": 2},
        {"id": 1001, "user_id": B, "story_id": 10, "tag_id": 1},
    ],
    "suggested_titles": [
        {"id": 1100, "user_id": A, "story_id": 11, "title": "Better"},
        {"id": 1101, "user_id": C, "story_id": 10, "title": "Best"},
    ],
    "tag_filters": [
        _stamped(id=1200, user_id=A, tag_id=2),
        _stamped(id=1201, user_id=D, tag_id=1),
    ],
}


@pytest.fixture
def lobsters_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Lobsters with K9db's ownership foreign keys enforced, and the population."""
    build(app_url, "lobsters-mariadb-innodb.sql", LOBSTERS_ROWS, add=LOBSTERS_OWNERSHIP)
    monkeypatch.setenv("LOBSTERS_DATABASE_URL", app_url)
    return app_url


@pytest.fixture
def lobsters(lobsters_url: str) -> Iterator[Datasets]:
    with Datasets.load([K9DB / "lobsters.yaml"]) as datasets:
        yield datasets


def found(datasets: Datasets, identity: str) -> dict[str, dict[Any, str]]:
    (result,) = datasets.find([identity]).values()
    return rows_found(result)


def test_lobsters_annotation_matches_the_schema(lobsters: Datasets) -> None:
    assert lobsters.check() == {"lobsters": ()}
    annotated = set(lobsters.loaded["lobsters"].dataset.tables)
    # Every table of K9db's schema is annotated but the key-value store (no personal data).
    k9db = set(re.findall(r"CREATE (?:DATA_SUBJECT )?TABLE (\w+)", _k9db("lobsters")))
    assert k9db - annotated == {"keystores"}
    assert annotated <= k9db


def _k9db(name: str) -> str:
    return (K9DB / f"{name}-annotated.k9db.sql").read_text()


def test_lobsters_find_is_the_k9db_shard(lobsters: Datasets, lobsters_url: str) -> None:
    for user in (A, B, C, D):
        assert found(lobsters, f"account:{user}") == shard(lobsters_url, LOBSTERS_SHARD, user)


def test_lobsters_shards_as_written_by_hand(lobsters: Datasets) -> None:
    """The oracle itself, for alice: the population written out, so a wrong query shows."""
    assert found(lobsters, f"account:{A}") == {
        "users": {A: "owner"},
        "stories": {10: "owner"},
        "taggings": {20: "owner"},  # through her story (implicit owner)
        "comments": {100: "owner", 103: "owner"},
        "votes": {200: "owner"},
        "messages": {300: "owner", 301: "owner", 302: "owner"},  # author or recipient
        "invitations": {400: "owner"},
        "hats": {500: "owner", 501: "owner"},  # granted by her, worn by her
        "hat_requests": {550: "owner"},
        "moderations": {600: "owner", 601: "owner"},  # moderated, moderator
        "hidden_stories": {700: "owner"},
        "read_ribbons": {800: "owner"},
        "saved_stories": {900: "owner"},
        "suggested_taggings": {1000: "owner"},
        "suggested_titles": {1100: "owner"},
        "tag_filters": {1200: "owner"},
        "tags": {2: "accessor"},  # suggested_taggings.tag_id ACCESSES tags(id)
    }


def test_lobsters_messages_are_found_for_author_and_recipient(lobsters: Datasets) -> None:
    # 300 is alice's to bob, 301 bob's to alice: each is in both shards, owned.
    for user in (A, B):
        messages = found(lobsters, f"account:{user}")["messages"]
        assert messages[300] == messages[301] == "owner"
    assert set(found(lobsters, f"account:{C}")["messages"]) == {302, 303}
    assert set(found(lobsters, "email:dave@lobste.rs.example")) == {
        "users",
        "hats",
        "moderations",
        "tag_filters",
    }


def test_lobsters_access_lists_the_rows_with_their_roles(lobsters: Datasets) -> None:
    (report,) = lobsters.access([f"account:{B}"])
    tables = {t.table: t for t in report.tables}
    assert {r["data"]["subject"] for r in tables["messages"].rows} == {
        "message 300",
        "message 301",
        "message 303",
    }
    assert [r["role"] for r in tables["tags"].rows] == ["accessor"]
    assert "password_digest" in tables["users"].columns  # personal, so in the copy


def test_lobsters_erasure_is_k9db_forget(lobsters: Datasets, lobsters_url: str) -> None:
    before = dump(lobsters_url, LOBSTERS_TABLES)
    shard_of_a = shard(lobsters_url, LOBSTERS_SHARD, A)
    (report,) = lobsters.erase([f"account:{A}"])
    after = dump(lobsters_url, LOBSTERS_TABLES)
    deleted, changed = changes(before, after)

    # A's own rows go; rows A shares with others stay for them with A's column NULL.
    assert deleted == {
        "users": {A},
        "stories": {10},
        "taggings": {20},
        "comments": {100, 103},
        "votes": {200},
        "hat_requests": {550},
        "hidden_stories": {700},
        "read_ribbons": {800},
        "saved_stories": {900},
        "suggested_taggings": {1000},
        "suggested_titles": {1100},
        "tag_filters": {1200},
    }
    assert changed == {
        # The invitation holds the invitee's email: it is theirs too, so it stays for them.
        ("invitations", 400): {"user_id": None},
        # ON DEL author_user_id ANON (author_user_id), and the same for the recipient.
        ("messages", 300): {"author_user_id": None},
        ("messages", 301): {"recipient_user_id": None},
        ("messages", 302): {"author_user_id": None},
        # Two owners, no ON DEL rule: K9db leaves A's id here, lawful unlinks it.
        ("hats", 500): {"granted_by_user_id": None},
        ("hats", 501): {"user_id": None},
        ("moderations", 600): {"user_id": None},
        ("moderations", 601): {"moderator_user_id": None},
    }
    # Every row of A's shard was deleted or released; nothing outside it changed.
    acted = {(t, k) for t, keys in deleted.items() for k in keys} | set(changed)
    owned = {
        (t, k) for t, rows in shard_of_a.items() for k, role in rows.items() if role == "owner"
    }
    assert acted == owned
    assert report.changed == len(acted)

    # Still found for the others, without A in them.
    messages = found(lobsters, f"account:{B}")["messages"]
    assert messages == {300: "owner", 301: "owner", 303: "owner"}
    assert after["messages"][300]["author_user_id"] is None
    assert after["messages"][300]["recipient_user_id"] == B
    assert set(found(lobsters, f"account:{C}")["messages"]) == {302, 303}
    assert set(found(lobsters, f"account:{D}")["hats"]) == {501}

    # The ownership foreign keys hold (the database enforced them during the erasure);
    # the plain references to A's story and comment point at nothing, as after K9db's.
    assert orphans(lobsters_url, LOBSTERS_OWNERSHIP) == set()
    assert orphans(lobsters_url, LOBSTERS_REFERENCES) == {
        ("comments", "story_id", 101),
        ("comments", "story_id", 102),
        ("hidden_stories", "story_id", 701),
        ("read_ribbons", "story_id", 801),
        ("saved_stories", "story_id", 901),
        ("suggested_titles", "story_id", 1101),
        ("votes", "story_id", 201),
        ("votes", "story_id", 202),
        ("votes", "comment_id", 202),
    }
    assert found(lobsters, f"account:{A}") == {}

    # A second erasure finds nothing left and changes nothing.
    (again,) = lobsters.erase([f"account:{A}"])
    assert again.found == again.changed == 0
    assert dump(lobsters_url, LOBSTERS_TABLES) == after


def test_lobsters_the_last_owner_of_a_message_deletes_it(
    lobsters: Datasets, lobsters_url: str
) -> None:
    lobsters.erase([f"account:{A}"])
    before = dump(lobsters_url, LOBSTERS_TABLES)
    lobsters.erase([f"account:{B}"])
    deleted, changed = changes(before, dump(lobsters_url, LOBSTERS_TABLES))
    # 300 and 301, between A (erased) and B, go now; 303, B's to C, stays for C.
    assert deleted["messages"] == {300, 301}
    assert changed[("messages", 303)] == {"author_user_id": None}
    # The hat A granted B, and A's moderation of B: B was the last owner.
    assert deleted["hats"] == {500}
    assert deleted["moderations"] == {601}
    assert deleted["users"] == {B}
    assert orphans(lobsters_url, LOBSTERS_OWNERSHIP) == set()


def test_lobsters_b_is_untouched_by_a_until_b_erases(lobsters: Datasets, lobsters_url: str) -> None:
    shard_of_b = shard(lobsters_url, LOBSTERS_SHARD, B)
    lobsters.erase([f"account:{A}"])
    # B keeps every row of B's shard, those shared with A (messages, a hat, a moderation)
    # too, and finds them all. (Their values: test_lobsters_erasure_is_k9db_forget.)
    assert shard(lobsters_url, LOBSTERS_SHARD, B) == shard_of_b
    assert found(lobsters, f"account:{B}") == shard_of_b


def test_lobsters_invitee_finds_the_invitation_until_the_inviter_erases(
    lobsters: Datasets,
) -> None:
    """K9db: invitations is a DATA_SUBJECT table owned by users. Its invitee finds it by
    email (as in K9db, where the row is in its own shard). When the inviter is forgotten
    K9db keeps the row in the invitee's shard; so does lawful: a row reached through a
    link that holds another person's identity is theirs too."""
    assert found(lobsters, "email:newbie@example.org") == {"invitations": {400: "owner"}}
    assert found(lobsters, "email:hopeful@example.org") == {"invitation_requests": {450: "owner"}}
    lobsters.erase([f"account:{A}"])
    assert found(lobsters, "email:newbie@example.org") == {"invitations": {400: "owner"}}
    (report,) = lobsters.erase(["email:newbie@example.org"])
    assert found(lobsters, "email:newbie@example.org") == {}
    assert next(t for t in report.tables if t.table == "invitations").deleted == 1


def test_lobsters_identities_join_what_k9db_keeps_apart(
    lobsters: Datasets, lobsters_url: str
) -> None:
    """K9db's users and invitations are different kinds of subject (separate shards);
    lawful finds a person by identity values, so a user whose email an invitation was
    sent to gets the invitation too (a documented difference)."""
    with engine(lobsters_url).begin() as conn:
        conn.execute(
            sa.text("UPDATE invitations SET email = 'CAROL@lobste.rs.example' WHERE id = 401")
        )
    assert found(lobsters, f"account:{C}")["invitations"] == {401: "owner"}
    assert 401 not in shard(lobsters_url, LOBSTERS_SHARD, C).get("invitations", {})


@pytest.fixture
def lobsters_strict_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Lobsters with every foreign key K9db declares enforced, plain references too."""
    fks = LOBSTERS_OWNERSHIP + LOBSTERS_REFERENCES
    build(app_url, "lobsters-mariadb-innodb.sql", LOBSTERS_ROWS, add=fks)
    monkeypatch.setenv("LOBSTERS_DATABASE_URL", app_url)
    return app_url


def test_lobsters_erasure_is_refused_when_others_rows_reference_a_story(
    lobsters_strict_url: str,
) -> None:
    """K9db deletes A's story although B's comment points at it. Where the database
    enforces that reference, the same erasure is refused, whole (gap: lawful has no
    "delete, or anonymize while others' rows reference it")."""
    before = dump(lobsters_strict_url, LOBSTERS_TABLES)
    with Datasets.load([K9DB / "lobsters.yaml"]) as lobsters:
        with pytest.raises(ErasureFailed, match="refused"):
            lobsters.erase([f"account:{A}"])
        # D owns nothing others reference: D's erasure goes through.
        (report,) = lobsters.erase([f"account:{D}"])
    deleted, changed = changes(before, dump(lobsters_strict_url, LOBSTERS_TABLES))
    assert deleted == {"users": {D}, "tag_filters": {1201}}  # A's rows are all there
    assert changed == {
        ("hats", 501): {"granted_by_user_id": None},
        ("moderations", 600): {"moderator_user_id": None},
        ("moderations", 602): {"moderator_user_id": None},
    }
    assert report.changed == 5


# --- ownCloud -------------------------------------------------------------------------------

OWNCLOUD_TABLES = ["oc_users", "oc_groups", "oc_group_user", "oc_files", "oc_share", "oc_filecache"]

# The MariaDB file enforces every REFERENCES of the schema. K9db's ownership ones (OWNED_BY,
# OWNS) its forget keeps; the others (ACCESSED_BY, plain REFERENCES) it leaves naming a
# forgotten user or group.
OWNCLOUD_OWNERSHIP: tuple[Fk, ...] = (
    ("oc_group_user", "uid", "oc_users", "uid"),
    ("oc_group_user", "gid", "oc_groups", "gid"),
    ("oc_share", "uid_owner", "oc_users", "uid"),
    ("oc_share", "item_source", "oc_files", "id"),
    ("oc_filecache", "fileid", "oc_files", "id"),
)
SHARED_WITH: tuple[Fk, ...] = (  # ACCESSED_BY in owncloud.yaml, OWNED_BY in the owners one
    ("oc_share", "share_with", "oc_users", "uid"),
    ("oc_share", "share_with_group", "oc_groups", "gid"),
)
INITIATOR: tuple[Fk, ...] = (("oc_share", "uid_initiator", "oc_users", "uid"),)  # REFERENCES

_MEMBER_OF = "(SELECT gid FROM oc_group_user WHERE uid = :u)"
_ACCESSED_SHARE = f"share_with = :u OR share_with_group IN {_MEMBER_OF}"
_OWNED_SHARE = "uid_owner = :u"


def _owncloud_shard(owned_share: str, accessed_share: str | None) -> dict[str, dict[str, str]]:
    def files(where: str) -> str:
        return f"IN (SELECT item_source FROM oc_share WHERE {where})"

    share = {"owner": owned_share}
    file = {"owner": f"id {files(owned_share)}"}
    cache = {"owner": f"fileid {files(owned_share)}"}
    if accessed_share:
        share["accessor"] = accessed_share
        file["accessor"] = f"id {files(accessed_share)}"
        cache["accessor"] = f"fileid {files(accessed_share)}"
    return {
        "oc_users": {"owner": "uid = :u"},
        "oc_group_user": {"owner": "uid = :u"},
        "oc_groups": {"owner": f"gid IN {_MEMBER_OF}"},
        "oc_share": share,
        "oc_files": file,
        "oc_filecache": cache,
    }


# owncloud-annotated.k9db.sql: shares owned by uid_owner, accessed by share_with and the
# members of share_with_group; files (OWNS) and their filecache (OWNED_BY) follow.
OWNCLOUD_SHARD = _owncloud_shard(_OWNED_SHARE, _ACCESSED_SHARE)
# owncloud-owners-annotated.k9db.sql: all three own the share.
OWNERS_SHARD = _owncloud_shard(f"{_OWNED_SHARE} OR {_ACCESSED_SHARE}", None)


def _share(id: int, owner: str, item: int, *, user: str | None = None, group: str | None = None):
    return {
        "id": id,
        "share_type": 0 if user else 1,
        "share_with": user,
        "share_with_group": group,
        "uid_owner": owner,
        "uid_initiator": owner,
        "item_type": "file",
        "item_source": item,
        "file_source": item,
        "file_target": f"/shared/{id}",
        "permissions": 1,
        "stime": 1700000000 + id,
    }


def _cache(fileid: int, storage: int, path: str) -> dict[str, Any]:
    return {"fileid": fileid, "storage": storage, "path": path, "name": path.rsplit("/", 1)[-1]}


OWNCLOUD_ROWS: dict[str, list[dict[str, Any]]] = {
    "oc_storages": [
        {"id": "home::alice", "numeric_id": 1, "available": 1},
        {"id": "home::dave", "numeric_id": 2, "available": 1},
    ],
    "oc_users": [
        {"uid": uid, "displayname": uid.title(), "password": f"hash-{uid}"}
        for uid in ("alice", "bob", "carol", "dave", "erin")
    ],
    "oc_groups": [{"gid": "staff"}, {"gid": "solo"}, {"gid": "ops"}],
    "oc_group_user": [
        {"id": 1, "gid": "staff", "uid": "alice"},
        {"id": 2, "gid": "staff", "uid": "carol"},
        {"id": 3, "gid": "staff", "uid": "dave"},
        {"id": 4, "gid": "solo", "uid": "alice"},  # alice is its only member
        {"id": 5, "gid": "ops", "uid": "erin"},  # erin is its only member
    ],
    "oc_files": [
        {"id": 1, "file_name": "report.pdf"},
        {"id": 2, "file_name": "photo.jpg"},
        {"id": 3, "file_name": "notes.txt"},
        {"id": 4, "file_name": "plan.odt"},  # shared by alice and by dave
    ],
    "oc_share": [
        _share(10, "alice", 1, user="bob"),
        _share(11, "alice", 2, group="staff"),
        _share(12, "dave", 3, user="erin"),
        _share(13, "alice", 4, user="erin"),
        _share(14, "dave", 4, user="bob"),
        _share(15, "dave", 3, group="ops"),
    ],
    "oc_filecache": [
        _cache(1, 1, "files/report.pdf"),
        _cache(2, 1, "files/photo.jpg"),
        _cache(3, 2, "files/notes.txt"),
        _cache(4, 1, "files/plan.odt"),
    ],
}


def owncloud_url(app_url: str, monkeypatch: pytest.MonkeyPatch, *, drop: tuple[Fk, ...]) -> str:
    """ownCloud and its population, the foreign keys in `drop` left unenforced."""
    build(
        app_url,
        "owncloud-mariadb-innodb.sql",
        OWNCLOUD_ROWS,
        drop=tuple((t, c) for t, c, _, _ in drop),
    )
    monkeypatch.setenv("OWNCLOUD_DATABASE_URL", app_url)
    return app_url


@pytest.fixture
def shipped_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """ownCloud as the MariaDB file has it: every REFERENCES enforced."""
    return owncloud_url(app_url, monkeypatch, drop=())


@pytest.fixture
def k9db_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """ownCloud with the references K9db's forget keeps enforced (owncloud.yaml's)."""
    return owncloud_url(app_url, monkeypatch, drop=SHARED_WITH + INITIATOR)


@pytest.fixture
def owners_url(app_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The same for the owners variant, where share_with and share_with_group own."""
    return owncloud_url(app_url, monkeypatch, drop=INITIATOR)


def open_owncloud(variant: str) -> Datasets:
    return Datasets.load([K9DB / f"{variant}.yaml"])


def found_owncloud(datasets: Datasets, uid: str) -> dict[str, dict[Any, str]]:
    return found(datasets, f"account:{uid}")


@pytest.mark.parametrize(
    ("variant", "oracle"), [("owncloud", OWNCLOUD_SHARD), ("owncloud-owners", OWNERS_SHARD)]
)
def test_owncloud_find_is_the_k9db_shard(shipped_url: str, variant: str, oracle: dict) -> None:
    with open_owncloud(variant) as datasets:
        assert list(datasets.check().values()) == [()]  # no warnings
        for uid in ("alice", "bob", "carol", "dave", "erin"):
            assert found_owncloud(datasets, uid) == shard(shipped_url, oracle, uid), uid


def test_owncloud_shards_as_written_by_hand(shipped_url: str) -> None:
    with open_owncloud("owncloud") as datasets:
        assert datasets.check() == {"owncloud": ()}
        assert found_owncloud(datasets, "bob") == {
            "oc_users": {"bob": "owner"},
            "oc_share": {10: "accessor", 14: "accessor"},  # shared with him
            "oc_files": {1: "accessor", 4: "accessor"},  # the shares' item_source
            "oc_filecache": {1: "accessor", 4: "accessor"},
        }
        assert found_owncloud(datasets, "carol") == {
            "oc_users": {"carol": "owner"},
            "oc_group_user": {2: "owner"},
            "oc_groups": {"staff": "owner"},
            "oc_share": {11: "accessor"},  # shared with staff
            "oc_files": {2: "accessor"},
            "oc_filecache": {2: "accessor"},
        }
        assert found_owncloud(datasets, "alice") == {
            "oc_users": {"alice": "owner"},
            "oc_group_user": {1: "owner", 4: "owner"},
            "oc_groups": {"staff": "owner", "solo": "owner"},
            "oc_share": {10: "owner", 11: "owner", 13: "owner"},
            "oc_files": {1: "owner", 2: "owner", 4: "owner"},
            "oc_filecache": {1: "owner", 2: "owner", 4: "owner"},
        }


def test_owncloud_access_shows_shared_files_as_accessor_rows(shipped_url: str) -> None:
    with open_owncloud("owncloud") as datasets:
        for uid, share, file in (("bob", 10, "report.pdf"), ("carol", 11, "photo.jpg")):
            (report,) = datasets.access([f"account:{uid}"])
            tables = {t.table: t for t in report.tables}
            shares = {r["data"]["file_target"]: r["role"] for r in tables["oc_share"].rows}
            assert shares[f"/shared/{share}"] == "accessor"
            files = {r["data"]["file_name"]: r["role"] for r in tables["oc_files"].rows}
            assert files[file] == "accessor"
            paths = {r["data"]["path"]: r["role"] for r in tables["oc_filecache"].rows}
            assert paths[f"files/{file}"] == "accessor"


def test_owncloud_erasing_the_owner_removes_shares_files_and_filecache(shipped_url: str) -> None:
    before = dump(shipped_url, OWNCLOUD_TABLES)
    with open_owncloud("owncloud") as datasets:
        (report,) = datasets.erase(["account:alice"])
        after = dump(shipped_url, OWNCLOUD_TABLES)
        deleted, changed = changes(before, after)
        assert deleted == {
            "oc_users": {"alice"},
            "oc_group_user": {1, 4},  # her memberships
            "oc_groups": {"solo"},  # she was its last member; staff has two more
            "oc_share": {10, 11, 13},  # hers (OWNED_BY uid_owner)
            "oc_files": {1, 2},  # OWNS through her shares; plan.odt is dave's too
            "oc_filecache": {1, 2},  # OWNED_BY the files
        }
        assert changed == {}
        assert report.changed == sum(len(k) for k in deleted.values())
        # The others see what is theirs still: dave's share of plan.odt with bob.
        assert found_owncloud(datasets, "bob") == {
            "oc_users": {"bob": "owner"},
            "oc_share": {14: "accessor"},
            "oc_files": {4: "accessor"},
            "oc_filecache": {4: "accessor"},
        }
        assert found_owncloud(datasets, "carol")["oc_groups"] == {"staff": "owner"}
        (again,) = datasets.erase(["account:alice"])
        assert again.found == again.changed == 0
    # Every foreign key of the schema holds: the database enforced them all.
    assert orphans(shipped_url, OWNCLOUD_OWNERSHIP + SHARED_WITH + INITIATOR) == set()
    assert dump(shipped_url, OWNCLOUD_TABLES) == after


def test_owncloud_erasing_a_recipient_leaves_the_share_as_k9db_does(k9db_url: str) -> None:
    """K9db: share_with ACCESSED_BY, no ON DEL rule: bob's forget deletes bob and leaves
    the shares and files (alice and dave own them), share_with still naming bob."""
    before = dump(k9db_url, OWNCLOUD_TABLES)
    with open_owncloud("owncloud") as datasets:
        (report,) = datasets.erase(["account:bob"])
        deleted, changed = changes(before, dump(k9db_url, OWNCLOUD_TABLES))
        assert deleted == {"oc_users": {"bob"}}
        assert changed == {}
        outcome = {t.table: t for t in report.tables}
        assert outcome["oc_share"].accessed == 2 and outcome["oc_files"].accessed == 2
        # The owner still has them; the group member erasing keeps the group's share too.
        assert found_owncloud(datasets, "alice")["oc_share"] == {
            10: "owner",
            11: "owner",
            13: "owner",
        }
        datasets.erase(["account:carol"])
        assert found_owncloud(datasets, "dave")["oc_share"] == {
            11: "accessor",
            12: "owner",
            14: "owner",
            15: "owner",
        }
    assert orphans(k9db_url, OWNCLOUD_OWNERSHIP + INITIATOR) == set()
    assert orphans(k9db_url, SHARED_WITH) == {
        ("oc_share", "share_with", 10),
        ("oc_share", "share_with", 14),
    }


def test_owncloud_erasing_a_recipient_is_refused_where_the_reference_is_enforced(
    shipped_url: str,
) -> None:
    """On the schema as MariaDB enforces it, bob's row can't go while shares name him:
    lawful leaves accessed rows alone and has no way to unlink an accessor link (K9db
    would write ON DEL share_with ANON (share_with)). Nothing is changed."""
    before = dump(shipped_url, OWNCLOUD_TABLES)
    with (
        open_owncloud("owncloud") as datasets,
        pytest.raises(ErasureFailed, match="refused"),
    ):
        datasets.erase(["account:bob"])
    assert dump(shipped_url, OWNCLOUD_TABLES) == before


# --- ownCloud, owners variant ------------------------------------------------------------------


def test_owncloud_owners_shares_outlive_their_owner(owners_url: str) -> None:
    """owncloud-owners: a share (and its file) is its owner's, its user's and its group
    members'; it goes with the last of them. K9db leaves the forgotten owner's uid in the
    row; lawful unlinks it (see owncloud-owners.yaml)."""
    before = dump(owners_url, OWNCLOUD_TABLES)
    with open_owncloud("owncloud-owners") as datasets:
        datasets.erase(["account:alice"])
        deleted, changed = changes(before, dump(owners_url, OWNCLOUD_TABLES))
        assert deleted == {"oc_users": {"alice"}, "oc_group_user": {1, 4}, "oc_groups": {"solo"}}
        assert changed == {
            ("oc_share", 10): {"uid_owner": None},  # bob's still
            ("oc_share", 11): {"uid_owner": None},  # staff's still
            ("oc_share", 13): {"uid_owner": None},  # erin's still
        }
        assert found_owncloud(datasets, "bob")["oc_files"] == {1: "owner", 4: "owner"}

        # bob was the last owner of share 10 and report.pdf: they go now. Share 14 is dave's.
        before = dump(owners_url, OWNCLOUD_TABLES)
        datasets.erase(["account:bob"])
        deleted, changed = changes(before, dump(owners_url, OWNCLOUD_TABLES))
        assert deleted == {
            "oc_users": {"bob"},
            "oc_share": {10},
            "oc_files": {1},
            "oc_filecache": {1},
        }
        assert changed == {("oc_share", 14): {"share_with": None}}

        # carol leaves staff: dave still owns the group, so its share stays shared with it.
        before = dump(owners_url, OWNCLOUD_TABLES)
        datasets.erase(["account:carol"])
        deleted, changed = changes(before, dump(owners_url, OWNCLOUD_TABLES))
        assert deleted == {"oc_users": {"carol"}, "oc_group_user": {2}}
        assert changed == {}
        assert found_owncloud(datasets, "dave")["oc_share"] == {
            11: "owner",
            12: "owner",
            14: "owner",
            15: "owner",
        }

        # dave, staff's last member: the group, its share and photo.jpg go; plan.odt stays
        # (erin owns it through share 13).
        before = dump(owners_url, OWNCLOUD_TABLES)
        datasets.erase(["account:dave"])
        deleted, changed = changes(before, dump(owners_url, OWNCLOUD_TABLES))
        assert deleted == {
            "oc_users": {"dave"},
            "oc_group_user": {3},
            "oc_groups": {"staff"},
            "oc_share": {11, 14},
            "oc_files": {2},
            "oc_filecache": {2},
        }
        assert changed == {
            ("oc_share", 12): {"uid_owner": None},  # erin's still
            ("oc_share", 15): {"uid_owner": None},  # ops' (erin's) still
        }
        assert found_owncloud(datasets, "erin") == {
            "oc_users": {"erin": "owner"},
            "oc_group_user": {5: "owner"},
            "oc_groups": {"ops": "owner"},
            "oc_share": {12: "owner", 13: "owner", 15: "owner"},
            "oc_files": {3: "owner", 4: "owner"},
            "oc_filecache": {3: "owner", 4: "owner"},
        }
        assert orphans(owners_url, OWNCLOUD_OWNERSHIP + SHARED_WITH) == set()
        # K9db's plain reference uid_initiator names the forgotten owners, as in K9db.
        assert orphans(owners_url, INITIATOR) == {
            ("oc_share", "uid_initiator", 12),
            ("oc_share", "uid_initiator", 13),
            ("oc_share", "uid_initiator", 15),
        }

        # erin, the last owner of everything left: all of it goes.
        datasets.erase(["account:erin"])
        assert {t: set(rows) for t, rows in dump(owners_url, OWNCLOUD_TABLES).items()} == {
            t: set() for t in OWNCLOUD_TABLES
        }


def test_owncloud_owners_the_last_member_unlinks_the_group(owners_url: str) -> None:
    """erin is ops' only member: her erasure deletes the group, and dave's share with it
    stays his with share_with_group NULL (K9db leaves the gid). The shares with erin
    herself stay their owners', share_with NULL."""
    before = dump(owners_url, OWNCLOUD_TABLES)
    with open_owncloud("owncloud-owners") as datasets:
        datasets.erase(["account:erin"])
        deleted, changed = changes(before, dump(owners_url, OWNCLOUD_TABLES))
        assert deleted == {"oc_users": {"erin"}, "oc_group_user": {5}, "oc_groups": {"ops"}}
        assert changed == {
            ("oc_share", 12): {"share_with": None},
            ("oc_share", 13): {"share_with": None},
            ("oc_share", 15): {"share_with_group": None},
        }
        assert found_owncloud(datasets, "dave")["oc_share"] == {
            11: "owner",
            12: "owner",
            14: "owner",
            15: "owner",
        }
    assert orphans(owners_url, OWNCLOUD_OWNERSHIP + SHARED_WITH + INITIATOR) == set()


def test_owncloud_owners_erasure_is_refused_where_the_initiator_is_enforced(
    shipped_url: str,
) -> None:
    """On the schema as shipped, alice's shares outlive her (bob, erin and staff own
    them) with uid_initiator still naming her: the database refuses her erasure. lawful
    can't clear uid_initiator too (K9db: ON DEL uid_owner ANON (uid_owner, uid_initiator))."""
    before = dump(shipped_url, OWNCLOUD_TABLES)
    with (
        open_owncloud("owncloud-owners") as datasets,
        pytest.raises(ErasureFailed, match="refused"),
    ):
        datasets.erase(["account:alice"])
    assert dump(shipped_url, OWNCLOUD_TABLES) == before
