"""The disclosure capability: check a sharing of personal data, log it, report it, and
tell the recipients of later corrections and erasures.

`Disclosures.disclose` answers "may this subject's data go to this recipient, for this
purpose, now?" and, when it may, logs the disclosure with its audit event in one
transaction. The checks run in a fixed order; the first that fails gives the refusal's
code and reason:

1. `recipient.not_declared`: the policy has no such recipient;
2. `purpose.unknown`, `purpose.not_declared`: no such purpose, or it sends nothing to
   this recipient;
3. `category.not_allowed`: a category the recipient may not receive for the purpose;
4. `opt_out.sale`, `opt_out.share`: the subject opted out and the disclosure is a sale
   or sharing (the recipient's or the purpose's `sale`/`share`, CCPA §1798.120);
5. `recipient.restricted`: the subject asked that their data not go to this recipient;
6. then the consent capability's decision about the purpose (`Decider.decide`, the same
   rules as `engine.decide`): `restriction` (GDPR Art. 18), age, objection, and for a
   consent purpose `consent.missing`, `consent.withdrawn`, ...;
7. the transfer to the recipient's country (`lawful.disclosure.transfers`):
   `transfer.no_safeguard`, `transfer.requirement_missing`,
   `transfer.separate_consent_missing`.

Every refused `disclose` writes a `disclosure.refused` audit event (always, not
sampled: a refused sharing is an attempt the policy forbids, and rare). `disclose_many`
is the batch form: the subjects' states are read set-based, judged in memory, the
allowed ones logged with one insert and the batch recorded by one `disclosure.batch`
event that counts refusals per code and carries a digest of the rows logged.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit.log import NewEvent, lock_head
from lawful.audit.log import append as append_events
from lawful.consent import Consent, Decision, SubjectState, ledger
from lawful.consent.decide import MARKETING_OBJECTION, UNKNOWN_SUBJECT
from lawful.disclosure import notify
from lawful.disclosure.notify import Change, RecipientNotice, Transport
from lawful.disclosure.recipients import Recipients
from lawful.disclosure.tables import disclosures, recipient_notices
from lawful.disclosure.transfers import (
    SubjectConsent,
    TransferDecision,
    applicable_jurisdictions,
    decide_transfer,
    recipient_purposes,
)
from lawful.policy.countries import ANYWHERE, check_country
from lawful.policy.jurisdictions import get_jurisdiction
from lawful.policy.model import Policy
from lawful.policy.vocabulary import Basis, unknown
from lawful.store import Store
from lawful.store.bulk import insert_rows
from lawful.subjects import Identity, Keyring, Subject, registry
from lawful.subjects.tables import identities as identity_rows

SubjectLike = str | Identity | Subject


class DisclosureError(ValueError):
    """A disclosure asked for with bad input (not a refusal): the message says what to fix."""


@dataclass(frozen=True)
class DisclosureDecision:
    """The answer to one disclosure: allowed (and logged as `ref`) or refused, with why.

    `rule` is a stable code (see the module docstring), `reason` the same in words.
    `transfer` is the cross-border decision when the checks got that far; when its
    `deidentify` is set the data must be de-identified before it is sent.
    """

    allowed: bool
    recipient: str
    purpose: str
    categories: tuple[str, ...]
    rule: str
    reason: str
    at: datetime
    subject: str | None = None  # the subject's opaque ref, when lawful knows them
    ref: str | None = None  # the logged disclosure's id: send it with the data
    batch: str | None = None
    transfer: TransferDecision | None = None
    decision: Decision | None = None  # the consent capability's decision on the purpose

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def deidentify(self) -> bool:
        return bool(self.transfer and self.transfer.deidentify)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "recipient": self.recipient,
            "purpose": self.purpose,
            "categories": list(self.categories),
            "rule": self.rule,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "subject": self.subject,
            "ref": self.ref,
            "batch": self.batch,
            "deidentify": self.deidentify,
            "transfer": self.transfer.to_dict() if self.transfer else None,
        }


@dataclass(frozen=True)
class DisclosureRecord:
    """One logged disclosure, as the access report lists it (GDPR Art. 15(1)(c))."""

    ref: str
    batch: str
    recipient: str
    recipient_name: str
    purpose: str
    categories: tuple[str, ...]
    country: str
    jurisdictions: str | None
    safeguard: str | None
    deidentified: bool
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "recipient": self.recipient,
            "recipient_name": self.recipient_name,
            "purpose": self.purpose,
            "categories": list(self.categories),
            "country": self.country,
            "jurisdictions": self.jurisdictions,
            "safeguard": self.safeguard,
            "deidentified": self.deidentified,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class RecipientToNotify:
    """A recipient that received some of the subject's data (GDPR Art. 19)."""

    recipient: str
    categories: tuple[str, ...]
    disclosure_refs: tuple[str, ...]
    last_at: datetime
    channel: str  # webhook or queue


@dataclass(frozen=True)
class _Who:
    """A subject as a disclosure names them: id and ref when known, identity hash when given."""

    subject_id: int | None
    ref: str | None
    identity_hash: str | None
    audit_id: str | None  # the pseudonym audit events name them by


class Disclosures:
    """Disclosures to recipients for one controller: checks, log, reports, Art. 19 notices."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        keyring: Keyring,
        consent: Consent,
        *,
        webhooks: Mapping[str, str] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.keyring = keyring
        self.consent = consent
        self.key = policy.key
        self.controller_id = store.ensure_controller(policy.key, policy.controller.name)
        self.context = registry.Context(self.controller_id, self.key, keyring)
        self.recipients = Recipients(policy)
        self.webhooks = notify.check_webhooks(policy, webhooks)
        self.transport: Transport = transport or notify.http_post
        self._taxonomy = self.recipients.taxonomy

    # -- deciding and logging ------------------------------------------------------------

    def disclose(
        self,
        subject: SubjectLike,
        recipient: str,
        categories: Iterable[str],
        purpose: str,
        *,
        at: datetime | None = None,
        jurisdiction: str | None = None,
    ) -> DisclosureDecision:
        """Check one disclosure; log it when allowed. Refusals are audited too."""
        cats, at, jurisdiction = self._inputs(categories, at, jurisdiction)
        batch = uuid.uuid4().hex
        static = self._static(recipient, purpose, cats, at)

        def work(conn: Connection) -> DisclosureDecision:
            lock_head(conn, self.controller_id)  # head first: the lock order of every writer
            who, state = self._one_state(conn, subject)
            decision = (
                static
                if static is not None
                else self._judge(state, recipient, purpose, cats, at, jurisdiction)
            )
            decision = _with(decision, subject=who.ref, batch=batch)
            if decision.allowed:
                ref = uuid.uuid4().hex
                decision = _with(decision, ref=ref)
                insert_rows(conn, disclosures, [self._row(decision, who)])
                event = NewEvent("disclosure.made", who.audit_id, self._event_data(decision))
            else:
                event = NewEvent("disclosure.refused", who.audit_id, self._refusal_data(decision))
            append_events(conn, self.controller_id, self.key, [event])
            return decision

        return self.store.write(work)

    def disclose_many(
        self,
        subjects: Sequence[SubjectLike],
        recipient: str,
        categories: Iterable[str],
        purpose: str,
        *,
        at: datetime | None = None,
        jurisdiction: str | None = None,
    ) -> list[DisclosureDecision]:
        """Check a batch export, one decision per subject (in order); log the allowed ones.

        Set-based: the subjects' states are read in a few queries (one per 10,000 on
        PostgreSQL, per 1,000 elsewhere), judged in memory once per distinct state, and
        the allowed disclosures written with one insert and one `disclosure.batch` event.
        """
        cats, at, jurisdiction = self._inputs(categories, at, jurisdiction)
        subjects = list(subjects)
        batch = uuid.uuid4().hex
        static = self._static(recipient, purpose, cats, at)
        # Parsed before the transaction: a bad identity fails the batch before anything runs.
        named: list[Identity | Subject] = [
            s if isinstance(s, Subject | Identity) else Identity.parse(s) for s in subjects
        ]

        def work(conn: Connection) -> list[DisclosureDecision]:
            lock_head(conn, self.controller_id)
            if static is not None:
                decided = [_with(static, batch=batch) for _ in subjects]
                whos: list[_Who] = []
            else:
                whos, states = self._many_states(conn, named, recipient, purpose)
                memo: dict[Any, DisclosureDecision] = {}
                decided = []
                for who, state in zip(whos, states, strict=True):
                    shape = _shape(state)
                    found = memo.get(shape)
                    if found is None:
                        found = self._judge(state, recipient, purpose, cats, at, jurisdiction)
                        memo[shape] = found
                    decided.append(_with(found, subject=who.ref, batch=batch))
            rows: list[dict[str, Any]] = []
            for i, decision in enumerate(decided):
                if decision.allowed:
                    decided[i] = decision = _with(decision, ref=uuid.uuid4().hex)
                    rows.append(self._row(decision, whos[i]))
            insert_rows(conn, disclosures, rows)
            refused = Counter(d.rule for d in decided if not d.allowed)
            data = {
                "batch": batch,
                "recipient": recipient if recipient in self.policy.recipients else None,
                "purpose": purpose if purpose in self.policy.purposes else None,
                "categories": list(cats),
                "subjects": len(decided),
                "disclosed": len(rows),
                "refused": dict(sorted(refused.items())),
                # ties this event to the rows it logged: editing them breaks the digest
                "digest": _digest(rows),
            }
            append_events(
                conn, self.controller_id, self.key, [NewEvent("disclosure.batch", None, data)]
            )
            return decided

        return self.store.write(work)

    def check_transfer(
        self,
        recipient: str,
        *,
        subject: SubjectLike | None = None,
        categories: Iterable[str] | None = None,
        jurisdiction: str | None = None,
        country: str | None = None,
        at: datetime | None = None,
    ) -> TransferDecision:
        """May data go to `recipient`'s country (or `country`, one of its countries)?

        For other capabilities too (a dataset connector moving data, incidents). With a
        `subject`, their jurisdiction and their separate consent are read from the store;
        without, a transfer that needs a person's consent is refused as
        `transfer.needs_subject_consent`.
        """
        if recipient not in self.policy.recipients:
            raise DisclosureError(
                unknown(recipient, "a recipient of the policy", self.policy.recipients)
            )
        cats = None if categories is None else self._categories(categories)
        at = _when(at)
        if jurisdiction is not None:
            jurisdiction = get_jurisdiction(jurisdiction).key
        if subject is None:
            return decide_transfer(
                self.policy,
                recipient,
                jurisdictions=applicable_jurisdictions(self.policy, jurisdiction),
                consent=None,
                categories=cats,
                country=self._country(recipient, country),
            )
        with self.store.engine.connect() as conn:
            _, state = self._one_state(conn, subject)
        return decide_transfer(
            self.policy,
            recipient,
            jurisdictions=applicable_jurisdictions(self.policy, jurisdiction or state.jurisdiction),
            consent=self._evidence(state, recipient, None, at),
            categories=cats,
            country=self._country(recipient, country),
        )

    def _country(self, recipient: str, country: str | None) -> str | None:
        """One of the recipient's declared countries (any, for a recipient anywhere)."""
        if country is None:
            return None
        try:
            code = check_country(country)
        except ValueError as exc:
            raise DisclosureError(str(exc)) from None
        declared = self.policy.recipients[recipient].country
        if code not in declared and ANYWHERE not in declared:
            raise DisclosureError(
                f"recipient '{recipient}' is declared in {', '.join(declared)}, not {code}; a "
                "transfer to another country needs the recipient declared there in the policy"
            )
        return code

    # -- reports -------------------------------------------------------------------------

    def identity_hashes_disclosed(
        self, recipients: Iterable[str], categories: Iterable[str] = ()
    ) -> list[str]:
        """The keyed identity hashes of people whose data went to these recipients (in one
        of `categories`, a category or one under it, when given): who a breach at a
        recipient reaches. One query; the category filter is applied here, as JSON arrays
        compare differently on each backend."""
        names = [r for r in recipients if r in self.policy.recipients]
        if not names:
            return []
        wanted = tuple(categories)
        d = disclosures.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(d.identity_hash, d.categories).where(
                    d.controller_id == self.controller_id,
                    d.recipient.in_(names),
                    d.identity_hash.is_not(None),
                )
            ).all()
        return sorted(
            {
                h
                for h, cats in rows
                if not wanted or any(c == w or c.startswith(w + ".") for c in cats for w in wanted)
            }
        )

    def disclosures_of(self, subject: SubjectLike) -> list[DisclosureRecord]:
        """Every logged disclosure of the subject's data, oldest first (GDPR Art. 15(1)(c))."""
        with self.store.engine.connect() as conn:
            return [self._record(row) for row in self._rows_of(conn, subject)]

    def recipients_to_notify(
        self, subject: SubjectLike, categories: Iterable[str] | None = None
    ) -> list[RecipientToNotify]:
        """The recipients that received the subject's data (those categories, when given)."""
        wanted = None if categories is None else self._categories(categories)
        with self.store.engine.connect() as conn:
            return self._to_notify(conn, subject, wanted)

    def notify_recipients(
        self,
        subject: SubjectLike,
        change: Change,
        request_ref: str,
        *,
        categories: Iterable[str] | None = None,
    ) -> list[RecipientNotice]:
        """Tell every recipient that received the subject's data of a rectification or
        erasure (GDPR Art. 19): a webhook POST where one is configured, else a queued
        notice. Each notice is audited; calling again for the same request adds none."""
        if change not in notify.CHANGES:
            raise DisclosureError(
                f"change must be rectification or erasure (GDPR Art. 19), not {change!r}"
            )
        if not isinstance(request_ref, str) or not 0 < len(request_ref) <= 64:
            raise DisclosureError("give the ref of the request that made the change (1-64 chars)")
        wanted = None if categories is None else self._categories(categories)
        now = datetime.now(UTC)

        def work(conn: Connection) -> list[RecipientNotice]:
            who = self._who(conn, subject)
            owed = self._to_notify(conn, subject, wanted, who=who)
            if not owed:
                return []  # nobody received their data: nothing to lock, write or audit
            lock_head(conn, self.controller_id)
            done = set(
                conn.execute(
                    sa.select(recipient_notices.c.recipient).where(
                        recipient_notices.c.controller_id == self.controller_id,
                        recipient_notices.c.request_ref == request_ref,
                        recipient_notices.c.recipient.in_([o.recipient for o in owed]),
                    )
                ).scalars()
            )
            new = [
                RecipientNotice(
                    ref=uuid.uuid4().hex,
                    recipient=o.recipient,
                    change=change,
                    request_ref=request_ref,
                    categories=o.categories,
                    disclosure_refs=o.disclosure_refs,
                    channel=o.channel,
                    state="queued",
                    attempts=0,
                    last_error=None,
                    created_at=now,
                    sent_at=None,
                )
                for o in owed
                if o.recipient not in done
            ]
            insert_rows(
                conn,
                recipient_notices,
                [
                    {
                        "controller_id": self.controller_id,
                        "ref": n.ref,
                        "subject_id": who.subject_id,
                        "identity_hash": who.identity_hash,
                        "recipient": n.recipient,
                        "change": n.change,
                        "request_ref": n.request_ref,
                        "categories": list(n.categories),
                        "disclosure_refs": list(n.disclosure_refs),
                        "channel": n.channel,
                        "state": n.state,
                        "attempts": 0,
                        "created_at": now,
                    }
                    for n in new
                ],
            )
            append_events(
                conn,
                self.controller_id,
                self.key,
                [
                    NewEvent(
                        "recipient_notice.queued",
                        who.audit_id,
                        {
                            "notice": n.ref,
                            "recipient": n.recipient,
                            "change": n.change,
                            "request": n.request_ref,
                            "channel": n.channel,
                            "disclosures": len(n.disclosure_refs),
                        },
                    )
                    for n in new
                ],
            )
            return new

        queued = self.store.write(work)
        # Sent after the commit: a webhook is never called for a notice not recorded.
        return [self._send(n) if n.channel == "webhook" else n for n in queued]

    def pending_notices(self) -> list[RecipientNotice]:
        """Notices not yet sent (queued, or webhooks that failed), oldest first."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(recipient_notices)
                .where(
                    recipient_notices.c.controller_id == self.controller_id,
                    recipient_notices.c.state == "queued",
                )
                .order_by(recipient_notices.c.id)
            )
            return [_notice(row) for row in rows]

    def notices_of(self, request_ref: str) -> list[RecipientNotice]:
        """The notices sent or queued for one request."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(recipient_notices)
                .where(
                    recipient_notices.c.controller_id == self.controller_id,
                    recipient_notices.c.request_ref == request_ref,
                )
                .order_by(recipient_notices.c.id)
            )
            return [_notice(row) for row in rows]

    def mark_notice_sent(self, ref: str) -> RecipientNotice:
        """Record that an operator or worker sent a queued notice (audited)."""
        return self._mark(ref, sent=True, error=None, via="operator")

    def send_pending(self) -> list[RecipientNotice]:
        """Retry every queued webhook notice; queue-only notices are left to the operator."""
        return [
            self._send(n)
            for n in self.pending_notices()
            if n.channel == "webhook" and n.recipient in self.webhooks
        ]

    # -- the checks ----------------------------------------------------------------------

    def _inputs(
        self, categories: Iterable[str], at: datetime | None, jurisdiction: str | None
    ) -> tuple[tuple[str, ...], datetime, str | None]:
        cats = self._categories(categories)
        if not cats:
            raise DisclosureError("name the data categories disclosed, e.g. user.contact.email")
        return cats, _when(at), get_jurisdiction(jurisdiction).key if jurisdiction else None

    def _categories(self, categories: Iterable[str]) -> tuple[str, ...]:
        if isinstance(categories, str):
            categories = [categories]
        found: list[str] = []
        for c in categories:
            if not isinstance(c, str) or not self._taxonomy.is_category(c):
                raise DisclosureError(
                    unknown(c, "a data category", sorted(self._taxonomy.categories))
                )
            found.append(c)
        return tuple(dict.fromkeys(found))

    def _static(
        self, recipient: str, purpose: str, cats: tuple[str, ...], at: datetime
    ) -> DisclosureDecision | None:
        """Checks 1-3, on the policy alone: the same for every subject."""

        def no(rule: str, reason: str) -> DisclosureDecision:
            return DisclosureDecision(False, recipient, purpose, cats, rule, reason, at)

        if recipient not in self.policy.recipients:
            return no(
                "recipient.not_declared",
                unknown(recipient, "a recipient declared in the policy", self.policy.recipients),
            )
        if purpose not in self.policy.purposes:
            return no(
                "purpose.unknown", unknown(purpose, "a purpose of the policy", self.policy.purposes)
            )
        view = self.recipients[recipient]
        if purpose not in view.purposes:
            declared = ", ".join(view.purposes) or "none"
            return no(
                "purpose.not_declared",
                f"recipient '{recipient}' is not declared for purpose '{purpose}' "
                f"(its purposes: {declared}); name it in the purpose's recipients to allow it",
            )
        refused = self.recipients.not_allowed(recipient, purpose, list(cats))
        if refused:
            allowed = ", ".join(view.purposes[purpose])
            return no(
                "category.not_allowed",
                f"recipient '{recipient}' may not receive {', '.join(refused)} for purpose "
                f"'{purpose}' (it may receive: {allowed})",
            )
        return None

    def _judge(
        self,
        state: SubjectState,
        recipient: str,
        purpose: str,
        cats: tuple[str, ...],
        at: datetime,
        jurisdiction: str | None,
    ) -> DisclosureDecision:
        """Checks 4-7 for one subject's state (the same answer for the same state)."""
        spec = self.policy.recipients[recipient]
        declared = self.policy.purposes[purpose]

        def no(rule: str, reason: str, **kw: Any) -> DisclosureDecision:
            return DisclosureDecision(False, recipient, purpose, cats, rule, reason, at, **kw)

        choices = state.choices
        for kind, on in (
            ("sale", spec.sale or declared.sale),
            ("share", spec.share or declared.share),
        ):
            opted = choices.get(("opt_out", kind, "")) if on and choices else None
            if opted is not None and not opted.permits(at):
                what = (
                    "the sale of their personal information"
                    if kind == "sale"
                    else "the sharing of their personal information for cross-context "
                    "behavioural advertising"
                )
                return no(
                    f"opt_out.{kind}",
                    f"the subject opted out of {what} (CCPA §1798.120), and this disclosure to "
                    f"'{recipient}' is a {kind}",
                )
        restricted = choices.get(("recipient", recipient, "")) if choices else None
        if restricted is not None and not restricted.permits(at):
            return no(
                "recipient.restricted",
                f"the subject asked that their data not go to recipient '{recipient}'",
            )
        decision = self.consent.decider.decide(
            state, purpose, recipient=recipient, jurisdiction=jurisdiction, now=at
        )
        if not decision.allowed:
            return no(decision.rule, decision.reason, decision=decision)
        transfer = decide_transfer(
            self.policy,
            recipient,
            jurisdictions=applicable_jurisdictions(self.policy, jurisdiction or state.jurisdiction),
            consent=self._evidence(state, recipient, decision, at),
            categories=cats,
        )
        if not transfer.allowed:
            return no(transfer.rule, transfer.reason, transfer=transfer, decision=decision)
        reason = f"{decision.reason.removeprefix('allowed: ')}; transfer: {transfer.reason}"
        return DisclosureDecision(
            True,
            recipient,
            purpose,
            cats,
            "allowed",
            reason,
            at,
            transfer=transfer,
            decision=decision,
        )

    def _evidence(
        self, state: SubjectState, recipient: str, decision: Decision | None, at: datetime
    ) -> SubjectConsent:
        """The per-person transfer safeguards the subject's ledger shows for `recipient`.

        Separate consent (PIPL Art. 39) is a `given` record on the `recipient` topic for
        it (`consent.allow_recipient(subject, recipient, method=...)`), or valid consent
        to a purpose with `consent.separate: true` that sends data to it (Seestar's
        `global_services` for `global_infrastructure`). Consent (LGPD Art. 33(VIII)) is
        that, or an allowed decision of a consent-based purpose.
        """
        choices = state.choices
        separate = False
        if choices:
            given = choices.get(("recipient", recipient, ""))
            separate = given is not None and given.permits(at)
            for name in self._separate_purposes(recipient):
                if separate:
                    break
                chosen = choices.get(("consent", name, ""))
                separate = chosen is not None and chosen.permits(at)
        by_purpose = decision is not None and decision.allowed and decision.basis == Basis.consent
        return SubjectConsent(separate_consent=separate, consent=separate or by_purpose)

    def _separate_purposes(self, recipient: str) -> list[str]:
        found = []
        for name in recipient_purposes(self.policy, recipient):
            purpose = self.policy.purposes[name]
            if (
                purpose.consent is not None
                and purpose.consent.separate
                and Basis.consent in purpose.bases()
            ):
                found.append(name)
        return found

    # -- reading subjects ----------------------------------------------------------------

    def _who(self, conn: Connection, subject: SubjectLike) -> _Who:
        who, _ = self._one_state(conn, subject, choices=False)
        return who

    def _one_state(
        self, conn: Connection, subject: SubjectLike, *, choices: bool = True
    ) -> tuple[_Who, SubjectState]:
        if isinstance(subject, Subject):
            found: Subject | None = subject
            digest = None
        else:
            identity = subject if isinstance(subject, Identity) else Identity.parse(subject)
            digest = self.keyring.hash(identity)
            found = registry.resolve_many(conn, self.context, [identity], create=False).get(
                identity
            )
        if found is None:
            return _Who(None, None, digest, digest), UNKNOWN_SUBJECT
        state = (
            ledger.load_states(conn, self.controller_id, [found.id]).get(found.id, UNKNOWN_SUBJECT)
            if choices
            else UNKNOWN_SUBJECT
        )
        return _Who(found.id, found.ref, digest, self.keyring.subject_hash(found.ref)), state

    def _many_states(
        self,
        conn: Connection,
        named: Sequence[Identity | Subject],
        recipient: str,
        purpose: str,
    ) -> tuple[list[_Who], list[SubjectState]]:
        """Each subject's state, read set-based with only the choices a disclosure needs."""
        topics = self._topics(recipient, purpose)
        identities = [n for n in named if isinstance(n, Identity)]
        hashes = self.keyring.hash_many(identities)
        by_hash = ledger.load_states_by_hash(conn, self.controller_id, hashes, topics=topics)
        ids = [n.id for n in named if isinstance(n, Subject)]
        by_id = ledger.load_states(conn, self.controller_id, ids, topics=topics) if ids else {}
        whos: list[_Who] = []
        states: list[SubjectState] = []
        hashed = iter(hashes)
        for n in named:
            if isinstance(n, Subject):
                state = by_id.get(n.id, UNKNOWN_SUBJECT)
                whos.append(_Who(n.id, n.ref, None, None))
            else:
                digest = next(hashed)
                state = by_hash.get(digest, UNKNOWN_SUBJECT)
                whos.append(_Who(state.subject_id, state.ref, digest, None))
            states.append(state)
        return whos, states

    def _topics(self, recipient: str, purpose: str) -> list[tuple[str, Sequence[str] | None]]:
        rule = self.consent.decider.rule(purpose)
        topics: list[tuple[str, Sequence[str] | None]] = [
            ("consent", [purpose, *self._separate_purposes(recipient)]),
            ("restriction", None),
            ("parental", None),
            ("opt_out", None),
            ("objection", [purpose, MARKETING_OBJECTION]),
            ("recipient", [recipient]),
        ]
        if rule.cookies:
            topics.append(("cookie", list(rule.cookies)))
        return topics

    # -- the log -------------------------------------------------------------------------

    def _row(self, decision: DisclosureDecision, who: _Who) -> dict[str, Any]:
        transfer = decision.transfer
        assert transfer is not None and decision.ref is not None and decision.batch is not None
        return {
            "controller_id": self.controller_id,
            "ref": decision.ref,
            "batch": decision.batch,
            "subject_id": who.subject_id,
            "identity_hash": who.identity_hash,
            "recipient": decision.recipient,
            "purpose": decision.purpose,
            "categories": list(decision.categories),
            "country": ",".join(transfer.countries),
            "jurisdictions": ",".join(transfer.jurisdictions) or None,
            "safeguard": transfer.safeguard,
            "deidentified": transfer.deidentify,
            "at": decision.at,
        }

    def _event_data(self, decision: DisclosureDecision) -> dict[str, Any]:
        transfer = decision.transfer
        assert transfer is not None
        return {
            "disclosure": decision.ref,
            "batch": decision.batch,
            "recipient": decision.recipient,
            "purpose": decision.purpose,
            "categories": list(decision.categories),
            "country": ",".join(transfer.countries),
            "safeguard": transfer.safeguard,
            "transfer": transfer.rule,
            "deidentify": transfer.deidentify,
        }

    def _refusal_data(self, decision: DisclosureDecision) -> dict[str, Any]:
        # Names the caller gave that the policy lacks are left out: they could be anything.
        return {
            "batch": decision.batch,
            "recipient": decision.recipient
            if decision.recipient in self.policy.recipients
            else None,
            "purpose": decision.purpose if decision.purpose in self.policy.purposes else None,
            "categories": list(decision.categories),
            "rule": decision.rule,
        }

    def _rows_of(
        self, conn: Connection, subject: SubjectLike, *, who: _Who | None = None
    ) -> list[Any]:
        """The subject's disclosure rows: by subject id, and by every identity hash of theirs
        (a disclosure logged before lawful knew the person is found once it does). `who`:
        the subject as already looked up in this transaction."""
        who = self._who(conn, subject) if who is None else who
        hashes = {who.identity_hash} - {None}
        if who.subject_id is not None:
            hashes |= set(
                conn.execute(
                    sa.select(identity_rows.c.hash).where(
                        identity_rows.c.controller_id == self.controller_id,
                        identity_rows.c.subject_id == who.subject_id,
                    )
                ).scalars()
            )
        match = []
        if who.subject_id is not None:
            match.append(disclosures.c.subject_id == who.subject_id)
        if hashes:
            match.append(disclosures.c.identity_hash.in_(sorted(hashes)))
        if not match:
            return []
        query = (
            sa.select(disclosures)
            .where(disclosures.c.controller_id == self.controller_id, sa.or_(*match))
            .order_by(disclosures.c.at, disclosures.c.id)
        )
        return list(conn.execute(query))

    def _record(self, row: Any) -> DisclosureRecord:
        spec = self.policy.recipients.get(row.recipient)
        return DisclosureRecord(
            ref=row.ref,
            batch=row.batch,
            recipient=row.recipient,
            recipient_name=(spec.name or spec.description or row.recipient)
            if spec
            else row.recipient,
            purpose=row.purpose,
            categories=tuple(row.categories or ()),
            country=row.country,
            jurisdictions=row.jurisdictions,
            safeguard=row.safeguard,
            deidentified=bool(row.deidentified),
            at=row.at,
        )

    def _to_notify(
        self,
        conn: Connection,
        subject: SubjectLike,
        wanted: tuple[str, ...] | None,
        *,
        who: _Who | None = None,
    ) -> list[RecipientToNotify]:
        grouped: dict[str, tuple[dict[str, None], list[str], datetime]] = {}
        for row in self._rows_of(conn, subject, who=who):
            cats = list(row.categories or ())
            if wanted is not None:
                cats = [c for c in cats if any(self._related(c, w) for w in wanted)]
                if not cats:
                    continue
            found, refs, _ = grouped.get(row.recipient, ({}, [], row.at))
            found.update(dict.fromkeys(cats))
            refs.append(row.ref)
            grouped[row.recipient] = (found, refs, row.at)
        return [
            RecipientToNotify(
                recipient=name,
                categories=tuple(found),
                disclosure_refs=tuple(refs),
                last_at=last,
                channel="webhook" if name in self.webhooks else "queue",
            )
            for name, (found, refs, last) in sorted(grouped.items())
        ]

    def _related(self, a: str, b: str) -> bool:
        return self._taxonomy.covers(a, b) or self._taxonomy.covers(b, a)

    # -- notices -------------------------------------------------------------------------

    def _send(self, notice: RecipientNotice) -> RecipientNotice:
        url = self.webhooks[notice.recipient]
        body = notify.payload(self.key, notice)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "lawful",
            "X-Lawful-Signature": notify.signature(self.keyring.derive("recipient-webhook"), body),
        }
        try:
            status = self.transport(url, body, headers)
        except OSError as exc:  # unreachable: the notice stays queued for a retry
            return self._mark(
                notice.ref, sent=False, error=f"{type(exc).__name__}: not reachable", via="webhook"
            )
        if 200 <= status < 300:
            return self._mark(notice.ref, sent=True, error=None, via="webhook")
        return self._mark(notice.ref, sent=False, error=f"HTTP {status}", via="webhook")

    def _mark(self, ref: str, *, sent: bool, error: str | None, via: str) -> RecipientNotice:
        now = datetime.now(UTC)

        def work(conn: Connection) -> RecipientNotice:
            lock_head(conn, self.controller_id)
            row = conn.execute(
                sa.select(recipient_notices).where(
                    recipient_notices.c.controller_id == self.controller_id,
                    recipient_notices.c.ref == ref,
                )
            ).first()
            if row is None:
                raise DisclosureError(f"no recipient notice '{ref}' for controller '{self.key}'")
            if row.state == "sent":
                return _notice(row)  # already sent: nothing to do, nothing to audit
            values: dict[str, Any] = {"attempts": row.attempts + (1 if via == "webhook" else 0)}
            if sent:
                values.update(state="sent", sent_at=now, last_error=None)
            else:
                values["last_error"] = error
            conn.execute(
                sa.update(recipient_notices)
                .where(recipient_notices.c.id == row.id)
                .values(**values)
            )
            audit = (
                self.keyring.subject_hash(_ref_of(conn, row.subject_id))
                if row.subject_id
                else row.identity_hash
            )
            append_events(
                conn,
                self.controller_id,
                self.key,
                [
                    NewEvent(
                        "recipient_notice.sent" if sent else "recipient_notice.failed",
                        audit,
                        {
                            "notice": ref,
                            "recipient": row.recipient,
                            "change": row.change,
                            "request": row.request_ref,
                            "via": via,
                            "error": error,
                        },
                    )
                ],
            )
            return _notice(row, **values)

        return self.store.write(work)


# -- helpers ---------------------------------------------------------------------------------


def _with(decision: DisclosureDecision, **changes: Any) -> DisclosureDecision:
    from dataclasses import replace

    return replace(decision, **changes)


def _when(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None or at.utcoffset() is None:
        raise DisclosureError(
            "give the time of a disclosure with its time zone, e.g. datetime.now(UTC)"
        )
    return at.astimezone(UTC)


def _shape(state: SubjectState) -> Any:
    """What a disclosure decision can see of a state: never who the subject is."""
    return (
        state.kind,
        state.jurisdiction,
        state.country,
        state.birth_date,
        frozenset(state.choices.items()) if state.choices else None,
    )


def _digest(rows: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 over the logged rows' refs and identities, in order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(f"{row['ref']}:{row['subject_id']}:{row['identity_hash']}\n".encode())
    return h.hexdigest()


def _ref_of(conn: Connection, subject_id: int) -> str:
    from lawful.subjects.tables import subjects

    return str(
        conn.execute(sa.select(subjects.c.ref).where(subjects.c.id == subject_id)).scalar_one()
    )


def _notice(row: Any, **override: Any) -> RecipientNotice:
    value = {**row._mapping, **override}
    return RecipientNotice(
        ref=value["ref"],
        recipient=value["recipient"],
        change=value["change"],
        request_ref=value["request_ref"],
        categories=tuple(value["categories"] or ()),
        disclosure_refs=tuple(value["disclosure_refs"] or ()),
        channel=value["channel"],
        state=value["state"],
        attempts=int(value["attempts"]),
        last_error=value["last_error"],
        created_at=value["created_at"],
        sent_at=value["sent_at"],
    )
