"""A small forum database built for the traversal and erasure tests, with its annotation.

Each table is one shape of ownership a real schema has:

* users: the subjects (email in any case, phone typed with spaces, account id); a user
  may have been invited by another (a `refers` link: the invitee's row is theirs);
* profiles: one row per user (a child one hop away), with values to mask;
* posts → comments: two hops; a comment belongs to its author, and the post's author
  may see it (accessor);
* groups ← memberships: a link table; a group belongs to all its members;
* messages: owned by sender and recipient both (nullable links, unlinked on erasure);
* friendships: a composite key, both sides owners;
* folders: a tree through a self link (with a cycle in the data);
* activity: `user_ref` points at users without a foreign key;
* newsletter: matched by email only, no key;
* invoices: kept for the tax authority under a retention rule;
* shares: a file its owner shared with another user, who may see it (an accessor link
  that erasure unlinks);
* tickets: a guest's support request (found by email) handled by a user: the row belongs
  to both;
* sessions: NOT annotated, with a foreign key to users (deleting a user then fails).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

metadata = sa.MetaData()
MASK_KEY = b"k" * 32  # the key of hash masks in the tests, so expected hashes can be computed
Id = sa.Integer

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("email", sa.String(200), nullable=False),
    sa.Column("phone", sa.String(40)),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("invited_by", Id, sa.ForeignKey("users.id")),
)
profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("born", sa.Date),
    sa.Column("last_ip", sa.String(45)),
    sa.Column("postcode", sa.String(10)),
    sa.Column("nickname", sa.String(64)),
    sa.Column("motto", sa.String(100), nullable=False),
)
posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("author_id", Id, sa.ForeignKey("users.id"), index=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("body", sa.Text),
)
comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("post_id", Id, sa.ForeignKey("posts.id"), nullable=False, index=True),
    sa.Column("author_id", Id, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
)
groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
)
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("group_id", Id, sa.ForeignKey("groups.id"), primary_key=True, index=True),
)
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("sender_id", Id, sa.ForeignKey("users.id"), index=True),
    sa.Column("recipient_id", Id, sa.ForeignKey("users.id"), index=True),
    sa.Column("body", sa.Text, nullable=False),
)
friendships = sa.Table(
    "friendships",
    metadata,
    sa.Column("user_a", Id, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("user_b", Id, sa.ForeignKey("users.id"), primary_key=True, index=True),
    sa.Column("since", sa.Date, nullable=False),
)
folders = sa.Table(
    "folders",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("owner_id", Id, sa.ForeignKey("users.id"), index=True),
    sa.Column("parent_id", Id, index=True),  # no FK: the data holds a cycle
    sa.Column("name", sa.String(100), nullable=False),
)
activity = sa.Table(
    "activity",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_ref", Id, nullable=False, index=True),  # no foreign key
    sa.Column("what", sa.String(50), nullable=False),
)
newsletter = sa.Table(
    "newsletter",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("email", sa.String(200), nullable=False, index=True),
)
invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("buyer", sa.String(100), nullable=False),
    sa.Column("amount", sa.Numeric(10, 2), nullable=False),
)
shares = sa.Table(
    "shares",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("owner_id", Id, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("shared_with", Id, sa.ForeignKey("users.id"), index=True),
    sa.Column("file", sa.String(100), nullable=False),
)
tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("email", sa.String(200), index=True),
    sa.Column("agent_id", Id, sa.ForeignKey("users.id"), index=True),
    sa.Column("question", sa.Text, nullable=False),
)
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False),
)

# A = 1 (alice), B = 2 (bob), C = 3 (carol, invited by alice), D = 4 (dave, no rows but his own)
ROWS: dict[str, list[dict[str, object]]] = {
    "users": [
        {
            "id": 1,
            "email": "Alice@Example.com",
            "phone": "+44 7400 123456",
            "name": "Alice",
            "invited_by": None,
        },
        {
            "id": 2,
            "email": "bob@example.com",
            "phone": "+447400123457",
            "name": "Bob",
            "invited_by": None,
        },
        {"id": 3, "email": "carol@example.com", "phone": None, "name": "Carol", "invited_by": 1},
        {"id": 4, "email": "dave@example.com", "phone": None, "name": "Dave", "invited_by": None},
    ],
    "profiles": [
        {
            "id": 1,
            "user_id": 1,
            "born": dt.date(1990, 6, 12),
            "last_ip": "203.0.113.77",
            "postcode": "SW1A 1AA",
            "nickname": "ally",
            "motto": "hi",
        },
        {
            "id": 2,
            "user_id": 2,
            "born": dt.date(1985, 1, 1),
            "last_ip": "2001:db8:1234:5678::1",
            "postcode": "10115",
            "nickname": None,
            "motto": "yo",
        },
    ],
    "posts": [
        {"id": 10, "author_id": 1, "title": "Alice's post", "body": "about me"},
        {"id": 11, "author_id": 2, "title": "Bob's post", "body": "about bob"},
    ],
    "comments": [
        {"id": 100, "post_id": 10, "author_id": 2, "body": "Bob on Alice's post"},
        {"id": 101, "post_id": 10, "author_id": 1, "body": "Alice on her own post"},
        {"id": 102, "post_id": 11, "author_id": 1, "body": "Alice on Bob's post"},
        {"id": 103, "post_id": 11, "author_id": 2, "body": "Bob on his post"},
    ],
    "groups": [{"id": 20, "name": "Alice and Bob"}, {"id": 21, "name": "Alice alone"}],
    "memberships": [
        {"user_id": 1, "group_id": 20},
        {"user_id": 2, "group_id": 20},
        {"user_id": 1, "group_id": 21},
    ],
    "messages": [
        {"id": 30, "sender_id": 1, "recipient_id": 2, "body": "Alice to Bob"},
        {"id": 31, "sender_id": 2, "recipient_id": 1, "body": "Bob to Alice"},
        {"id": 32, "sender_id": 2, "recipient_id": 3, "body": "Bob to Carol"},
    ],
    "friendships": [
        {"user_a": 1, "user_b": 2, "since": dt.date(2020, 1, 1)},
        {"user_a": 3, "user_b": 1, "since": dt.date(2021, 1, 1)},
    ],
    "folders": [
        {"id": 40, "owner_id": 1, "parent_id": 42, "name": "root"},
        {"id": 41, "owner_id": None, "parent_id": 40, "name": "child"},
        {"id": 42, "owner_id": None, "parent_id": 41, "name": "grandchild, pointing back at root"},
        {"id": 43, "owner_id": 2, "parent_id": None, "name": "Bob's"},
    ],
    "activity": [
        {"id": 50, "user_ref": 1, "what": "login"},
        {"id": 51, "user_ref": 1, "what": "post"},
        {"id": 52, "user_ref": 2, "what": "login"},
        {"id": 53, "user_ref": 4, "what": "login"},
    ],
    "newsletter": [
        {"id": 60, "email": "ALICE@example.COM"},
        {"id": 61, "email": "bob@example.com"},
        {"id": 62, "email": "stranger@example.com"},
    ],
    "invoices": [{"id": 70, "user_id": 1, "buyer": "Alice", "amount": 12}],
    "shares": [{"id": 90, "owner_id": 1, "shared_with": 2, "file": "holiday.jpg"}],
    "tickets": [
        {"id": 95, "email": "guest@example.com", "agent_id": 2, "question": "Where is my parcel?"}
    ],
    "sessions": [{"id": 80, "user_id": 4}],
}

ANNOTATION = """
lawful: 1
dataset: forum
connection: {url_env: FORUM_DATABASE_URL}
tables:
  users:
    identities:
      email: {kind: email, expands: true}
      phone: phone
      id: account
    owners:
      - {table: users, on: {invited_by: id}, role: refers}
    erase: anonymize
    columns:
      email: {category: user.contact.email, erase: hash}
      phone: {category: user.contact.phone_number, erase: null}
      name: {category: user.name, erase: {fixed: deleted user}}
  profiles:
    owners: [{table: users, on: {user_id: id}}]
    erase: anonymize
    columns:
      born: {category: user.demographic.date_of_birth, erase: {generalize: year}}
      last_ip: {category: user.device.ip_address, erase: {generalize: ip}}
      postcode: {category: user.contact.address.postal_code, erase: {truncate: 2}}
      nickname: {category: user.name, erase: hash}
      motto: {category: user.content.public, erase: {fixed: ""}}
  posts:
    owners: [{table: users, on: {author_id: id}}]
    erase: anonymize
    columns:
      title: {category: user.content.public, erase: {fixed: "[deleted]"}}
      body: {category: user.content.public, erase: null}
  comments:
    owners:
      - {table: posts, on: {post_id: id}, role: accessor}
      - {table: users, on: {author_id: id}}
    columns:
      body: user.content.public
  memberships:
    owners: [{table: users, on: {user_id: id}}]
  groups:
    owners: [{table: memberships, on: {id: group_id}}]
    columns:
      name: user.content.public
  messages:
    owners:
      - {table: users, on: {sender_id: id}}
      - {table: users, on: {recipient_id: id}}
    columns:
      body: user.content.private
  friendships:
    owners:
      - {table: users, on: {user_a: id}}
      - {table: users, on: {user_b: id}}
    columns:
      since: user.social
  folders:
    owners:
      - {table: users, on: {owner_id: id}}
      - {table: folders, on: {parent_id: id}}
    columns:
      name: user.content.private
  activity:
    owners: [{table: users, on: {user_ref: id}}]
    columns:
      what: user.behavior
  newsletter:
    identities: {email: email}
    columns:
      email: user.contact.email
  invoices:
    owners: [{table: users, on: {user_id: id}}]
    erase: keep
    reason: tax law keeps invoices for 10 years
    columns:
      buyer: user.name
  shares:
    owners:
      - {table: users, on: {owner_id: id}}
      - {table: users, on: {shared_with: id}, role: accessor, release: unlink}
    columns:
      file: user.content.private
  tickets:
    identities: {email: email}
    owners: [{table: users, on: {agent_id: id}}]
    columns:
      email: user.contact.email
      question: user.content.private
"""

# Everything erasure may touch, in an order every foreign key accepts when inserting.
INSERT_ORDER = (
    "users",
    "profiles",
    "posts",
    "comments",
    "groups",
    "memberships",
    "messages",
    "friendships",
    "folders",
    "activity",
    "newsletter",
    "invoices",
    "shares",
    "tickets",
    "sessions",
)


def build(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            for name in INSERT_ORDER:
                rows = ROWS[name]
                if rows:
                    conn.execute(metadata.tables[name].insert(), rows)
    finally:
        engine.dispose()
