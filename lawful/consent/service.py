"""The consent capability of an engine: record choices, read them back, decide.

`Consent` binds the policy, the store and the keyring. Every write is one transaction
that appends to the ledger, moves the current state and writes the audit events;
decisions read the current state, kept warm in a bounded in-process cache that this
object's own writes invalidate at once and other processes' writes within `cache_ttl`
seconds (0 reads the store on every decision).
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit.log import NewEvent, lock_head
from lawful.audit.log import append as append_events
from lawful.consent import checks, ledger
from lawful.consent.batch import BatchDecider
from lawful.consent.checks import ConsentError
from lawful.consent.decide import (
    MARKETING_OBJECTION,
    NO_SIGNALS,
    UNKNOWN_SUBJECT,
    Decider,
    Decision,
    Signals,
    SubjectState,
    UnknownName,
)
from lawful.consent.ledger import NewChoice
from lawful.consent.receipt import receipt as build_receipt
from lawful.consent.records import ConsentRecord, Status, Topic
from lawful.consent.unsubscribe import UnsubscribeScope, headers_for, read_token
from lawful.policy import Policy
from lawful.policy.vocabulary import unknown
from lawful.store import PolicyVersion, Store
from lawful.store.tables import policy_versions
from lawful.subjects import Identity, Keyring, Subject, registry

T = TypeVar("T")
SubjectLike = str | Identity | Subject

DecisionAudit = Literal["all", "refusals", "sample", "off"]


@dataclass(frozen=True)
class DecisionLogging:
    """Which decisions write an audit event.

    `all` records every decision, `refusals` every refusal, `sample` a random
    `rate` of them, `off` none. Decision events are written in batches of `batch`
    (and on `flush()` / close): a crash loses at most one unwritten batch of decision
    events, never a consent record or its event.
    """

    mode: DecisionAudit = "sample"
    rate: float = 0.01
    batch: int = 500

    def __post_init__(self) -> None:
        if self.mode not in ("all", "refusals", "sample", "off"):
            raise ValueError(
                f"decision audit mode must be all, refusals, sample or off, not {self.mode!r}"
            )
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(
                f"decision events are written in batches of 1 or more, not {self.batch!r}"
            )
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"the decision sample rate must be between 0 and 1, not {self.rate}")


class Consent:
    """Consent, preferences and decisions for one controller."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        version: PolicyVersion,
        keyring: Keyring,
        *,
        decision_logging: DecisionLogging | None = None,
        cache_ttl: float = 5.0,
        cache_size: int = 100_000,
    ) -> None:
        self.store = store
        self.policy = policy
        self.version = version
        self.keyring = keyring
        self.key = policy.key
        self.controller_id = store.ensure_controller(policy.key, policy.controller.name)
        self.context = registry.Context(self.controller_id, self.key, keyring)
        store.write(lambda conn: registry.check_keyring(conn, self.context))
        self.decider = Decider(policy, self._renewals())
        self.logging = decision_logging or DecisionLogging()
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._cache: dict[object, tuple[float, SubjectState]] = {}
        self._pending: list[NewEvent] = []
        self._lock = threading.Lock()
        self._random = random.Random()
        self._token_key: bytes | None = None

    # -- subjects ----------------------------------------------------------------------

    def _identity(self, subject: str | Identity) -> Identity:
        return subject if isinstance(subject, Identity) else Identity.parse(subject)

    def subject(self, subject: SubjectLike, *, create: bool = False) -> Subject | None:
        """The subject an identity (or ref) names; with `create`, made when unknown."""
        return self._write(lambda conn: self._subject(conn, subject, create=create))

    def _subject(self, conn: Connection, subject: SubjectLike, *, create: bool) -> Subject | None:
        if isinstance(subject, Subject):
            return subject
        identity = self._identity(subject)
        found = registry.resolve_many(conn, self.context, [identity], create=create)
        return found.get(identity)

    def _write(self, work: Callable[[Connection], T]) -> T:
        """One retried transaction that takes the audit chain's head lock first.

        Every change here writes events; taking the head lock before any other row
        keeps all writers' lock order the same, so concurrent writers queue instead of
        deadlocking (a new subject's creation event and a known subject's state).
        """

        def locked(conn: Connection) -> T:
            lock_head(conn, self.controller_id)
            return work(conn)

        return self.store.write(locked)

    def set_subject(
        self,
        subject: SubjectLike,
        *,
        kind: str | None = None,
        jurisdiction: str | None = None,
        country: str | None = None,
        birth_date: date | None = None,
    ) -> Subject:
        """Record what decisions need to know about a subject (only the fields given)."""
        if kind is not None and kind not in self.policy.subjects:
            raise ConsentError(unknown(kind, "a subject kind of the policy", self.policy.subjects))
        if jurisdiction is not None:
            self.decider.check_jurisdiction(jurisdiction)
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "kind": kind,
                "jurisdiction": jurisdiction,
                "country": country,
                "birth_date": birth_date,
            }.items()
            if v is not None
        }

        def work(conn: Connection) -> Subject:
            found = self._subject(conn, subject, create=True)
            assert found is not None
            return registry.update(conn, self.context, found, **changes)

        updated = self._write(work)
        self._forget()
        return updated

    def link(
        self, subject: SubjectLike, identity: str | Identity, *, keep_raw: bool = False
    ) -> Subject:
        """Make `identity` another name of the subject (audited)."""

        def work(conn: Connection) -> Subject:
            found = self._subject(conn, subject, create=True)
            assert found is not None
            registry.link(conn, self.context, found, self._identity(identity), keep_raw=keep_raw)
            return found

        linked = self._write(work)
        self._forget()
        return linked

    def merge(self, survivor: SubjectLike, other: SubjectLike) -> Subject:
        """Fold `other` into `survivor`: identities and current choices move (the newer
        choice wins), the ledger keeps each record as it was made; audited."""

        def work(conn: Connection) -> Subject:
            keep = self._subject(conn, survivor, create=False)
            gone = self._subject(conn, other, create=False)
            if keep is None or gone is None:
                raise ConsentError("both subjects must be known to merge them")
            merged = registry.merge(conn, self.context, keep, gone)
            ledger.move_state(conn, keep.id, gone.id)
            return merged

        merged = self._write(work)
        self._forget()
        return merged

    # -- writing choices ---------------------------------------------------------------

    def give(
        self,
        subject: SubjectLike,
        purpose: str,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        method: str = "api",
        at: datetime | None = None,
        expires_at: datetime | None = None,
        notice_hash: str | None = None,
        notice_text: str | None = None,
        language: str | None = None,
        jurisdiction: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        parent: str | Identity | None = None,
    ) -> ConsentRecord:
        """Record consent given to a purpose (or to one channel or list of it).

        Consent given again after it expired or was invalidated is recorded as
        `renewed`. A parent consenting for a child passes `parent` (their identity)
        and the method becomes `parent`.
        """
        scope = checks.scope(self.policy, purpose, channel, list_name)
        checks.consent_purpose(self.policy, purpose)
        if jurisdiction is not None:
            self.decider.check_jurisdiction(jurisdiction)
        at = at or datetime.now(UTC)
        spec = self.policy.purposes[purpose].consent
        if expires_at is None and spec is not None and spec.expires is not None:
            expires_at = spec.expires.add_to(at)  # type: ignore[assignment]
        return self._one(
            subject,
            Topic.consent,
            purpose,
            scope,
            Status.given,
            method="parent" if parent is not None else method,
            at=at,
            expires_at=expires_at,
            notice_hash=checks.notice_hash(notice_hash, notice_text),
            language=language,
            jurisdiction=jurisdiction,
            evidence=checks.evidence(self.policy, purpose, evidence),
            parent=parent,
        )

    def withdraw(
        self,
        subject: SubjectLike,
        purpose: str,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        """Record consent withdrawn; the history stays, the purpose stops."""
        scope = checks.scope(self.policy, purpose, channel, list_name)
        checks.consent_purpose(self.policy, purpose)
        return self._one(
            subject, Topic.consent, purpose, scope, Status.withdrawn, method=method, at=at
        )

    def refuse(
        self, subject: SubjectLike, purpose: str, *, method: str = "api", at: datetime | None = None
    ) -> ConsentRecord:
        """Record that consent was asked for and refused."""
        checks.consent_purpose(self.policy, purpose)
        return self._one(subject, Topic.consent, purpose, "", Status.refused, method=method, at=at)

    def request(
        self, subject: SubjectLike, purpose: str, *, method: str = "api", at: datetime | None = None
    ) -> ConsentRecord:
        """Record that consent was asked for (no answer yet)."""
        checks.consent_purpose(self.policy, purpose)
        return self._one(
            subject, Topic.consent, purpose, "", Status.requested, method=method, at=at
        )

    def unsubscribe(
        self,
        subject: SubjectLike,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        method: str = "email_link",
        at: datetime | None = None,
    ) -> ConsentRecord:
        """Stop marketing by one channel, from one list, or (`list_name="*"`) from every list."""
        topic, key = checks.preference_target(self.policy, channel, list_name)
        return self._one(subject, topic, key, "", Status.withdrawn, method=method, at=at)

    def resubscribe(
        self,
        subject: SubjectLike,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        topic, key = checks.preference_target(self.policy, channel, list_name)
        return self._one(subject, topic, key, "", Status.given, method=method, at=at)

    def unsubscribe_headers(
        self,
        subject: SubjectLike,
        *,
        base_url: str,
        list_name: str | None = None,
        channel: str | None = None,
        mailto: str | None = None,
    ) -> dict[str, str]:
        """The `List-Unsubscribe` (and, when the policy offers one-click, RFC 8058
        `List-Unsubscribe-Post`) header values for one marketing message to `subject`.

        The link leaves `list_name`, or `channel`, or (neither given) all direct
        marketing. Its token names the subject by their opaque ref, never an address.
        """
        if list_name is not None:
            checks.preference_target(self.policy, None, list_name)
        if channel is not None:
            checks.preference_target(self.policy, channel, None)
        if list_name is not None and channel is not None:
            raise ConsentError("an unsubscribe link leaves a list or a channel, not both")
        found = self.subject(subject, create=True)
        assert found is not None
        scope = (
            UnsubscribeScope.of_list(list_name)
            if list_name is not None
            else UnsubscribeScope.of_channel(channel)
            if channel is not None
            else UnsubscribeScope.everything()
        )
        headers = headers_for(
            self._unsubscribe_key(),
            controller=self.key,
            subject_ref=found.ref,
            scope=scope,
            base_url=base_url,
            mailto=mailto or self.policy.marketing.unsubscribe.email,
        )
        if not self.policy.marketing.unsubscribe.one_click:
            headers.pop("List-Unsubscribe-Post")
        return headers

    def unsubscribe_by_token(
        self, token: str, *, max_age: timedelta | None = None, method: str = "email_link"
    ) -> ConsentRecord:
        """Apply the token of an unsubscribe link or one-click POST (no sign-in needed).

        Raises UnsubscribeTokenError for an altered, foreign or expired token. Using a
        link twice records the choice again, which changes nothing.
        """
        request = read_token(self._unsubscribe_key(), token, controller=self.key, max_age=max_age)
        with self.store.engine.connect() as conn:
            found = registry.subject_by_ref(conn, self.context, request.subject_ref)
        if found is None:
            raise ConsentError("the subject of this unsubscribe link is no longer known")
        scope = request.scope
        if scope.kind == "list":
            return self.unsubscribe(found, list_name=scope.name, method=method)
        if scope.kind == "channel":
            return self.unsubscribe(found, channel=str(scope.channel), method=method)
        return self.object(found, method=method)

    def _unsubscribe_key(self) -> bytes:
        if self._token_key is None:
            self._token_key = self.keyring.derive("lawful unsubscribe tokens")
        return self._token_key

    def set_cookies(
        self,
        subject: SubjectLike,
        choices: Mapping[str, bool],
        *,
        method: str = "banner",
        at: datetime | None = None,
    ) -> list[ConsentRecord]:
        """Record cookie choices per category; strictly necessary cookies cannot be refused."""
        for category, accepted in choices.items():
            declared = self.policy.cookies.get(category)
            if declared is None:
                raise ConsentError(
                    unknown(category, "a cookie category of the policy", self.policy.cookies)
                )
            if not declared.optional and not accepted:
                raise ConsentError(
                    f"'{category}' cookies are strictly necessary: they are always on and cannot be refused"
                )
        items = [
            (Topic.cookie, c, "", Status.given if ok else Status.refused)
            for c, ok in choices.items()
            if self.policy.cookies[c].optional
        ]
        return self._many(subject, items, method=method, at=at)

    def opt_out(
        self,
        subject: SubjectLike,
        kind: str = "sale",
        *,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        """Opt out of `sale`, `share`, `targeted_advertising` or `ad_tracking`."""
        return self._one(
            subject,
            Topic.opt_out,
            checks.opt_out_kind(self.policy, kind),
            "",
            Status.withdrawn,
            method=method,
            at=at,
        )

    def opt_in(
        self,
        subject: SubjectLike,
        kind: str = "sale",
        *,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        return self._one(
            subject,
            Topic.opt_out,
            checks.opt_out_kind(self.policy, kind),
            "",
            Status.given,
            method=method,
            at=at,
        )

    def object(
        self,
        subject: SubjectLike,
        purpose: str | None = None,
        *,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        """Object to a purpose (GDPR Art. 21), or with no purpose to all direct marketing."""
        key = MARKETING_OBJECTION if purpose is None else purpose
        if purpose is not None:
            self.decider.rule(purpose)
        return self._one(subject, Topic.objection, key, "", Status.withdrawn, method=method, at=at)

    def withdraw_objection(
        self,
        subject: SubjectLike,
        purpose: str | None = None,
        *,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        key = MARKETING_OBJECTION if purpose is None else purpose
        if purpose is not None:
            self.decider.rule(purpose)
        return self._one(subject, Topic.objection, key, "", Status.given, method=method, at=at)

    def restrict(
        self, subject: SubjectLike, *, method: str = "api", at: datetime | None = None
    ) -> ConsentRecord:
        """Restrict processing (GDPR Art. 18): only storage and legal claims go on."""
        return self._one(
            subject, Topic.restriction, "*", "", Status.withdrawn, method=method, at=at
        )

    def lift_restriction(
        self, subject: SubjectLike, *, method: str = "api", at: datetime | None = None
    ) -> ConsentRecord:
        return self._one(subject, Topic.restriction, "*", "", Status.given, method=method, at=at)

    def restrict_recipient(
        self,
        subject: SubjectLike,
        recipient: str,
        *,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        """The subject asks that their data not go to this recipient (Selro)."""
        checks.recipient(self.policy, recipient)
        return self._one(
            subject, Topic.recipient, recipient, "", Status.withdrawn, method=method, at=at
        )

    def allow_recipient(
        self,
        subject: SubjectLike,
        recipient: str,
        *,
        method: str = "api",
        at: datetime | None = None,
    ) -> ConsentRecord:
        checks.recipient(self.policy, recipient)
        return self._one(
            subject, Topic.recipient, recipient, "", Status.given, method=method, at=at
        )

    def parental_consent(
        self,
        child: SubjectLike,
        parent: str | Identity,
        *,
        withdraw: bool = False,
        method: str = "parent",
        at: datetime | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> ConsentRecord:
        """A parent's consent for a child under the minimum age to use the service."""
        return self._one(
            child,
            Topic.parental,
            "*",
            "",
            Status.withdrawn if withdraw else Status.given,
            method=method,
            at=at,
            parent=parent,
            evidence=checks.evidence(self.policy, None, evidence),
        )

    def apply_signals(
        self, subject: SubjectLike, signals: Signals, *, jurisdiction: str | None = None
    ) -> list[ConsentRecord]:
        """Make a browser's Global Privacy Control a lasting opt-out for a known subject.

        Under the CCPA regulations (11 CCR §7025(c)) an opt-out preference signal from
        a consumer the business knows applies to that consumer, not only the browser.
        Nothing is recorded when the policy and the subject's law ignore GPC.
        """
        if not signals.gpc:
            return []
        state = self.state(subject)
        j = jurisdiction or state.jurisdiction or self.decider.default_jurisdiction
        if not (
            self.decider.gpc_everywhere
            or (j is not None and self.decider.gpc_required.get(j, False))
        ):
            return []
        items = [
            (Topic.opt_out, k, "", Status.withdrawn)
            for k in ("sale", "share", "targeted_advertising")
        ]
        return self._many(subject, items, method="signal")

    def record_many(self, choices: Iterable[ChoiceInput]) -> list[ConsentRecord]:
        """Record many choices in one transaction (imports, batch jobs): set-based."""
        items = list(choices)
        for item in items:
            self._validate(item)
        named = [
            s if isinstance(s, Subject) else self._identity(s) for s in (i.subject for i in items)
        ]

        def work(conn: Connection) -> list[ConsentRecord]:
            found = registry.resolve_many(
                conn, self.context, [s for s in named if isinstance(s, Identity)], create=True
            )
            new = [
                self._new_choice(s if isinstance(s, Subject) else found[s], item)
                for s, item in zip(named, items, strict=True)
            ]
            return ledger.append_choices(conn, self.controller_id, self.key, new)

        records = self._write(work)
        self._forget()
        return records

    # -- reading -----------------------------------------------------------------------

    def state(self, subject: SubjectLike) -> SubjectState:
        """The subject's current choices (an empty state for an unknown identity)."""
        with self.store.engine.connect() as conn:
            return self._load_state(conn, subject)

    def history(self, subject: SubjectLike) -> list[ConsentRecord]:
        """Every ledger record of the subject, oldest first (merged subjects included)."""
        with self.store.engine.connect() as conn:
            found = self._subject(conn, subject, create=False)
            if found is None:
                return []
            refs = ledger.merged_refs(conn, found.id, found.ref)
            return ledger.history(conn, self.controller_id, list(refs), refs)

    def record(self, ref: str) -> ConsentRecord:
        with self.store.engine.connect() as conn:
            found = ledger.record_by_ref(conn, self.controller_id, ref)
        if found is None:
            raise ConsentError(f"no consent record '{ref}' for controller '{self.key}'")
        return found[0]

    def receipt(self, ref: str) -> dict[str, Any]:
        """An ISO/IEC TS 27560 consent record, as JSON-ready data, for one ledger record."""
        record = self.record(ref)
        versions = {v.number: v for v in self.store.policy_versions(self.key)}
        return build_receipt(
            record, self.policy, versions.get(record.policy_version or -1), versions
        )

    # -- deciding ----------------------------------------------------------------------

    def decide(
        self,
        subject: SubjectLike,
        purpose: str,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        jurisdiction: str | None = None,
        recipient: str | None = None,
        signals: Signals | Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> Decision:
        """May `purpose` use this subject's data now? The answer carries its reason."""
        state = self._cached_state(subject)
        if signals is None:
            signals = NO_SIGNALS
        elif not isinstance(signals, Signals):
            signals = Signals.from_headers(signals)
        if jurisdiction is not None and jurisdiction not in self.decider.gpc_required:
            self.decider.check_jurisdiction(jurisdiction)
        decision = self.decider.decide(
            state,
            purpose,
            channel=channel,
            list_name=list_name,
            jurisdiction=jurisdiction,
            recipient=recipient,
            signals=signals,
            now=now,
        )
        if self.logging.mode != "off":
            self._log_decision(state.ref, decision)
        return decision

    def decide_many(
        self,
        subjects: Sequence[SubjectLike],
        purpose: str,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        jurisdiction: str | None = None,
        recipient: str | None = None,
        signals: Signals | None = None,
        now: datetime | None = None,
    ) -> list[Decision]:
        """Decisions for many subjects at once (a marketing send): set-based reads.

        The identities are hashed and the choices a decision about `purpose` needs are
        read in one query per batch of 1000 subjects (or one for a batch naming most of
        the controller's subjects), then decided in memory: once per distinct state
        (lawful.consent.batch), each the decision `decide` gives.
        """
        rule = self.decider.rule(purpose)
        if jurisdiction is not None:
            self.decider.check_jurisdiction(jurisdiction)
        now = now or datetime.now(UTC)
        topics = _topics_for(purpose, channel, list_name, recipient, rule.cookies)
        logged = self.logging.mode != "off"
        batch = BatchDecider(
            self.decider,
            purpose,
            channel=channel,
            list_name=list_name,
            jurisdiction=jurisdiction,
            recipient=recipient,
            signals=signals or NO_SIGNALS,
            now=now,
        )
        with _collector_paused(), self.store.engine.connect() as conn:
            keys, rows = self._state_rows(conn, subjects, topics, who=logged)
            decisions = batch.decide_rows(keys, rows, ledger.RowValues.of(conn))
            by_key = {row[0]: row[ledger.REF] for row in rows} if logged else {}
            refs = [by_key.get(key) for key in keys] if logged else []
            # Drop the rows before the collector resumes: it would otherwise scan them all.
            del keys, rows, by_key
        if logged:
            for ref, decision in zip(refs, decisions, strict=True):
                self._log_decision(ref, decision)
            self.flush()
        return decisions

    def flush(self) -> None:
        """Write buffered decision events now."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            self._write(lambda conn: append_events(conn, self.controller_id, self.key, pending))

    def close(self) -> None:
        self.flush()

    def refresh(self, version: PolicyVersion | None = None) -> None:
        """Reread which purposes need renewed consent (after a new policy version)."""
        if version is not None:
            self.version = version
        self.decider.set_renewals(self._renewals())
        self._forget()

    # -- internals ---------------------------------------------------------------------

    def _renewals(self) -> dict[str, int]:
        renew_from: dict[str, int] = {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(policy_versions.c.number, policy_versions.c.renew_consent).where(
                    policy_versions.c.controller_id == self.controller_id,
                    policy_versions.c.renew_consent.is_not(None),
                )
            )
            for number, purposes in rows:
                for purpose in purposes or ():
                    renew_from[purpose] = max(renew_from.get(purpose, 0), number)
        return renew_from

    def _cached_state(self, subject: SubjectLike) -> SubjectState:
        key: object = subject.ref if isinstance(subject, Subject) else subject
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.cache_ttl:
            return hit[1]
        with self.store.engine.connect() as conn:
            state = self._load_state(conn, subject)
        if self.cache_ttl > 0:
            if len(self._cache) >= self.cache_size:
                # Drop the oldest tenth: dicts keep insertion order.
                for old in list(self._cache)[: max(1, self.cache_size // 10)]:
                    self._cache.pop(old, None)
            self._cache[key] = (now, state)
        return state

    def _forget(self) -> None:
        self._cache.clear()

    def _load_state(self, conn: Connection, subject: SubjectLike) -> SubjectState:
        found = self._subject(conn, subject, create=False)
        if found is None:
            return UNKNOWN_SUBJECT
        return ledger.load_states(conn, self.controller_id, [found.id]).get(
            found.id, UNKNOWN_SUBJECT
        )

    def _state_rows(
        self, conn: Connection, subjects: Sequence[SubjectLike], topics: ledger.Topics, *, who: bool
    ) -> tuple[list[Any], Sequence[ledger.StateRow]]:
        """A key per subject, in order, and the state rows of those keys.

        Identities are keyed by their hash, Subjects by their id (ints and text: the two
        never clash); a key without rows names nobody known.
        """
        named = [s for s in subjects if not isinstance(s, Subject)]
        hashes, rows = ledger.hash_and_read(
            conn, self.controller_id, named, self.keyring.hash_many, topics=topics, who=who
        )
        if len(named) == len(subjects):  # the common case: identities only
            return hashes, rows
        ids = [s.id for s in subjects if isinstance(s, Subject)]
        rows = [*rows, *ledger.state_rows(conn, self.controller_id, ids, topics=topics, who=who)]
        hashed = iter(hashes)
        return [s.id if isinstance(s, Subject) else next(hashed) for s in subjects], rows

    def _log_decision(self, ref: str | None, decision: Decision) -> None:
        mode = self.logging.mode
        if mode == "refusals" and decision.allowed:
            return
        if mode == "sample" and self._random.random() >= self.logging.rate:
            return
        event = NewEvent(
            "decision.allowed" if decision.allowed else "decision.refused",
            subject=self.keyring.subject_hash(ref) if ref else None,
            data={
                "purpose": decision.purpose,
                "rule": decision.rule,
                "jurisdiction": decision.jurisdiction,
                "signal": decision.signal,
            },
        )
        with self._lock:
            self._pending.append(event)
            full = len(self._pending) >= self.logging.batch
        if full:
            self.flush()

    def _one(
        self, subject: SubjectLike, topic: Topic, key: str, scope: str, state: Status, **kwargs: Any
    ) -> ConsentRecord:
        [record] = self._many(subject, [(topic, key, scope, state)], **kwargs)
        return record

    def _many(
        self,
        subject: SubjectLike,
        items: Sequence[tuple[Topic, str, str, Status]],
        *,
        method: str,
        at: datetime | None = None,
        parent: str | Identity | None = None,
        **fields: Any,
    ) -> list[ConsentRecord]:
        checks.method(method)
        at = at or datetime.now(UTC)
        if at.tzinfo is None:
            raise ConsentError(
                "give the time of a choice with its time zone, e.g. datetime.now(UTC)"
            )
        actor = self.keyring.hash(self._identity(parent)) if parent is not None else None

        def work(conn: Connection) -> list[ConsentRecord]:
            found = self._subject(conn, subject, create=True)
            assert found is not None
            renewing = [k for t, k, _, st in items if t is Topic.consent and st is Status.given]
            current = (
                ledger.load_states(
                    conn, self.controller_id, [found.id], topics=[("consent", renewing)]
                ).get(found.id, UNKNOWN_SUBJECT)
                if renewing
                else UNKNOWN_SUBJECT
            )
            new = [
                NewChoice(
                    subject_id=found.id,
                    subject_ref=found.ref,
                    audit_id=self.keyring.subject_hash(found.ref),
                    topic=topic,
                    key=key,
                    scope=scope,
                    state=_renewed(current, topic, key, scope, state, at, self.decider),
                    method=method,
                    at=at,
                    policy_version=self.version.number,
                    jurisdiction=fields.get("jurisdiction") or found.jurisdiction,
                    actor=actor,
                    **{k: v for k, v in fields.items() if k != "jurisdiction"},
                )
                for topic, key, scope, state in items
            ]
            return ledger.append_choices(conn, self.controller_id, self.key, new)

        records = self._write(work)
        self._forget()
        return records

    def _new_choice(self, subject: Subject, item: ChoiceInput) -> NewChoice:
        at = item.at or datetime.now(UTC)
        expires_at = item.expires_at
        if (
            item.topic is Topic.consent
            and item.state in (Status.given, Status.renewed)
            and expires_at is None
        ):
            spec = self.policy.purposes[item.key].consent
            if spec is not None and spec.expires is not None:
                expires_at = spec.expires.add_to(at)  # type: ignore[assignment]
        return NewChoice(
            subject_id=subject.id,
            subject_ref=subject.ref,
            audit_id=self.keyring.subject_hash(subject.ref),
            topic=item.topic,
            key=item.key,
            scope=item.scope,
            state=item.state,
            method=item.method,
            at=at,
            expires_at=expires_at,
            policy_version=item.policy_version
            if item.policy_version is not None
            else self.version.number,
            notice_hash=item.notice_hash,
            language=item.language,
            jurisdiction=item.jurisdiction or subject.jurisdiction,
            evidence=checks.evidence(
                self.policy, item.key if item.topic is Topic.consent else None, item.evidence
            ),
        )

    def _validate(self, item: ChoiceInput) -> None:
        checks.method(item.method)
        checks.notice_hash(item.notice_hash, None)
        if item.jurisdiction is not None:
            self.decider.check_jurisdiction(item.jurisdiction)
        for name, when in (("at", item.at), ("expires_at", item.expires_at)):
            if when is not None and (when.tzinfo is None or when.utcoffset() is None):
                raise ConsentError(
                    f"give {name} with its time zone, e.g. datetime.now(UTC); a time without "
                    "one means different instants on different machines"
                )
        if item.topic is Topic.consent:
            checks.consent_purpose(self.policy, item.key)
            if item.scope:
                channel, list_name = (
                    (None, item.scope[5:]) if item.scope.startswith("list:") else (item.scope, None)
                )
                checks.scope(self.policy, item.key, channel, list_name)
        elif item.topic is Topic.cookie:
            if item.key not in self.policy.cookies:
                raise ConsentError(
                    unknown(item.key, "a cookie category of the policy", self.policy.cookies)
                )
        elif item.topic is Topic.opt_out:
            checks.opt_out_kind(self.policy, item.key)
        elif item.topic in (Topic.channel, Topic.list):
            checks.preference_target(
                self.policy,
                item.key if item.topic is Topic.channel else None,
                item.key if item.topic is Topic.list else None,
            )
        elif item.topic is Topic.recipient:
            checks.recipient(self.policy, item.key)
        elif item.topic is Topic.objection and item.key != MARKETING_OBJECTION:
            self.decider.rule(item.key)


@dataclass(frozen=True)
class ChoiceInput:
    """One choice for `Consent.record_many` (imports and batch writes)."""

    subject: SubjectLike
    topic: Topic
    key: str
    state: Status
    scope: str = ""
    method: str = "import"
    at: datetime | None = None
    expires_at: datetime | None = None
    policy_version: int | None = None
    notice_hash: str | None = None
    language: str | None = None
    jurisdiction: str | None = None
    evidence: Mapping[str, Any] | None = None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch builds many small objects.

    They hold no reference cycles, so the collector has nothing to find in them, yet it
    would run every few hundred allocations (a third of a batch decision's time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _renewed(
    current: SubjectState,
    topic: Topic,
    key: str,
    scope: str,
    state: Status,
    at: datetime,
    decider: Decider,
) -> Status:
    """Consent given after it expired or was invalidated by a policy change is `renewed`."""
    if topic is not Topic.consent or state is not Status.given:
        return state
    before = current.get(topic, key, scope)
    if before is None:
        return state
    expired = before.expires_at is not None and before.expires_at <= at
    stale = decider.rules[key].renew_from > (before.policy_version or 0)
    if before.state in ("expired", "invalidated") or (
        before.state in ("given", "renewed") and (expired or stale)
    ):
        return Status.renewed
    return state


def _topics_for(
    purpose: str,
    channel: str | None,
    list_name: str | None,
    recipient: str | None,
    cookies: Sequence[str],
) -> list[tuple[str, Sequence[str] | None]]:
    """The choices one decision about `purpose` can look at."""
    topics: list[tuple[str, Sequence[str] | None]] = [
        ("consent", [purpose]),
        ("restriction", None),
        ("parental", None),
        ("opt_out", None),
        ("objection", [purpose, MARKETING_OBJECTION]),
    ]
    if channel is not None:
        topics.append(("channel", [channel]))
    if list_name is not None:
        topics.append(("list", [list_name, "*"]))
    if recipient is not None:
        topics.append(("recipient", [recipient]))
    if cookies:
        topics.append(("cookie", list(cookies)))
    return topics


__all__ = [
    "ChoiceInput",
    "Consent",
    "ConsentError",
    "DecisionLogging",
    "SubjectLike",
    "UnknownName",
]
