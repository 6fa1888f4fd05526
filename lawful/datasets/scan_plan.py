"""How `lawful scan` turns what it read into a draft: who the people are, whose rows are whose.

1. Identity tables: tables of people with an email (or a phone), and the main subject
   table, whose key becomes the `account` identity.
2. Breadth-first from them, the main subject's first: a table holding a key of a reached
   row is owned by it (orders.customer_id → customers); a table a reached row points at
   is part of that row when it holds personal data of its own (customers.address_id →
   addresses); tables without personal data (products, countries) are left out, so
   erasure never touches them. A link to another person's row (orders.employee_id), or
   naming who acted on a row (created_by), is `refers`: erasing that person unlinks it.
3. Erasure: delete, unless rows that stay (tables left out, rows shared by several
   people, anonymized rows) point at the table through a foreign key the database
   enforces; then anonymize, with masks that fit the column types and constraints.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lawful.datasets.masks import HASH_MIN_LENGTH
from lawful.datasets.recognise import (
    TRANSACTION_WORDS,
    guess_context,
    intrinsic,
    is_customer_like,
    is_lookup_named,
    is_staff_like,
    table_words,
    words,
)
from lawful.datasets.scan_schema import ColumnInfo, Edge, Schema, TableInfo

# Categories erasure masks in an anonymized row; amounts and dates of purchases stay.
MASKED = (
    "user.contact",
    "user.name",
    "user.demographic",
    "user.device",
    "user.financial",
    "user.government_id",
    "user.authorization",
    "user.account",
    "user.location",
    "user.content",
    "user.job_title",
    "user.unique_id",
)
FIXED_TEXT = "erased"
FIXED_DATE = "2000-01-01"


@dataclass
class LinkOut:
    """One `owners` entry of the draft, with the comment that goes with it."""

    target: str
    on: dict[str, str]
    role: str = "owner"
    note: str | None = None

    @property
    def review(self) -> bool:
        return bool(self.note and self.note.startswith("review"))


@dataclass
class Claim:
    """How a table was reached: from which identity table, and through which link."""

    root: str
    via: Edge | None
    how: str  # root, child (holds a key of a reached row), part (a reached row points at it)


@dataclass
class TableDraft:
    """One table of the draft: identities, owners, erasure and columns, with comments."""

    info: TableInfo
    claim: Claim
    description: str = ""
    identities: list[tuple[str, str, str]] = field(default_factory=list)  # column, kind, note
    links: list[LinkOut] = field(default_factory=list)
    erase: str = "delete"
    erase_note: str | None = None
    nulls: set[str] = field(default_factory=set)  # link columns anonymization sets NULL
    columns: list[tuple[str, str, Any, str | None]] = field(default_factory=list)

    @property
    def owner_links(self) -> list[LinkOut]:
        return [link for link in self.links if link.role == "owner"]


@dataclass
class Draft:
    """The tables to annotate, in the order reached, and those left out (names only)."""

    tables: dict[str, TableDraft]
    no_personal: list[str]
    unreached: dict[str, list[str]]  # table → its personal columns (names only)
    skipped: list[str]

    def summary(self) -> str:
        with_ids = sum(1 for t in self.tables.values() if t.identities)
        review = sum(1 for t in self.tables.values() for link in t.links if link.review)
        parts = [
            f"{len(self.tables)} tables",
            f"{with_ids} with identities",
            f"{review} link{'s' if review != 1 else ''} to review",
        ]
        left = len(self.no_personal) + len(self.unreached)
        if left:
            parts.append(f"{left} left out")
        return ", ".join(parts)


def analyse(schema: Schema) -> Draft:
    """The draft for a read schema: identity tables, links, erasure, categories and masks."""
    tables = schema.tables
    roots, main = _roots(schema)
    claims = _claim(schema, roots)
    drafts: dict[str, TableDraft] = {}
    for name, claim in claims.items():
        draft = drafts[name] = TableDraft(tables[name], claim)
        if name in roots:
            draft.identities = _identities(tables[name], name == main)
        else:  # a table reached through links may hold an email too (a guest's order)
            draft.identities = [
                (c, "email", "review: an email in a table reached through links")
                for c in tables[name].identity_columns("email")
            ]
        draft.description = _describe(draft, main)
    _links(schema, drafts)
    for draft in drafts.values():
        _claim_first(draft)
    _erasure(schema, drafts)
    for draft in drafts.values():
        _columns(schema, draft, drafts)
    no_personal, unreached = [], {}
    for name, info in tables.items():
        if name in drafts:
            continue
        personal = [c.name for c in info.columns.values() if intrinsic(c.guess.category)]
        if personal:
            unreached[name] = personal
        else:
            no_personal.append(name)
    return Draft(drafts, sorted(no_personal), unreached, schema.skipped)


def _score(info: TableInfo, schema: Schema) -> float:
    score = 0.0
    if is_customer_like(info.name):
        score += 4
    if is_staff_like(info.name):
        score -= 3
    if is_lookup_named(info.name):
        score -= 4
    if info.identity_columns("email"):
        score += 2
    if info.identity_columns("phone"):
        score += 1
    incoming = {e.child for e in schema.edges if e.parent == info.name and e.child != info.name}
    return score + 0.2 * min(len(incoming), 10)


def _roots(schema: Schema) -> tuple[list[str], str | None]:
    """The identity tables (main subject first), and the main subject table (its key: account)."""
    tables = schema.tables
    found = {
        name
        for name, info in tables.items()
        if info.identity_columns("email")
        or (info.ctx is not None and info.ctx.person and info.identity_columns("phone"))
    }
    # A table with an email but no people in it that points at a people's table (an order
    # with the buyer's email) belongs to them: it is reached through its link instead.
    demoted = {
        name
        for name in found
        if not (tables[name].ctx and tables[name].ctx.person)
        and any(e.child == name and e.parent in found and e.parent != name for e in schema.edges)
    }
    roots = found - demoted
    candidates = set(roots) | {
        name
        for name, info in tables.items()
        if is_customer_like(name) and info.intrinsic and name not in demoted
    }
    if not candidates:  # no emails, no customers: the people's table (employees), if any
        candidates = {
            name
            for name, info in tables.items()
            if info.ctx is not None and info.ctx.person and info.intrinsic
        }
    keyed = [n for n in candidates if len(tables[n].key) == 1 and tables[n].key_note is None]
    main = max(keyed, key=lambda n: (_score(tables[n], schema), n), default=None)
    if main is not None:
        roots.add(main)
    ordered = sorted(roots, key=lambda n: (n != main, -_score(tables[n], schema), n))
    return ordered, main


def _is_link_table(info: TableInfo, schema: Schema) -> bool:
    fk_cols = {c for e in schema.edges if e.child == info.name for c in e.child_cols}
    return len(info.key) > 1 and set(info.key) <= fk_cols


def _claim(schema: Schema, roots: list[str]) -> dict[str, Claim]:
    """Which tables hold a subject's rows, and through which link: breadth-first from roots."""
    tables = schema.tables
    children: dict[str, list[Edge]] = {}
    parents: dict[str, list[Edge]] = {}
    for e in sorted(schema.edges, key=lambda e: (_actor(e), not e.declared, e.child, e.child_cols)):
        children.setdefault(e.parent, []).append(e)
        parents.setdefault(e.child, []).append(e)
    root_parents = {e.parent for e in schema.edges if e.child in roots}
    claims = {name: Claim(name, None, "root") for name in roots}
    excluded: set[str] = set()
    for root in roots:
        queue = deque([root])
        while queue:
            name = queue.popleft()
            claim = claims[name]
            if claim.how != "part":  # what points at a part is its owner, not its child
                for e in children.get(name, []):
                    child = e.child
                    if child == name or child in claims or child in excluded or _actor(e):
                        continue  # who created or approved a row does not own it
                    info = tables[child]
                    if info.intrinsic or (
                        not (info.ctx and info.ctx.lookup and not _is_link_table(info, schema))
                        and child not in root_parents
                    ):
                        claims[child] = Claim(claim.root, e, "child")
                        queue.append(child)
                    else:
                        excluded.add(child)
            for e in parents.get(name, []):
                parent = e.parent
                if parent == name or parent in claims or parent in excluded or _actor(e):
                    continue
                info = tables[parent]
                if not info.intrinsic:
                    excluded.add(parent)
                    continue
                if info.ctx and info.ctx.lookup:
                    continue
                fk = tables[name].columns[e.child_cols[0]].values
                if fk.count >= 10 and fk.distinct < 0.5:
                    continue  # many rows point at the same one: a shared thing, not a part
                claims[parent] = Claim(claim.root, e, "part")
                queue.append(parent)
    return claims


def _describe(draft: TableDraft, main: str | None) -> str:
    claim = draft.claim
    if claim.how == "root":
        kinds = list(dict.fromkeys(kind for _, kind, _ in draft.identities))
        by = ", ".join(kinds[:-1]) + (" and " if len(kinds) > 1 else "") + kinds[-1]
        by = by.replace("account", "account id")
        if draft.info.name == main:
            return f"The main subject table: people found by {by}"
        person = draft.info.ctx is not None and draft.info.ctx.person
        return f"{'People' if person else 'Rows'} found by {by}"
    assert claim.via is not None
    cols = ", ".join(claim.via.child_cols)
    if claim.how == "child":
        return f"Rows of {claim.via.parent} (through {cols})"
    return f"Referenced by {claim.via.child}.{cols}: part of the rows that point at it"


def _identities(info: TableInfo, main: bool) -> list[tuple[str, str, str]]:
    out = []
    for c in info.columns.values():
        if c.guess.identity:
            how = {"name": "by name", "values": "by sampled values"}.get(
                c.guess.how, "by name and sampled values"
            )
            if c.guess.identity == "email" and c.values.texts and c.values.share("lower") == 1:
                how += "; stored lower-case: `{kind: email, match: exact}` would use an index"
            out.append((c.name, c.guess.identity, how))
    if main:
        (key,) = info.key
        out.append((key, "account", "the key of the main subject table"))
    return out


def _links(schema: Schema, drafts: dict[str, TableDraft]) -> None:
    """Every link between annotated tables: the claims' own, then the others found."""
    for e in schema.edges:
        if e.child not in drafts or e.parent not in drafts:
            continue
        c, p = drafts[e.child], drafts[e.parent]
        guessed = "" if e.declared else "no foreign key, guessed from names; "
        forward = dict(zip(e.child_cols, e.parent_cols, strict=True))
        backward = dict(zip(e.parent_cols, e.child_cols, strict=True))
        cols = ", ".join(e.child_cols)
        if c.claim.via == e and c.claim.how == "child":
            note = f"review: {guessed.rstrip('; ')}" if guessed else None
            _add(c, LinkOut(e.parent, forward, note=note))
        elif _actor(e) and e.child != e.parent:
            note = f"review: {guessed}who acted on the row, not whose it is"
            _add(c, LinkOut(e.parent, forward, "refers", note))
        elif p.claim.how == "part" and e.child != e.parent:
            _add(
                p,
                LinkOut(e.child, backward, note=f"review: {guessed}{e.child}.{cols} points at it"),
            )
        elif e.child == e.parent:
            _add(
                c,
                LinkOut(
                    e.parent,
                    forward,
                    "refers",
                    f"review: {guessed}another row of the table (erasure unlinks it)",
                ),
            )
        elif c.claim.how == "part" or (c.claim.how == "root" and c.claim.root == p.claim.root):
            continue
        elif c.claim.root == p.claim.root:
            assert c.claim.via is not None
            if c.claim.via.parent == e.parent:
                note = f"a second link to {e.parent}: a row may be two people's"
            else:
                note = (
                    f"also reached through {e.parent}; role: accessor if these can be others' rows"
                )
            _add(c, LinkOut(e.parent, forward, note=f"review: {guessed}{note}"))
        else:
            _add(
                c,
                LinkOut(
                    e.parent,
                    forward,
                    "refers",
                    f"review: {guessed}another person's row (erasing them unlinks it)",
                ),
            )


_ACTORS = frozenset(
    ["by", "moderator", "approver", "reviewer", "admin", "editor", "updater", "modifier"]
)


def _actor(e: Edge) -> bool:
    """A link naming who acted on a row (created_by, approved_by_user_id), not whose it is."""
    return any(set(words(c)) & _ACTORS for c in e.child_cols)


def _claim_first(draft: TableDraft) -> None:
    via = draft.claim.via
    if via is not None and draft.claim.how == "child":
        first = dict(zip(via.child_cols, via.parent_cols, strict=True))
        draft.links.sort(key=lambda link: link.on != first)


def _add(draft: TableDraft, link: LinkOut) -> None:
    if any(x.target == link.target and x.on == link.on for x in draft.links):
        return
    draft.links.append(link)


def _link_for(draft: TableDraft, target: str, on: dict[str, str]) -> LinkOut | None:
    for link in draft.links:
        if link.target == target and link.on == on:
            return link
    return None


def _shareable(draft: TableDraft, drafts: dict[str, TableDraft]) -> bool:
    """Whether the table's rows may belong to several people (then erasure may keep them)."""
    owners = draft.owner_links
    if len(owners) < 2:
        return False
    targets = [link.target for link in owners]
    roots = {drafts[t].claim.root for t in targets}
    return len(set(targets)) < len(targets) or len(roots) > 1 or draft.claim.how == "part"


def _erasure(schema: Schema, drafts: dict[str, TableDraft]) -> None:
    """delete everywhere, then anonymize what rows that stay point at (to a fixpoint)."""
    changed = True
    while changed:
        changed = False
        for e in schema.edges:
            if not e.declared or e.parent not in drafts:
                continue
            target = drafts[e.parent]
            if target.erase == "anonymize":
                continue
            why = _blocks(e, drafts, schema)
            if why:
                target.erase, target.erase_note, changed = "anonymize", why, True


def _blocks(e: Edge, drafts: dict[str, TableDraft], schema: Schema) -> str | None:
    """Why rows of e.child may still point at the subject's e.parent rows after erasure."""
    child = schema.tables[e.child]
    cols = ", ".join(e.child_cols)
    nullable = all(
        child.columns[c].nullable and c not in child.key for c in e.child_cols
    ) and not any(child.columns[c].unique for c in e.child_cols)
    ref = f"{e.child}.{cols}"
    if e.child not in drafts:
        return f"review: rows of {e.child} (not annotated) point at these through {cols}"
    draft = drafts[e.child]
    forward = dict(zip(e.child_cols, e.parent_cols, strict=True))
    backward = dict(zip(e.parent_cols, e.child_cols, strict=True))
    link = _link_for(draft, e.parent, forward)
    part = _link_for(drafts[e.parent], e.child, backward)
    if link is not None and link.role == "refers":
        return None if nullable else f"review: {ref} (NOT NULL) points here from others' rows"
    if link is None and part is None:
        return f"review: {ref} points here from rows erasure leaves"
    stays = draft.erase != "delete" or _shareable(draft, drafts)
    if not stays:
        return None
    if nullable:
        if draft.erase != "delete":
            draft.nulls.update(e.child_cols)
        return None
    return f"review: kept rows of {e.child} point at these through {cols} (NOT NULL)"


# --- columns and masks ----------------------------------------------------------------------


def _columns(schema: Schema, draft: TableDraft, drafts: dict[str, TableDraft]) -> None:
    info = draft.info
    assert info.ctx is not None
    link_cols = {c for e in schema.edges if e.child == info.name for c in e.child_cols}
    outside = {
        c
        for e in schema.edges
        if e.child == info.name and e.parent not in drafts
        for c in e.child_cols
    }
    for column in info.columns.values():
        name = column.name
        if name in draft.nulls:
            draft.columns.append(
                (
                    name,
                    "system.operations",
                    "null",
                    "a link: set NULL so the row it points at can go",
                )
            )
            continue
        if name in info.key and not column.guess.personal:
            continue
        if name in link_cols:
            if name in outside and set(table_words(info.name)) & _TRANSACTION:
                draft.columns.append(
                    (name, "user.behavior.purchase_history", None, "a reference in a purchase")
                )
            continue
        guess = column.guess
        if guess.category is None:
            guess = guess_context(name, column.kind, info.name, info.ctx, column.values)
        if guess.category is None:
            draft.columns.append((name, "system.operations", None, "review: not recognised"))
            continue
        how = {
            "name": "by name",
            "values": "by sampled values",
            "table": "by the table's name",
        }.get(guess.how, "by name and sampled values")
        if column.note:
            how = f"{column.note}; {how}"
        action = None
        if (
            draft.erase == "anonymize"
            and name not in info.key
            and guess.category.startswith(MASKED)
        ):
            action, why = _mask(column)
            how = f"{how}; {why}"
        draft.columns.append((name, guess.category, action, how))


# Tables whose references to things left out (a product, a film) are what a person bought.
_TRANSACTION = TRANSACTION_WORDS | {"line", "item", "detail"}


def _mask(column: ColumnInfo) -> tuple[Any, str]:
    """A mask the column's type and constraints accept (lawful.datasets.graph checks them)."""
    long_text = column.kind == "text" and (
        column.length is None or column.length >= HASH_MIN_LENGTH
    )
    if column.unique:
        if long_text:
            return "hash", "unique, so a keyed hash"
        if column.nullable:
            return "null", "set NULL"
        return None, "review: unique, NOT NULL and too short to hash: no mask"
    if column.nullable:
        return "null", "set NULL"
    fixed = "NOT NULL, so a fixed value"
    if column.odd:
        return None, f"review: NOT NULL and {column.odd}: no mask"
    if column.kind == "text":
        if column.length is not None and column.length < len(FIXED_TEXT):
            return {"fixed": ""}, fixed
        return {"fixed": FIXED_TEXT}, fixed
    if column.kind == "number":
        return {"fixed": 0}, fixed
    if column.kind == "time":
        return {"fixed": FIXED_DATE}, fixed
    return None, f"review: NOT NULL {column.kind}: no mask"
