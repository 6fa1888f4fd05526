"""`Requests`: a data-subject request from intake to proof, for one controller.

    submit ─▶ verify (code, signed-in assertion, or the controller vouching in processor
    mode) ─▶ approve (when the policy asks a person to) ─▶ run (a durable job, step by
    step, against every dataset and lawful's own records) ─▶ proof ─▶ receipt

Every change of state is one transaction that also appends its audit event, so the log
and the request never disagree. Nothing personal is stored in clear: the identity given
is kept as its keyed hash (and sealed, to write to the person); the kind's parameters
(a rectification's new values) are sealed too.

A request for an identity lawful has never seen is taken, stored and answered exactly
like any other (a code is sent to the address given, the answer has the same shape and
takes the same time): whether someone is a customer is not revealed to whoever asks.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit import NewEvent, append
from lawful.audit.log import lock_head
from lawful.consent import Consent
from lawful.datasets import Datasets
from lawful.disclosure import Disclosures
from lawful.policy import Policy
from lawful.policy.vocabulary import RequestKind
from lawful.requests import art15, messages, package, refusals, verify
from lawful.requests import deadlines as dl
from lawful.requests import jobs as job_queue
from lawful.requests.states import (
    CLOSED,
    FEE_ASKABLE,
    STATUS_TEXT,
    RequestState,
    check_move,
)
from lawful.requests.tables import request_steps, requests
from lawful.store import PolicyVersion, Store
from lawful.subjects import Identity, IdentityError, IdentityKind, Keyring

S = RequestState
CONTACT = b"requests.contact"  # AES-GCM contexts: a sealed value opens only where it belongs
PARAMS = b"requests.params"
CODE_MINUTES = 30
PUBLIC_URL_ENV = "LAWFUL_PUBLIC_URL"  # where people reach lawful: links in messages
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
INTAKE_FLOOR = 0.25
MANUAL = frozenset(
    {"written_request", "id_document"}
)  # checked by a person, not a code  # seconds: every intake answer takes at least this long (no enumeration)
# Kinds that change nothing for the person and so need no approval even when asked for.
READ_ONLY = frozenset({RequestKind.confirm, RequestKind.access, RequestKind.portability})
RECEIPT_KEY = "request-receipts"


class RequestError(ValueError):
    """A request that cannot be taken or moved as asked; the message says why and what to do."""


class RequestStateError(RequestError):
    """The request is not in a state that allows this move (approve twice, charge a fee of
    one already running, ...); the HTTP API answers 409."""


class UnknownRequest(RequestError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such request"


@dataclass(frozen=True)
class RequestView:
    """A request as its subject and the privacy team see it (no personal data)."""

    ref: str
    kind: str
    state: str
    status: str  # plain words for the subject
    received_at: datetime
    due_at: datetime
    acknowledge_by: datetime | None
    verified_at: datetime | None
    verified_by: str | None
    extended: bool
    extension_reason: str | None
    closed_at: datetime | None
    jurisdiction: str | None
    outcome: dict[str, Any] | None
    refusal: dict[str, Any] | None
    receipt: dict[str, Any] | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    fee: dict[str, Any] | None = None  # asked for an excessive request: ground, amount, paid_at
    paused: bool = False  # the clock stands still (awaiting clarification in the UK, a fee)

    @property
    def overdue(self) -> bool:
        return self.closed_at is None and not self.paused and self.due_at < datetime.now(UTC)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
        out["overdue"] = self.overdue
        return out


MAX_QUESTION = 1000  # characters of a clarification question, told to the person
DELIVER_EVERY = 1.0  # seconds: how often a busy `run_pending` sends the queued messages


@dataclass(frozen=True)
class Intake:
    """What `submit` answers: the same shape whoever the identity belongs to."""

    ref: str
    state: str
    status: str
    due_at: datetime
    code_sent_to: str | None  # the channel ("email"), never the address


class Requests:
    """Data-subject requests for the controller of `policy`."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        version: PolicyVersion,
        keyring: Keyring,
        consent: Consent,
        datasets: Datasets | None = None,
        *,
        sender: messages.Sender | None = None,
        clock: Callable[[], datetime] | None = None,
        package_window: timedelta = timedelta(days=7),
        intake_floor: float = INTAKE_FLOOR,
        public_url: str | None = None,
        lease: timedelta = timedelta(seconds=30),
        disclosures: Disclosures | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.version = version
        self.keyring = keyring
        self.consent = consent
        self.datasets = datasets
        self.disclosures = disclosures  # Art. 15 lists them; Art. 19 notifies their recipients
        self.sender = sender or messages.MemorySender()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.package_window = package_window
        self.intake_floor = intake_floor
        self.key = policy.key
        self.controller_id = store.ensure_controller(policy.key, policy.controller.name)
        # The jobs keep the requests' time (read anew: a test may move the clock later).
        self.jobs = job_queue.Jobs(store, lease=lease, clock=lambda: self.clock())
        self.letterhead = messages.Letterhead.from_policy(policy)
        self.art15 = art15.Art15Cache(policy)
        self.public_url = (
            public_url or os.environ.get(PUBLIC_URL_ENV) or DEFAULT_PUBLIC_URL
        ).rstrip("/")

    # -- intake ----------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        identity: Identity | str,
        *,
        jurisdiction: str | None = None,
        params: Mapping[str, Any] | None = None,
        channel: str = "api",
        assertion: str | None = None,
        on_behalf: verify.OnBehalf | None = None,
        submitted_by: str | None = None,
    ) -> Intake:
        """Take a request. It is verified at once with a signed-in `assertion` (or when a
        controller submits it in processor mode, `submitted_by`); otherwise a code is sent
        to the email or phone given and `verify(ref, code)` continues it."""
        started = time.monotonic()
        request_kind = self._kind(kind)
        who = self._identity(identity)
        values = self._params(request_kind, params)
        if jurisdiction is not None:
            self._jurisdiction(jurisdiction)
        trusted_by: str | None = None
        methods = {m.value for m in self.policy.requests.verification}
        if assertion is not None:
            if "signed_in" not in methods:
                raise RequestError(
                    f"the policy does not accept a signed-in assertion as proof of identity "
                    f"(it accepts: {', '.join(sorted(methods))})"
                )
            try:
                vouched = verify.read_assertion(
                    self.keyring, assertion, controller=self.key, now=self.clock()
                )
            except verify.AssertionRejected as exc:
                raise RequestError(f"the signed-in assertion was refused: {exc}") from None
            if vouched != who:
                raise RequestError(
                    "the signed-in assertion vouches for another identity than the request's"
                )
            trusted_by = "signed_in"
        elif submitted_by is not None:
            trusted_by = "controller"
        elif who.kind.value not in ("email", "phone") and not methods & MANUAL:
            raise RequestError(
                f"a request by {who.kind.value} id cannot be verified by a code: submit it "
                "with the email or phone on file, or with a signed-in assertion from your app"
            )
        code_channel = _code_channel(who, methods)
        if trusted_by is None and code_channel is None and not methods & MANUAL:
            raise RequestError(
                f"this policy verifies identity by {', '.join(sorted(methods))}: a request by "
                f"{who.kind.value} cannot be verified that way; give the email or phone on file"
            )
        now = self.clock()
        ref = uuid.uuid4().hex
        deadline = dl.compute_deadline(self.policy, request_kind, jurisdiction, now)
        on_behalf_record = (
            verify.on_behalf_record(
                self.keyring, on_behalf, agents_allowed=self.policy.requests.authorised_agents
            )
            if on_behalf is not None
            else None
        )

        def work(conn: Connection) -> Intake:
            lock_head(conn, self.controller_id)
            identity_hash = self.keyring.hash(who)
            subject_id = self._subject_id(conn, who)
            key_id, contact = self.keyring.encrypt(who.value, context=CONTACT + ref.encode())
            sealed = None
            if values:
                _, sealed = self.keyring.encrypt(
                    json.dumps(values, sort_keys=True, default=str),
                    context=PARAMS + ref.encode(),
                )
            refusal = fee = None
            if self.policy.requests.repeat_limit is not None:  # else nothing to count
                earlier = self._earlier(conn, identity_hash, request_kind)
                refusal = refusals.check_repeat(self.policy, request_kind, earlier, now)
            if refusal is not None and refusal.fee is not None:
                # The policy lets it be answered for a fee: asked once the person is known.
                fee = {"fee": refusal.fee, "ground": refusal.rule, "amount": None}
                refusal = None
            # The request is written once, in the state its intake ends in; each move on
            # the way there is checked and gets its audit event.
            if refusal is not None:
                path = [S.received, S.denied]
            elif trusted_by is not None and fee is not None:
                path = [S.received, S.verified, S.awaiting_fee]
                fee["asked_at"] = now.isoformat()
            elif trusted_by is not None:
                path = [S.received, S.verified, self._after_verification(request_kind)]
            else:
                path = [S.received, S.awaiting_verification]
            try:
                for old, to in itertools.pairwise(path):
                    check_move(old, to)
            except ValueError as exc:
                raise RequestError(str(exc)) from None
            state = path[-1]
            row = {
                "controller_id": self.controller_id,
                "ref": ref,
                "kind": request_kind.value,
                "state": state.value,
                "subject_id": subject_id,
                "identity_kind": who.kind.value,
                "identity_hash": identity_hash,
                "contact_ciphertext": contact,
                "params_ciphertext": sealed,
                "key_id": key_id,
                "jurisdiction": jurisdiction,
                "channel": channel,
                "submitted_by": submitted_by,
                "on_behalf": on_behalf_record,
                "policy_version": self.version.number,
                "received_at": now,
                "acknowledge_by": deadline.acknowledge_by,
                "due_at": deadline.due_at,
                "updated_at": now,
                "fee": fee,
                "paused_at": now if state is S.awaiting_fee else None,
            }
            if refusal is not None:
                row["refusal"] = {"rule": refusal.rule, "text": refusal.text, "fee": refusal.fee}
                row["closed_at"] = now
            if trusted_by is not None and refusal is None:
                row["verified_at"] = now
                row["verified_by"] = trusted_by
            request_id = conn.execute(
                sa.insert(requests).values(row).returning(requests.c.id)
            ).scalar_one()
            tell = functools.partial(self._tell, conn, request_id, ref, request_kind, who)
            events = [
                NewEvent(
                    "request.received",
                    subject=identity_hash,
                    data={
                        "ref": ref,
                        "kind": request_kind.value,
                        "channel": channel,
                        "jurisdiction": jurisdiction,
                        "due_at": deadline.due_at.isoformat(),
                        "basis": deadline.basis,
                        "on_behalf": (on_behalf_record or {}).get("role"),
                        "submitted_by": submitted_by,
                        "fee": fee and fee["ground"],
                    },
                )
            ]
            why = trusted_by if trusted_by is not None else None
            events += [
                self._event(ref, identity_hash, old, to, why if to is S.verified else None)
                for old, to in itertools.pairwise(path)
            ]
            if state is S.awaiting_fee:
                events[-1] = self._event(ref, identity_hash, S.verified, state, fee["ground"])
            if refusal is not None:
                events[-1] = self._event(ref, identity_hash, S.received, S.denied, refusal.rule)
                append(conn, self.controller_id, self.key, events)
                tell("denied", rule=refusal.rule, rule_text=refusal.text)
                return Intake(ref, S.denied.value, STATUS_TEXT[S.denied], deadline.due_at, None)
            if trusted_by is not None:
                if state is S.in_progress:
                    job_queue.enqueue(
                        conn,
                        request_id=request_id,
                        controller_id=self.controller_id,
                        now=now,
                        new=True,
                    )
                append(conn, self.controller_id, self.key, events)
                if state is S.awaiting_fee:
                    self._tell_fee(conn, request_id, ref, request_kind, who, fee)
                else:
                    tell("acknowledged", due=deadline.due_at.date())
                return Intake(ref, state.value, STATUS_TEXT[state], deadline.due_at, None)
            append(conn, self.controller_id, self.key, events)
            if code_channel is None:
                # The policy verifies by a document or a written request: a person of the
                # privacy team checks it and calls `confirm_identity`.
                return Intake(
                    ref,
                    S.awaiting_verification.value,
                    STATUS_TEXT[S.awaiting_verification],
                    deadline.due_at,
                    None,
                )
            channel_to = code_channel
            code = verify.issue_code(
                conn,
                self.keyring,
                request_id,
                channel_to,
                now,
                ttl=timedelta(minutes=CODE_MINUTES),
            )
            tell("code", code=code, minutes=CODE_MINUTES)
            return Intake(
                ref,
                S.awaiting_verification.value,
                STATUS_TEXT[S.awaiting_verification],
                deadline.due_at,
                channel_to,
            )

        try:
            return self.store.write(work)
        finally:
            self._deliver()
            # The floor hides from an anonymous asker whether the identity is known; a
            # signed-in app or a controller vouching for its customer learns nothing by it.
            trusted = assertion is not None or submitted_by is not None
            _wait_until(started + (0.0 if trusted else self.intake_floor))

    def verify(self, ref: str, code: str) -> RequestView:
        """Check the code the person typed; a right one verifies the request."""
        started = time.monotonic()
        now = self.clock()

        def work(conn: Connection) -> verify.CodeCheck:
            lock_head(conn, self.controller_id)
            row = self._row(conn, ref, lock=True)
            state = S(row.state)
            if state is not S.awaiting_verification:
                raise RequestStateError(
                    f"request {ref} is {state.value}, not awaiting verification: nothing to verify"
                )
            check = verify.check_code(conn, self.keyring, row.id, code, now)
            if check.result is not verify.CodeResult.ok:
                append(
                    conn,
                    self.controller_id,
                    self.key,
                    [
                        NewEvent(
                            "request.verification_failed",
                            subject=row.identity_hash,
                            data={"ref": ref, "result": check.result.value},
                        )
                    ],
                )
                return check
            events = self._verified(
                conn,
                row,
                now,
                # The code went to the address the request was made with (_code_channel).
                by="phone_code" if row.identity_kind == "phone" else "email_code",
                why="code",
            )
            append(conn, self.controller_id, self.key, events)
            return check

        try:
            check = self.store.write(work)
        finally:
            self._deliver()
            _wait_until(started + self.intake_floor)
        if check.result is not verify.CodeResult.ok:
            raise RequestError(_CODE_TEXT[check.result].format(left=check.attempts_left))
        return self.show(ref)

    # -- the privacy team -------------------------------------------------------------------

    def confirm_identity(self, ref: str, *, method: str, by: str) -> RequestView:
        """A person of the privacy team confirms who asked, by a method the policy lists
        that is not a code (an identity document, a written request)."""
        methods = {m.value for m in self.policy.requests.verification}
        if method not in methods or method not in MANUAL:
            usable = sorted(methods & MANUAL) or ["none: this policy verifies by code only"]
            raise RequestError(
                f"{method!r} is not a way this policy verifies by hand (it lists: {', '.join(usable)})"
            )
        if not by.strip():
            raise RequestError("say who checked the proof (--by NAME)")
        now = self.clock()

        def confirm(conn: Connection, row: Any) -> list[NewEvent]:
            state = S(row.state)
            if state is not S.awaiting_verification:
                raise RequestStateError(
                    f"request {ref} is {state.value}, not awaiting verification: nothing to verify"
                )
            return self._verified(conn, row, now, by=method, why=f"{method} by {by}")

        return self._by_hand(ref, confirm)

    def approve(self, ref: str, *, by: str) -> RequestView:
        """A person of the privacy team lets a request that needs approval run."""
        if not by.strip():
            raise RequestError("say who approves (--by NAME)")

        def approve(conn: Connection, row: Any) -> list[NewEvent]:
            now, state = self.clock(), S(row.state)
            self._move(conn, row.id, state, S.in_progress, now)
            job_queue.enqueue(conn, request_id=row.id, controller_id=self.controller_id, now=now)
            return [self._event(ref, row.identity_hash, state, S.in_progress, f"approved by {by}")]

        return self._by_hand(ref, approve)

    def deny(self, ref: str, rule: str, *, detail: str | None = None) -> RequestView:
        """Refuse a request on a ground the policy lists, or close one whose fee was not
        paid (rule `fee_unpaid`); the person is told the rule."""
        unpaid = rule == refusals.FEE_UNPAID
        try:
            refusal = None if unpaid else refusals.exception_refusal(self.policy, rule, detail)
        except refusals.RefusalError as exc:
            raise RequestError(str(exc)) from None

        def deny(conn: Connection, row: Any) -> list[NewEvent]:
            state = S(row.state)
            told = refusal or self._unpaid(ref, state, row.fee)
            self._close(conn, row.id, ref, state, S.denied, self.clock(), refusal=told)
            self._tell(
                conn,
                row.id,
                ref,
                row.kind,
                self._contact(row),
                "denied",
                rule=told.rule,
                rule_text=told.text,
            )
            return [self._event(ref, row.identity_hash, state, S.denied, told.rule)]

        return self._by_hand(ref, deny)

    def extend(self, ref: str, reason: str) -> RequestView:
        """Use the extension the law allows, once, with a reason the person is told."""

        def extend(conn: Connection, row: Any) -> list[NewEvent]:
            if S(row.state).closed:
                raise RequestStateError(
                    f"request {ref} is {row.state}: it can no longer be extended"
                )
            now = self.clock()
            current = self._deadline(row)
            try:
                longer = dl.extend(current, reason, now)
            except dl.DeadlineError as exc:
                raise RequestError(f"request {ref}: {exc}") from None
            conn.execute(
                sa.update(requests)
                .where(requests.c.id == row.id)
                .values(
                    due_at=longer.due_at,
                    extended_at=now,
                    extension_reason=reason,
                    updated_at=now,
                )
            )
            self._tell(
                conn,
                row.id,
                ref,
                row.kind,
                self._contact(row),
                "extended",
                reason=longer.extension_reason,
                due=longer.due_at.date(),
            )
            data = {"ref": ref, "due_at": longer.due_at.isoformat(), "reason": reason}
            return [NewEvent("request.extended", subject=row.identity_hash, data=data)]

        return self._by_hand(ref, extend)

    def withdraw(self, ref: str) -> RequestView:
        """The person withdraws their request (before it runs)."""

        def withdraw(conn: Connection, row: Any) -> list[NewEvent]:
            state = S(row.state)
            self._close(conn, row.id, ref, state, S.withdrawn, self.clock())
            return [self._event(ref, row.identity_hash, state, S.withdrawn)]

        return self._by_hand(ref, withdraw)

    def ask_clarification(self, ref: str, question: str) -> RequestView:
        """Ask the person for more; where the law says so the clock stops until they reply."""
        question = " ".join(question.split()) if isinstance(question, str) else ""
        if not question or len(question) > MAX_QUESTION:
            raise RequestError(
                f"the question is told to the person: write it, in at most {MAX_QUESTION} "
                "characters"
            )

        def ask(conn: Connection, row: Any) -> list[NewEvent]:
            state = S(row.state)
            now = self.clock()
            # Whether the law stops the clock (UK), extended or not.
            stops = dl.compute_deadline(
                self.policy, RequestKind(row.kind), row.jurisdiction, row.received_at
            ).pauses
            paused = {"paused_at": now if stops else None, "outcome": {"resume_to": state.value}}
            self._move(conn, row.id, state, S.awaiting_clarification, now, values=paused)
            self._tell(
                conn,
                row.id,
                ref,
                row.kind,
                self._contact(row),
                "awaiting_clarification",
                question=question,
                paused=stops,
            )
            return [self._event(ref, row.identity_hash, state, S.awaiting_clarification)]

        return self._by_hand(ref, ask)

    def clarified(self, ref: str) -> RequestView:
        """The person replied: the request goes on where it was, its deadline pushed by the pause."""

        def resume(conn: Connection, row: Any) -> list[NewEvent]:
            if S(row.state) is not S.awaiting_clarification:
                raise RequestStateError(f"request {ref} is {row.state}, not awaiting clarification")
            back = S((row.outcome or {}).get("resume_to", S.verified.value))
            _, event = self._resume(conn, row, back, self.clock(), {"outcome": None})
            return [event]

        return self._by_hand(ref, resume)

    def _resume(
        self, conn: Connection, row: Any, back: RequestState, now: datetime, values: dict
    ) -> tuple[datetime, NewEvent]:
        """Move a waiting request back to `back`, its deadline pushed by the whole days its
        clock stood still, and queue its job when it is to run: the new due date and the
        move's audit event. `values` are set in the same UPDATE."""
        current = S(row.state)
        due, paused_days = row.due_at, row.paused_days
        if row.paused_at is not None:
            due = dl.paused(row.due_at, row.paused_at, now)
            paused_days += (due - row.due_at).days
        values = {**values, "due_at": due, "paused_at": None, "paused_days": paused_days}
        self._move(conn, row.id, current, back, now, values=values)
        if back is S.in_progress:
            job_queue.enqueue(conn, request_id=row.id, controller_id=self.controller_id, now=now)
        return due, self._event(row.ref, row.identity_hash, current, back)

    # -- fees: an excessive request answered for the fee the policy allows ----------------

    def charge_fee(self, ref: str, *, amount: str, ground: str | None = None) -> RequestView:
        """Ask the person for the fee the policy allows (`requests.fee.when_excessive`)
        instead of refusing an excessive or manifestly unfounded request (Art. 12(5) GDPR),
        `amount` as they are told it ('EUR 25'). A verified request then waits for the
        payment (`fee_paid`) with its clock stopped; one not yet verified is asked once it
        is. On a request already awaiting its fee (over the repeat limit: the person was
        told the kind of fee) this sets the amount and tells them again."""
        try:
            charged = refusals.policy_fee(self.policy)
            amount = refusals.fee_amount(amount)
            if ground is not None:
                refusals.fee_ground(ground)
        except refusals.RefusalError as exc:
            raise RequestError(str(exc)) from None

        def charge(conn: Connection, row: Any) -> list[NewEvent]:
            now, state = self.clock(), S(row.state)
            if state not in FEE_ASKABLE:
                raise RequestStateError(
                    f"request {ref} is {state.value}: a fee can be asked only before it runs "
                    "(awaiting verification, approval or its fee)"
                )
            earlier = row.fee or {}
            why = ground or earlier.get("ground") or "excessive"
            unverified = state is S.awaiting_verification  # asked once the person is known
            fee = {
                "fee": charged.value,
                "ground": why,
                "amount": amount,
                "asked_at": None if unverified else now.isoformat(),
            }
            data = {"ref": ref, "ground": why, "amount": amount, "fee": charged.value}
            events = [NewEvent("request.fee_asked", subject=row.identity_hash, data=data)]
            to = S.awaiting_fee if state is S.awaiting_approval else state
            values: dict[str, Any] = {"fee": fee}
            if to is not state:
                values["paused_at"] = now
                events.append(self._event(ref, row.identity_hash, state, to, why))
            self._move(conn, row.id, state, to, now, values=values)
            if not unverified:
                self._tell_fee(conn, row.id, ref, row.kind, self._contact(row), fee)
            return events

        return self._by_hand(ref, charge)

    def fee_paid(self, ref: str, *, by: str) -> RequestView:
        """The fee was paid (`by`: who of the privacy team saw it): the request goes on, its
        deadline pushed back by the days it waited, and the person is told the new date."""
        if not by.strip():
            raise RequestError("say who saw the payment (--by NAME)")

        def paid(conn: Connection, row: Any) -> list[NewEvent]:
            now, state = self.clock(), S(row.state)
            if state is not S.awaiting_fee:
                raise RequestStateError(f"request {ref} is {state.value}, not awaiting a fee")
            if not (row.fee or {}).get("amount"):
                raise RequestStateError(
                    f"no amount was asked for request {ref} yet: ask it first "
                    f"(lawful request charge {ref} --amount 'EUR 25')"
                )
            fee = {**row.fee, "paid_at": now.isoformat(), "paid_by": by.strip()}
            back = self._after_verification(RequestKind(row.kind))
            due, moved = self._resume(conn, row, back, now, {"fee": fee})
            self._tell(
                conn, row.id, ref, row.kind, self._contact(row), "acknowledged", due=due.date()
            )
            data = {
                "ref": ref,
                "amount": fee["amount"],
                "by": fee["paid_by"],
                "due_at": due.isoformat(),
            }
            return [NewEvent("request.fee_paid", subject=row.identity_hash, data=data), moved]

        return self._by_hand(ref, paid)

    def _unpaid(self, ref: str, state: RequestState, fee: Mapping | None) -> refusals.Refusal:
        if state is not S.awaiting_fee or not fee:
            raise RequestStateError(
                f"request {ref} is {state.value}: only a request awaiting its fee can be "
                f"closed as {refusals.FEE_UNPAID}"
            )
        return refusals.fee_unpaid(self.policy, fee["ground"], fee.get("amount"))

    def _tell_fee(
        self, conn: Connection, request_id: int, ref: str, kind: str, to: Identity, fee: Mapping
    ) -> None:
        text = refusals.fee_text(self.policy, fee["ground"], fee.get("amount"))
        self._tell(conn, request_id, ref, kind, to, "fee", reason=text)

    def _by_hand(self, ref: str, act: Callable[[Connection, Any], list[NewEvent]]) -> RequestView:
        """A person's move on request `ref`, in one transaction: the audit head locked
        first, then the request's row; `act(conn, row)` makes the change, queues any
        message to the person and returns the audit events, chained here. The messages go
        once it commits; the request as it then is comes back."""

        def work(conn: Connection) -> None:
            lock_head(conn, self.controller_id)
            row = self._row(conn, ref, lock=True)
            append(conn, self.controller_id, self.key, act(conn, row))

        self.store.write(work)
        self._deliver()
        return self.show(ref)

    # -- reading -------------------------------------------------------------------------

    def show(self, ref: str) -> RequestView:
        with self.store.engine.connect() as conn:
            row = self._row(conn, ref)
            steps = conn.execute(
                sa.select(request_steps)
                .where(request_steps.c.request_id == row.id)
                .order_by(request_steps.c.seq)
            ).all()
        return _view(row, steps)

    def list(
        self,
        *,
        due_within: timedelta | None = None,
        overdue: bool = False,
        state: str | None = None,
        open_only: bool = True,
    ) -> list[RequestView]:
        """Requests by due date, soonest first: `due_within` a window, or only `overdue` ones."""
        now = self.clock()
        query = sa.select(requests).where(requests.c.controller_id == self.controller_id)
        if state is not None:
            query = query.where(requests.c.state == S(state).value)
        elif open_only or overdue or due_within is not None:
            query = query.where(requests.c.state.notin_([s.value for s in CLOSED]))
        if overdue:  # a stopped clock (awaiting a fee, a UK clarification) runs late for no one
            query = query.where(requests.c.due_at < now, requests.c.paused_at.is_(None))
        if due_within is not None:
            query = query.where(requests.c.due_at <= now + due_within)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query.order_by(requests.c.due_at, requests.c.id)).all()
        return [_view(row, []) for row in rows]

    def download(self, token: str) -> bytes:
        """The access or portability package behind a link from the person's message.

        Raises `package.PackageError` (a `LinkRejected` or `PackageUnavailable`, whose
        message says why) for a bad, expired or purged link.
        """
        now = self.clock()

        def work(conn: Connection) -> bytes:
            lock_head(conn, self.controller_id)
            data = package.open_package(conn, self.keyring, token, now)
            ref = package.check_link(self.keyring, token, now)
            row = self._row(conn, ref)
            append(
                conn,
                self.controller_id,
                self.key,
                [
                    NewEvent(
                        "request.package_downloaded",
                        subject=row.identity_hash,
                        data={"ref": ref, "bytes": len(data)},
                    )
                ],
            )
            return data

        return self.store.write(work)

    def link(self, token: str) -> str:
        """The URL a person downloads their package from."""
        return f"{self.public_url}/requests/download?token={token}"

    # -- running -------------------------------------------------------------------------

    def run_pending(self, *, limit: int | None = None) -> int:
        """Claim and run queued jobs until none is left (or `limit`); how many ran.

        The messages the jobs queue are sent when it returns, and at least every
        `DELIVER_EVERY` seconds while it runs (not after each job: a busy worker sends
        them in rounds)."""
        from lawful.requests.execute import execute

        done = 0
        delivered = time.monotonic()
        try:
            while limit is None or done < limit:
                claim = self.jobs.claim(controller_id=self.controller_id)
                if claim is None:
                    break
                execute(self, claim)
                done += 1
                if time.monotonic() - delivered >= DELIVER_EVERY:
                    self._deliver()
                    delivered = time.monotonic()
        finally:
            self._deliver()
        return done

    def execute(self, claim: job_queue.Claim) -> None:
        """Carry out a claimed request, step by step (see lawful.requests.execute), and
        send the messages it queued."""
        from lawful.requests.execute import execute

        execute(self, claim)
        self._deliver()

    # -- helpers shared with execute -----------------------------------------------------

    def _row(self, conn: Connection, ref: str, *, lock: bool = False) -> Any:
        query = sa.select(requests).where(
            requests.c.ref == ref, requests.c.controller_id == self.controller_id
        )
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise UnknownRequest(f"no request {ref!r} (see `lawful request list`)")
        return row

    def _move(
        self,
        conn: Connection,
        request_id: int,
        current: RequestState,
        new: RequestState,
        now: datetime,
        *,
        through: Sequence[RequestState] = (),
        values: Mapping[str, Any] | None = None,
        must: bool = True,
        unchanged_since: datetime | None = None,
    ) -> bool:
        """Move the request from `current` to `new` (by way of the states `through`, each
        move checked) and set `values`, in one UPDATE that also checks it is still in
        `current` (and, with `unchanged_since`, that it was not updated after that). When
        it no longer is: RequestError, or False when not `must`."""
        path = [current, *through, new]
        if path == [current, current]:  # staying: values change, the state does not
            path = [current]
        try:
            for old, to in itertools.pairwise(path):
                check_move(old, to)
        except ValueError as exc:
            raise RequestStateError(str(exc)) from None
        values = {**(values or {}), "state": new.value, "updated_at": now}
        if S.verified in path[1:]:
            values["verified_at"] = now
        if new.closed:
            values["closed_at"] = now
        query = _move_statement(tuple(sorted(values)), unchanged_since is not None)
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(p_id=request_id, p_current=current.value, p_since=unchanged_since)
        done = conn.execute(query, params).rowcount
        if done != 1 and must:  # another transaction moved it first
            raise RequestStateError("the request changed meanwhile; look at it again and retry")
        return done == 1

    def _close(
        self,
        conn: Connection,
        request_id: int,
        ref: str,
        current: RequestState,
        new: RequestState,
        now: datetime,
        *,
        refusal: refusals.Refusal | None = None,
    ) -> None:
        values = None
        if refusal is not None:
            values = {"refusal": {"rule": refusal.rule, "text": refusal.text, "fee": refusal.fee}}
        self._move(conn, request_id, current, new, now, values=values)

    def _verified(
        self, conn: Connection, row: Any, now: datetime, *, by: str, why: str
    ) -> list[NewEvent]:
        """Mark the request in `row` verified (by method `by`), then await approval, or its
        fee, or queue the job, and tell the person; the two moves' audit events (`why`
        explains the verification). One UPDATE: the row passes through verified
        (verified_at set) to the state it ends in."""
        current, subject = S(row.state), row.identity_hash
        values: dict[str, Any] = {"verified_by": by}
        fee = row.fee if row.fee and not row.fee.get("paid_at") else None
        if fee is not None:  # over the repeat limit, or charged by hand before verification
            fee = {**fee, "asked_at": now.isoformat()}
            new = S.awaiting_fee
            values.update(fee=fee, paused_at=now)
        else:
            new = self._after_verification(RequestKind(row.kind))
        self._move(conn, row.id, current, new, now, through=[S.verified], values=values)
        if new is S.in_progress:
            job_queue.enqueue(conn, request_id=row.id, controller_id=self.controller_id, now=now)
        contact = self._contact(row)
        if fee is not None:
            self._tell_fee(conn, row.id, row.ref, row.kind, contact, fee)
        else:
            self._tell(
                conn, row.id, row.ref, row.kind, contact, "acknowledged", due=row.due_at.date()
            )
        return [
            self._event(row.ref, subject, current, S.verified, why),
            self._event(row.ref, subject, S.verified, new, fee and fee["ground"]),
        ]

    def _after_verification(self, kind: RequestKind) -> RequestState:
        """Where a verified request goes: to a person's approval when the policy asks for
        one (never for a read-only kind), else straight to work."""
        if kind in self.policy.requests.approval and kind not in READ_ONLY:
            return S.awaiting_approval
        return S.in_progress

    def _event(
        self,
        ref: str,
        subject: str | None,
        old: RequestState,
        new: RequestState,
        why: str | None = None,
    ) -> NewEvent:
        data: dict[str, Any] = {"ref": ref, "from": old.value, "to": new.value}
        if why:
            data["why"] = why
        return NewEvent(f"request.{new.value}", subject=subject, data=data)

    def _earlier(self, conn: Connection, identity_hash: str, kind: RequestKind) -> list[datetime]:
        """When this identity's earlier requests of `kind` were received (the one being
        taken is not written yet); withdrawn and denied ones do not count."""
        rows = conn.execute(
            sa.select(requests.c.received_at).where(
                requests.c.controller_id == self.controller_id,
                requests.c.identity_hash == identity_hash,
                requests.c.kind == kind.value,
                requests.c.state.notin_([S.withdrawn.value, S.denied.value]),
            )
        ).scalars()
        return list(rows)

    def _subject_id(self, conn: Connection, who: Identity) -> int | None:
        from lawful.subjects import registry

        subject = registry.find(conn, self.consent.context, who)
        return subject.id if subject is not None else None

    def _contact(self, row: Any) -> Identity:
        value = self.keyring.decrypt(
            row.key_id, row.contact_ciphertext, context=CONTACT + row.ref.encode()
        )
        return Identity._normalised(IdentityKind(row.identity_kind), value)

    def params(self, row: Any) -> dict[str, Any]:
        if row.params_ciphertext is None:
            return {}
        text = self.keyring.decrypt(
            row.key_id, row.params_ciphertext, context=PARAMS + row.ref.encode()
        )
        return json.loads(text)

    def _deadline(self, row: Any) -> dl.Deadline:
        """The request's deadline as computed at receipt, moved by its pauses so far."""
        if row.extended_at is not None:
            raise RequestError(
                f"request {row.ref} was already extended on {row.extended_at:%Y-%m-%d}: "
                "a deadline may be extended only once"
            )
        deadline = dl.compute_deadline(
            self.policy, RequestKind(row.kind), row.jurisdiction, row.received_at
        )
        if row.paused_days:  # each pause was one the law allows when it was taken
            deadline = dl.pause(deadline, row.paused_days, anywhere=True)
        return deadline

    def _tell(
        self,
        conn: Connection,
        request_id: int,
        ref: str,
        kind: str,
        to: Identity,
        template: str,
        **fields: Any,
    ) -> None:
        """Queue a message to the person (sent after the transaction commits)."""
        if to.kind.value not in ("email", "phone"):
            return  # an account id has no address: the app shows the status instead
        channel = "email" if to.kind.value == "email" else "sms"
        subject, body = messages.render_message(
            template, self.letterhead, ref=ref, kind=str(kind), **fields
        )
        messages.queue_message(
            conn,
            self.keyring,
            controller_id=self.controller_id,
            request_id=request_id,
            template=template,
            channel=channel,
            to=to.value,
            subject=subject,
            body=body,
            now=self.clock(),
        )

    def _deliver(self) -> None:
        messages.deliver_pending(self.store, self.keyring, self.sender)

    def _kind(self, kind: str) -> RequestKind:
        try:
            value = RequestKind(kind)
        except ValueError:
            raise RequestError(
                f"unknown request kind {kind!r}: use one of "
                f"{', '.join(k.value for k in self.policy.requests.kinds)}"
            ) from None
        if value not in self.policy.requests.kinds:
            offered = ", ".join(k.value for k in self.policy.requests.kinds)
            raise RequestError(
                f"{self.policy.controller.name} does not offer {value.value} requests (offered: {offered})"
            )
        return value

    def _identity(self, identity: Identity | str) -> Identity:
        if isinstance(identity, Identity):
            return identity
        try:
            return Identity.parse(identity)
        except IdentityError as exc:
            raise RequestError(str(exc)) from None

    def _jurisdiction(self, key: str) -> None:
        from lawful.policy.jurisdictions import UnknownJurisdictionError, get_jurisdiction

        try:
            get_jurisdiction(key)
        except UnknownJurisdictionError as exc:
            raise RequestError(str(exc)) from None

    def _params(self, kind: RequestKind, params: Mapping[str, Any] | None) -> dict[str, Any]:
        from lawful.requests.execute import check_params

        return check_params(self, kind, dict(params or {}))

    # -- receipts ------------------------------------------------------------------------

    def sign(self, receipt: Mapping[str, Any]) -> str:
        body = json.dumps(receipt, sort_keys=True, separators=(",", ":"), default=str).encode()
        return hmac.new(self.keyring.derive(RECEIPT_KEY), body, hashlib.sha256).hexdigest()

    def check_receipt(self, ref: str) -> bool:
        """The receipt is the one signed, and its hash is in the audit log's chain."""
        view = self.show(ref)
        if view.receipt is None:
            raise RequestError(f"request {ref} has no receipt yet (it is {view.state})")
        signed = dict(view.receipt)
        signature = signed.pop("signature", "")
        if not hmac.compare_digest(signature, self.sign(signed)):
            return False
        digest = receipt_hash(signed)
        from lawful.audit import AuditLog

        with self.store.engine.connect() as conn:
            subject = self._row(conn, ref).identity_hash
        log = AuditLog(self.store, self.key)
        return log.verify().ok and any(
            e.kind == "request.receipt" and (e.data or {}).get("receipt_sha256") == digest
            for e in log.events(subject=subject)
        )


@functools.cache
def _move_statement(columns: tuple[str, ...], guarded: bool) -> Any:
    """`Requests._move`'s UPDATE, built once per set of columns: params p_id, p_current,
    p_since (when `guarded`) and v_<column> for each column set."""
    c = requests.c
    query = sa.update(requests).where(
        c.id == sa.bindparam("p_id"), c.state == sa.bindparam("p_current")
    )
    if guarded:
        query = query.where(c.updated_at == sa.bindparam("p_since", type_=c.updated_at.type))
    return query.values({name: sa.bindparam(f"v_{name}", type_=c[name].type) for name in columns})


def receipt_hash(receipt: Mapping[str, Any]) -> str:
    body = json.dumps(receipt, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(body).hexdigest()


_CODE_TEXT = {
    verify.CodeResult.wrong: "that code is not right; {left} attempts left",
    verify.CodeResult.expired: "that code has expired: ask for a new one",
    verify.CodeResult.used: "that code was already used: ask for a new one",
    verify.CodeResult.locked: "too many wrong codes: ask for a new one",
    verify.CodeResult.none: "no code was sent for this request: ask for one",
}


def _view(row: Any, steps: Sequence[Any]) -> RequestView:
    state = S(row.state)
    return RequestView(
        ref=row.ref,
        kind=row.kind,
        state=state.value,
        status=STATUS_TEXT[state],
        received_at=row.received_at,
        due_at=row.due_at,
        acknowledge_by=row.acknowledge_by,
        verified_at=row.verified_at,
        verified_by=row.verified_by,
        extended=row.extended_at is not None,
        extension_reason=row.extension_reason,
        closed_at=row.closed_at,
        jurisdiction=row.jurisdiction,
        outcome=row.outcome,
        refusal=row.refusal,
        receipt=row.receipt,
        steps=[{"seq": s.seq, "name": s.name, "state": s.state, "result": s.result} for s in steps],
        fee=row.fee,
        paused=row.paused_at is not None,
    )


def _code_channel(who: Identity, methods: set[str]) -> str | None:
    """Where a one-time code goes for this identity, if the policy verifies by code."""
    if who.kind.value == "email" and "email_code" in methods:
        return "email"
    if who.kind.value == "phone" and "phone_code" in methods:
        return "phone"
    return None


def _wait_until(deadline: float) -> None:
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)


def identities_of(values: Iterable[str]) -> list[Identity]:
    return [Identity.parse(v) for v in values]
