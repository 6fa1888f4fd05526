"""Subjects in the store: find them by identity, resolve many at once, link, merge, update.

The functions work inside the caller's transaction (a SQLAlchemy Connection), so
another capability can resolve subjects and record its own change atomically; every
change writes its audit event in that same transaction. They take a `Context` (the
controller and the keyring) after the connection and trust it: `check_keyring` once
per process before using a keyring on a store (the `Subjects` facade does).

Lookups are set-based: `resolve_many` reads identities in batches of 1000 hashes and
creates the missing subjects and identities with bulk inserts, so resolving a
thousand identities costs a handful of statements, not a thousand.

A merged subject keeps its row (its ref may live on in tokens and receipts) and points
to the survivor with `merged_into`; lookups follow it. Audit events name a subject by
`Subject.audit_id(keyring)`, a keyed hash of its ref, and hold only kinds, counts and
field names: never an identity's value.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Final, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit.log import NewEvent, append, lock_head
from lawful.policy.countries import COUNTRIES
from lawful.policy.jurisdictions import JURISDICTIONS, get_jurisdiction
from lawful.store import Store
from lawful.store.arrays import unnest
from lawful.subjects.identity import Identity, IdentityKind, identity_kind
from lawful.subjects.keyring import Keyring, KeyringError
from lawful.subjects.tables import identities as identity_rows
from lawful.subjects.tables import keyring_checks, subjects

BATCH = 1000  # hashes per SELECT, rows per INSERT page
ROTATE_BATCH = 500
_MAX_HOPS = 50  # merged_into chains are one hop long; this only guards against a cycle

T = TypeVar("T")


class SubjectError(Exception):
    """A change to subjects was refused; the message says why, without personal data."""


class IdentityConflict(SubjectError):
    """The identity already belongs to another subject."""


class _Unset(Enum):
    token = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.token  # "not given" for `update`, where None means "clear it"
Unset = Literal[_Unset.token]


@dataclass(frozen=True)
class Context:
    """Whose subjects (the controller) and the keyring their identities are hashed with."""

    controller_id: int
    controller_key: str
    keyring: Keyring

    def audit(self, conn: Connection, events: Iterable[NewEvent]) -> None:
        """Append events to the controller's audit log in the caller's transaction."""
        append(conn, self.controller_id, self.controller_key, events)


@dataclass(frozen=True)
class Subject:
    """A person as the controller knows them; `ref` is their public, opaque id."""

    id: int
    ref: str
    kind: str | None
    jurisdiction: str | None
    country: str | None
    birth_date: date | None
    merged_into: int | None

    def audit_id(self, keyring: Keyring) -> str:
        """The pseudonym audit events name this subject by."""
        return keyring.subject_hash(self.ref)

    @property
    def merged(self) -> bool:
        return self.merged_into is not None


_COLUMNS = (
    subjects.c.id,
    subjects.c.ref,
    subjects.c.kind,
    subjects.c.jurisdiction,
    subjects.c.country,
    subjects.c.birth_date,
    subjects.c.merged_into,
)
_FIELDS = ("kind", "jurisdiction", "country", "birth_date")


def _subject(row: Any) -> Subject:
    return Subject(
        id=int(row.id),
        ref=row.ref,
        kind=row.kind,
        jurisdiction=row.jurisdiction,
        country=row.country,
        birth_date=row.birth_date,
        merged_into=int(row.merged_into) if row.merged_into is not None else None,
    )


# -- the keyring ---------------------------------------------------------------------------


def check_keyring(conn: Connection, ctx: Context) -> None:
    """Refuse a keyring whose hash key is not the one the controller's identities use.

    The first keyring used with a controller is recorded (by fingerprint only).
    """
    fingerprint = ctx.keyring.fingerprint()
    stored = conn.scalar(
        sa.select(keyring_checks.c.hash_key_fingerprint).where(
            keyring_checks.c.controller_id == ctx.controller_id
        )
    )
    if stored is None:
        conn.execute(
            sa.insert(keyring_checks).values(
                controller_id=ctx.controller_id,
                hash_key_fingerprint=fingerprint,
                created_at=_now(),
            )
        )
    elif not hmac.compare_digest(stored, fingerprint):
        raise KeyringError(
            "this keyring is not the one the store's identities were hashed with; "
            "use the original keyring file"
        )


# -- finding -------------------------------------------------------------------------------


def find(conn: Connection, ctx: Context, identity: Identity) -> Subject | None:
    """The subject known by `identity` (the survivor, if it was merged), or None."""
    return resolve_many(conn, ctx, [identity], create=False).get(identity)


def resolve_many(
    conn: Connection,
    ctx: Context,
    identities: Sequence[Identity],
    *,
    create: bool,
    kind: str | None = None,
    jurisdiction: str | None = None,
    country: str | None = None,
) -> dict[Identity, Subject]:
    """The subject of each identity; with `create`, unknown ones get a new subject each.

    One SELECT per 1000 distinct identities, then (with `create`) bulk INSERTs of the
    missing subjects and identities and one `subject.created` event per new subject.
    `kind`, `jurisdiction` and `country` apply to new subjects only (use `update` for
    known ones). Without `create`, unknown identities are absent from the result.
    """
    fields = (
        _checked({"kind": kind, "jurisdiction": jurisdiction, "country": country}) if create else {}
    )
    hashes: dict[Identity, str] = {}
    for identity in identities:
        if not isinstance(identity, Identity):
            raise TypeError(f"resolve_many takes Identity objects, got {type(identity).__name__}")
        if identity not in hashes:
            hashes[identity] = ctx.keyring.hash(identity)
    wanted = {digest: identity for identity, digest in hashes.items()}
    found: dict[str, Subject] = {}
    for chunk in _chunks(list(wanted), BATCH):
        query = sa.select(identity_rows.c.hash, *_COLUMNS)
        if conn.dialect.name == "postgresql":
            # Drive the join from the hashes themselves (one index probe each), as one
            # array parameter: with an IN list, a table that grew since it was last
            # analyzed (a bulk import) is scanned whole for every batch. Plain SQL: the
            # equivalent SQLAlchemy construct costs milliseconds to compile per call.
            driving, params = unnest(chunk, "digest")
            sql = _PG_RESOLVE.replace("unnest(%s::text[])", driving)
            rows = conn.exec_driver_sql(sql, (*params, ctx.controller_id)).all()
            for row in rows:
                found[row.hash] = _subject(row)
            continue
        query = query.join_from(
            identity_rows, subjects, subjects.c.id == identity_rows.c.subject_id
        ).where(identity_rows.c.controller_id == ctx.controller_id, identity_rows.c.hash.in_(chunk))
        for row in conn.execute(query):
            found[row.hash] = _subject(row)
    _follow_merges(conn, found)
    if create:
        # In hash order: concurrent resolvers then take the unique index's locks in one
        # order, and the loser gets a retryable unique violation instead of a deadlock.
        missing = sorted(
            (digest, identity) for digest, identity in wanted.items() if digest not in found
        )
        if missing:
            found.update(_create_for(conn, ctx, missing, fields))
    return {identity: found[digest] for identity, digest in hashes.items() if digest in found}


def subject_by_ref(
    conn: Connection, ctx: Context, ref: str, *, follow: bool = True
) -> Subject | None:
    """The controller's subject with public id `ref`; with `follow`, merged ones give the survivor."""
    row = conn.execute(
        sa.select(*_COLUMNS).where(
            subjects.c.controller_id == ctx.controller_id, subjects.c.ref == ref
        )
    ).first()
    if row is None:
        return None
    subject = _subject(row)
    if follow and subject.merged:
        found = {"": subject}
        _follow_merges(conn, found)
        return found[""]
    return subject


def subjects_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, Subject]:
    """Subjects by primary key, read in batches of 1000 (merged ones as they are)."""
    result: dict[int, Subject] = {}
    for chunk in _chunks(sorted(set(ids)), BATCH):
        for row in conn.execute(sa.select(*_COLUMNS).where(subjects.c.id.in_(chunk))):
            result[int(row.id)] = _subject(row)
    return result


def raw_identities(
    conn: Connection, ctx: Context, subject: Subject, kind: IdentityKind | str | None = None
) -> list[Identity]:
    """The subject's identities whose raw value was kept, decrypted, oldest link first."""
    query = sa.select(
        identity_rows.c.kind,
        identity_rows.c.hash,
        identity_rows.c.ciphertext,
        identity_rows.c.key_id,
    ).where(
        identity_rows.c.controller_id == ctx.controller_id,
        identity_rows.c.subject_id == subject.id,
        identity_rows.c.ciphertext.is_not(None),
    )
    if kind is not None:
        query = query.where(identity_rows.c.kind == identity_kind(kind).value)
    result = []
    for row in conn.execute(query.order_by(identity_rows.c.id)):
        value = ctx.keyring.decrypt(
            row.key_id, row.ciphertext, context=_aad(ctx.controller_id, row.hash)
        )
        result.append(Identity(IdentityKind(row.kind), value))
    return result


# -- changing ------------------------------------------------------------------------------


def create(
    conn: Connection,
    ctx: Context,
    *,
    kind: str | None = None,
    jurisdiction: str | None = None,
    country: str | None = None,
    birth_date: date | None = None,
) -> Subject:
    """A new subject with no identity yet (link some with `link`)."""
    fields = _checked(
        {"kind": kind, "jurisdiction": jurisdiction, "country": country, "birth_date": birth_date}
    )
    [subject] = _insert_subjects(conn, ctx, [fields])
    ctx.audit(conn, [NewEvent("subject.created", subject=subject.audit_id(ctx.keyring))])
    return subject


def link(
    conn: Connection,
    ctx: Context,
    subject: Subject,
    identity: Identity,
    *,
    keep_raw: bool = False,
) -> None:
    """Make `identity` another name of `subject`; with `keep_raw`, keep its value encrypted.

    Linking an identity the subject already has changes nothing (except keeping its
    raw value, if asked and not kept yet). One that belongs to another subject raises
    IdentityConflict: merge the two subjects instead.
    """
    current = _current(conn, ctx, subject)
    digest = ctx.keyring.hash(identity)
    row = conn.execute(
        sa.select(identity_rows.c.id, identity_rows.c.subject_id, identity_rows.c.ciphertext).where(
            identity_rows.c.controller_id == ctx.controller_id, identity_rows.c.hash == digest
        )
    ).first()
    audit_id = current.audit_id(ctx.keyring)
    kind = identity.kind.value
    if row is not None:
        if int(row.subject_id) != current.id:
            raise IdentityConflict(
                f"this {kind} identity belongs to another subject; merge the two subjects instead"
            )
        if keep_raw and row.ciphertext is None:
            key_id, blob = _seal(ctx, digest, identity)
            conn.execute(
                sa.update(identity_rows)
                .where(identity_rows.c.id == row.id)
                .values(ciphertext=blob, key_id=key_id)
            )
            ctx.audit(conn, [NewEvent("subject.identity_kept", audit_id, {"kind": kind})])
        return
    key_id, blob = _seal(ctx, digest, identity) if keep_raw else (None, None)
    conn.execute(
        sa.insert(identity_rows).values(
            controller_id=ctx.controller_id,
            subject_id=current.id,
            kind=kind,
            hash=digest,
            ciphertext=blob,
            key_id=key_id,
            created_at=_now(),
        )
    )
    ctx.audit(
        conn,
        [NewEvent("subject.identity_linked", audit_id, {"kind": kind, "raw_kept": keep_raw})],
    )


def merge(conn: Connection, ctx: Context, survivor: Subject, other: Subject) -> Subject:
    """Fold `other` into `survivor`: its identities move, it points to the survivor.

    Subjects already merged into `other` now point to the survivor too, and fields the
    survivor lacks (kind, jurisdiction, country, birth date) are taken from `other`.
    Returns the survivor as it now is. Consent and other capabilities' rows are theirs
    to move, in the same transaction.
    """
    if survivor.id == other.id:
        raise SubjectError("cannot merge a subject into itself")
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .where(
            subjects.c.controller_id == ctx.controller_id,
            subjects.c.id.in_([survivor.id, other.id]),
        )
        .order_by(subjects.c.id)
        .with_for_update()
    ).all()
    by_id = {int(row.id): _subject(row) for row in rows}
    for given in (survivor, other):
        if given.id not in by_id:
            raise SubjectError(f"no subject {given.ref} for this controller")
        if by_id[given.id].merged:
            raise SubjectError(
                f"subject {given.ref} was already merged into another subject; "
                "use the surviving subject"
            )
    keep, gone = by_id[survivor.id], by_id[other.id]
    moved = conn.execute(
        sa.update(identity_rows)
        .where(
            identity_rows.c.controller_id == ctx.controller_id,
            identity_rows.c.subject_id == gone.id,
        )
        .values(subject_id=keep.id)
    ).rowcount
    conn.execute(
        sa.update(subjects)
        .where(subjects.c.controller_id == ctx.controller_id, subjects.c.merged_into == gone.id)
        .values(merged_into=keep.id)
    )
    conn.execute(sa.update(subjects).where(subjects.c.id == gone.id).values(merged_into=keep.id))
    filled = {
        name: getattr(gone, name)
        for name in _FIELDS
        if getattr(keep, name) is None and getattr(gone, name) is not None
    }
    if filled:
        conn.execute(sa.update(subjects).where(subjects.c.id == keep.id).values(**filled))
    data: dict[str, Any] = {"merged": gone.audit_id(ctx.keyring), "identities": moved}
    if filled:
        data["filled"] = sorted(filled)
    ctx.audit(conn, [NewEvent("subject.merged", keep.audit_id(ctx.keyring), data)])
    return replace(keep, **filled)


def update(
    conn: Connection,
    ctx: Context,
    subject: Subject,
    *,
    kind: str | Unset | None = UNSET,
    jurisdiction: str | Unset | None = UNSET,
    country: str | Unset | None = UNSET,
    birth_date: date | Unset | None = UNSET,
) -> Subject:
    """Set the given fields (None clears one); returns the subject as it now is.

    The `subject.updated` event names the fields that changed, never their values.
    """
    given = {
        name: value
        for name, value in (
            ("kind", kind),
            ("jurisdiction", jurisdiction),
            ("country", country),
            ("birth_date", birth_date),
        )
        if value is not UNSET
    }
    checked = _checked(given)
    current = _current(conn, ctx, subject)
    changed = {name: value for name, value in checked.items() if getattr(current, name) != value}
    if not changed:
        return current
    conn.execute(sa.update(subjects).where(subjects.c.id == current.id).values(**changed))
    ctx.audit(
        conn,
        [NewEvent("subject.updated", current.audit_id(ctx.keyring), {"fields": sorted(changed)})],
    )
    return replace(current, **changed)


def rotate(conn: Connection, ctx: Context, batch: int = ROTATE_BATCH) -> int:
    """Re-encrypt every kept value not sealed with the current key; returns how many.

    Reads and rewrites `batch` rows at a time. Afterwards the older keys can be retired
    (`Keyring.without`). Writes a `keyring.rotated` event.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    keyring = ctx.keyring
    current = keyring.current_key_id
    count, last_id = 0, 0
    statement = (
        sa.update(identity_rows)
        .where(identity_rows.c.id == sa.bindparam("row_id"))
        .values(ciphertext=sa.bindparam("new_ciphertext"), key_id=sa.bindparam("new_key_id"))
    )
    while True:
        rows = conn.execute(
            sa.select(
                identity_rows.c.id,
                identity_rows.c.hash,
                identity_rows.c.key_id,
                identity_rows.c.ciphertext,
            )
            .where(
                identity_rows.c.controller_id == ctx.controller_id,
                identity_rows.c.ciphertext.is_not(None),
                identity_rows.c.key_id != current,
                identity_rows.c.id > last_id,
            )
            .order_by(identity_rows.c.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        params = []
        for row in rows:
            aad = _aad(ctx.controller_id, row.hash)
            plain = keyring.decrypt(row.key_id, row.ciphertext, context=aad)
            key_id, blob = keyring.encrypt(plain, context=aad)
            params.append({"row_id": row.id, "new_ciphertext": blob, "new_key_id": key_id})
        conn.execute(statement, params)
        count += len(rows)
        last_id = int(rows[-1].id)
    ctx.audit(conn, [NewEvent("keyring.rotated", data={"reencrypted": count, "key": current})])
    return count


# -- the facade ----------------------------------------------------------------------------


class Subjects:
    """A controller's subjects in a store, one transaction per call.

    `Subjects(store, "acme", "Acme Ltd", load_keyring())`. The controller is created if
    new and the keyring checked against the store on first use. Identities may be given
    as `Identity` or as text like "email:ada@example.com".
    """

    def __init__(
        self, store: Store, controller_key: str, controller_name: str, keyring: Keyring
    ) -> None:
        self.store = store
        self.controller_key = controller_key
        self.controller_name = controller_name
        self.keyring = keyring
        self._context: Context | None = None

    def context(self) -> Context:
        """The context for the registry functions, inside a caller's own transaction."""
        if self._context is None:
            controller_id = self.store.ensure_controller(self.controller_key, self.controller_name)
            context = Context(controller_id, self.controller_key, self.keyring)
            self.store.write(lambda conn: check_keyring(conn, context))
            self._context = context
        return self._context

    def _write(self, work: Callable[[Connection, Context], T], *, writes: bool = True) -> T:
        context = self.context()

        def locked(conn: Connection) -> T:
            if writes:
                # Head lock first: the same lock order as every other writer (see lock_head).
                lock_head(conn, context.controller_id)
            return work(conn, context)

        return self.store.write(locked)

    def find(self, identity: Identity | str) -> Subject | None:
        """The subject known by `identity`, or None."""
        parsed = _identity(identity)
        return self._write(lambda conn, ctx: find(conn, ctx, parsed), writes=False)

    def resolve(
        self,
        identities: Iterable[Identity | str],
        *,
        create: bool,
        kind: str | None = None,
        jurisdiction: str | None = None,
        country: str | None = None,
    ) -> dict[Identity, Subject]:
        """The subject of each identity; with `create`, new subjects for unknown ones."""
        parsed = [_identity(i) for i in identities]
        return self._write(
            lambda conn, ctx: resolve_many(
                conn,
                ctx,
                parsed,
                create=create,
                kind=kind,
                jurisdiction=jurisdiction,
                country=country,
            ),
            writes=create,
        )

    def create(
        self,
        *,
        kind: str | None = None,
        jurisdiction: str | None = None,
        country: str | None = None,
        birth_date: date | None = None,
    ) -> Subject:
        """A new subject with no identities yet."""
        return self._write(
            lambda conn, ctx: create(
                conn,
                ctx,
                kind=kind,
                jurisdiction=jurisdiction,
                country=country,
                birth_date=birth_date,
            )
        )

    def by_ref(self, ref: str, *, follow: bool = True) -> Subject | None:
        """The subject with public id `ref` (the survivor if it was merged), or None."""
        return self._write(
            lambda conn, ctx: subject_by_ref(conn, ctx, ref, follow=follow), writes=False
        )

    def link(self, subject: Subject, identity: Identity | str, *, keep_raw: bool = False) -> None:
        """Add an identity to `subject`; IdentityConflict if it is another subject's."""
        parsed = _identity(identity)
        self._write(lambda conn, ctx: link(conn, ctx, subject, parsed, keep_raw=keep_raw))

    def merge(self, survivor: Subject, other: Subject) -> Subject:
        """Fold `other` into `survivor`; returns the survivor as it now is."""
        return self._write(lambda conn, ctx: merge(conn, ctx, survivor, other))

    def update(
        self,
        subject: Subject,
        *,
        kind: str | Unset | None = UNSET,
        jurisdiction: str | Unset | None = UNSET,
        country: str | Unset | None = UNSET,
        birth_date: date | Unset | None = UNSET,
    ) -> Subject:
        """Set the given fields; returns the subject as it now is."""
        return self._write(
            lambda conn, ctx: update(
                conn,
                ctx,
                subject,
                kind=kind,
                jurisdiction=jurisdiction,
                country=country,
                birth_date=birth_date,
            )
        )

    def raw_identities(
        self, subject: Subject, kind: IdentityKind | str | None = None
    ) -> list[Identity]:
        """The identities of `subject` whose raw value was kept, decrypted."""
        return self._write(lambda conn, ctx: raw_identities(conn, ctx, subject, kind), writes=False)

    def rotate(self, batch: int = ROTATE_BATCH) -> int:
        """Re-encrypt every kept value with the current key; returns how many."""
        return self._write(lambda conn, ctx: rotate(conn, ctx, batch))


# -- helpers -------------------------------------------------------------------------------


def _identity(identity: Identity | str) -> Identity:
    return identity if isinstance(identity, Identity) else Identity.parse(identity)


def _create_for(
    conn: Connection,
    ctx: Context,
    missing: list[tuple[str, Identity]],
    fields: dict[str, Any],
) -> dict[str, Subject]:
    """One new subject per (hash, identity), its identity row, and its creation event."""
    created = _insert_subjects(conn, ctx, [fields] * len(missing))
    now = _now()
    for start in range(0, len(missing), BATCH):
        conn.execute(
            sa.insert(identity_rows),
            [
                {
                    "controller_id": ctx.controller_id,
                    "subject_id": subject.id,
                    "kind": identity.kind.value,
                    "hash": digest,
                    "ciphertext": None,
                    "key_id": None,
                    "created_at": now,
                }
                for (digest, identity), subject in zip(
                    missing[start : start + BATCH], created[start : start + BATCH], strict=True
                )
            ],
        )
    ctx.audit(
        conn,
        [
            NewEvent(
                "subject.created",
                subject.audit_id(ctx.keyring),
                {"identity": identity.kind.value},
            )
            for (_, identity), subject in zip(missing, created, strict=True)
        ],
    )
    return {digest: subject for (digest, _), subject in zip(missing, created, strict=True)}


def _insert_subjects(conn: Connection, ctx: Context, rows: list[dict[str, Any]]) -> list[Subject]:
    """Insert subjects in bulk; returns them in the order given."""
    now = _now()
    params = [
        {
            "controller_id": ctx.controller_id,
            "ref": uuid.uuid4().hex,
            "kind": row.get("kind"),
            "jurisdiction": row.get("jurisdiction"),
            "country": row.get("country"),
            "birth_date": row.get("birth_date"),
            "merged_into": None,
            "created_at": now,
        }
        for row in rows
    ]
    by_ref: dict[str, Subject] = {}
    for start in range(0, len(params), BATCH):
        page = params[start : start + BATCH]
        if conn.dialect.insert_executemany_returning:
            # One multi-row INSERT … RETURNING per page (SQLAlchemy's insertmanyvalues).
            result = conn.execute(sa.insert(subjects).returning(*_COLUMNS), page)
        else:
            conn.execute(sa.insert(subjects), page)
            refs = [p["ref"] for p in page]
            result = conn.execute(sa.select(*_COLUMNS).where(subjects.c.ref.in_(refs)))
        for row in result:
            by_ref[row.ref] = _subject(row)
    return [by_ref[p["ref"]] for p in params]


def _current(conn: Connection, ctx: Context, subject: Subject) -> Subject:
    """The subject's row as it is now; refuses one that is gone or merged."""
    row = conn.execute(
        sa.select(*_COLUMNS).where(
            subjects.c.controller_id == ctx.controller_id, subjects.c.id == subject.id
        )
    ).first()
    if row is None:
        raise SubjectError(f"no subject {subject.ref} for this controller")
    current = _subject(row)
    if current.merged:
        raise SubjectError(
            f"subject {subject.ref} was merged into another subject; use the surviving subject"
        )
    return current


_PG_RESOLVE = (
    "SELECT i.hash, s.id, s.ref, s.kind, s.jurisdiction, s.country, s.birth_date,"
    " s.merged_into FROM unnest(%s::text[]) AS w(hash)"
    " JOIN identities i ON i.controller_id = %s AND i.hash = w.hash"
    " JOIN subjects s ON s.id = i.subject_id"
)


def _follow_merges(conn: Connection, found: dict[str, Subject]) -> None:
    """Replace merged subjects in `found` by their survivors, in place (batched)."""
    for _ in range(_MAX_HOPS):
        pending = {s.merged_into for s in found.values() if s.merged_into is not None}
        if not pending:
            return
        survivors = subjects_by_id(conn, pending)
        for key, subject in found.items():
            if subject.merged_into is not None and subject.merged_into in survivors:
                found[key] = survivors[subject.merged_into]
    raise SubjectError("subjects are merged into each other in a cycle; the store is inconsistent")


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate subject fields; messages don't repeat a country or birth date."""
    result = dict(fields)
    if "kind" in fields and fields["kind"] is not None:
        kind = fields["kind"]
        if not isinstance(kind, str) or not kind.strip() or len(kind.strip()) > 100:
            raise SubjectError(
                "a subject kind must be a name of 1 to 100 characters, e.g. customer"
            )
        result["kind"] = kind.strip()
    if "jurisdiction" in fields and fields["jurisdiction"] is not None:
        value = fields["jurisdiction"]
        key = value.strip().lower() if isinstance(value, str) else ""
        try:
            result["jurisdiction"] = get_jurisdiction(key).key
        except ValueError:
            raise SubjectError(
                f"a subject's jurisdiction must be one of {', '.join(JURISDICTIONS)}"
            ) from None
    if "country" in fields and fields["country"] is not None:
        value = fields["country"]
        code = value.strip().upper() if isinstance(value, str) else ""
        if code not in COUNTRIES:
            raise SubjectError(
                "a subject's country must be a two-letter ISO 3166-1 code such as DE "
                "(the United Kingdom is GB)"
            )
        result["country"] = code
    if "birth_date" in fields and fields["birth_date"] is not None:
        value = fields["birth_date"]
        if isinstance(value, datetime) or not isinstance(value, date):
            raise SubjectError("a birth date must be a date (datetime.date), not a timestamp")
        if value > datetime.now(UTC).date():
            raise SubjectError("a birth date can't be in the future")
        if value.year < 1850:
            raise SubjectError("a birth date must be after 1850")
    return result


def _seal(ctx: Context, digest: str, identity: Identity) -> tuple[str, bytes]:
    return ctx.keyring.encrypt(identity.value, context=_aad(ctx.controller_id, digest))


def _aad(controller_id: int, digest: str) -> bytes:
    """What a kept value is bound to: its controller and identity hash (its row)."""
    return f"{controller_id}:{digest}".encode()


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(UTC)
