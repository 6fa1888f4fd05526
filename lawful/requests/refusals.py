"""Refusals and partial answers: the rule that applies, in plain words told to the subject.

Every refusal names its rule and tells the person what they can do about it: complain to
the supervisory authority or go to court (GDPR Art. 12(4); likewise UK GDPR Art. 12(4),
PIPL Art. 50 second paragraph). A refusal text never holds personal data: it is stored
with the request and may be shown to whoever handles it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lawful.policy.model import Policy
from lawful.policy.vocabulary import Fee, RequestException, RequestKind, unknown
from lawful.requests.deadlines import DeadlineError, request_kind

__all__ = [
    "EXCEPTION_TEXT",
    "EXCEPTION_TITLE",
    "FEE_GROUNDS",
    "FEE_TEXT",
    "FEE_UNPAID",
    "KIND_WORDS",
    "Refusal",
    "RefusalError",
    "check_repeat",
    "exception_refusal",
    "fee_amount",
    "fee_ground",
    "fee_text",
    "fee_unpaid",
    "policy_fee",
    "request_exception",
]

MAX_DETAIL = 1000


class RefusalError(ValueError):
    """A refusal lawful cannot give as asked; the message says why and what to use instead."""


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused or answered in part.

    `rule` is the machine name ("repeat_limit", or a `RequestException` value); `text`
    is what the subject is told; `fee` is the `Fee` the policy lets the controller charge
    to answer anyway (None: refused outright).
    """

    rule: str
    text: str
    fee: str | None = None


# The rule's name as the subject reads it.
EXCEPTION_TITLE: dict[RequestException, str] = {
    RequestException.legal_obligation: "a legal obligation",
    RequestException.national_security: "national security",
    RequestException.public_interest: "the public interest",
    RequestException.crime_investigation: "the investigation of crime",
    RequestException.legal_claims: "legal claims",
    RequestException.abuse_of_rights: "abuse of rights",
    RequestException.vital_interests: "the protection of life and safety",
    RequestException.others_rights: "the rights of other people",
    RequestException.trade_secret: "trade secrets",
    RequestException.confidentiality: "confidentiality",
    RequestException.manifestly_unfounded: "a manifestly unfounded request",
    RequestException.excessive: "an excessive request",
    RequestException.impractical: "disproportionate effort",
    RequestException.not_required_by_law: "no such right in your law",
}

# What each ground means, in plain words (Seestar V.6 (1)-(8); GDPR Arts. 12(5), 17(3),
# 23; UK DPA 2018 Sch. 2-4; CCPA §1798.105(d), §1798.145; PIPL Art. 18 and 47).
EXCEPTION_TEXT: dict[RequestException, str] = {
    RequestException.legal_obligation: (
        "The law requires us to keep or use this information, for example tax and "
        "accounting records, so we cannot do what you asked with it."
    ),
    RequestException.national_security: (
        "Doing what you asked would harm national security or national defence, which the "
        "law protects."
    ),
    RequestException.public_interest: (
        "We use this information for a task in the public interest, such as public health "
        "or public safety, and doing what you asked would seriously harm that task."
    ),
    RequestException.crime_investigation: (
        "Doing what you asked could harm the prevention, investigation or prosecution of a "
        "crime, or the carrying out of a court judgment."
    ),
    RequestException.legal_claims: (
        "We need this information to establish, bring or defend a legal claim, and the law "
        "lets us keep it for that."
    ),
    RequestException.abuse_of_rights: (
        "We have clear evidence that the request is made in bad faith or to abuse the right, "
        "and the law lets us decline it."
    ),
    RequestException.vital_interests: (
        "Doing what you asked would put at risk the life, health or property of you or "
        "someone else, at a time when we cannot reach the person concerned."
    ),
    RequestException.others_rights: (
        "Doing what you asked would reveal information about other people or harm their "
        "rights, so we have left out or kept what concerns them."
    ),
    RequestException.trade_secret: (
        "Doing what you asked would reveal our trade secrets, which the law protects."
    ),
    RequestException.confidentiality: (
        "The information is covered by a duty of confidentiality, such as legal "
        "professional privilege, so we cannot disclose or change it."
    ),
    RequestException.manifestly_unfounded: (
        "The request is manifestly unfounded: it does not seek to exercise a privacy right, "
        "for example it is made only to cause disruption."
    ),
    RequestException.excessive: (
        "The request is excessive, for example because it repeats or overlaps requests we "
        "answered recently."
    ),
    RequestException.impractical: (
        "Doing what you asked would take a disproportionate effort or technical means that "
        "are not reasonably available."
    ),
    RequestException.not_required_by_law: (
        "The law that applies to you does not give a right to this request, and we do not "
        "offer it otherwise."
    ),
}

# What charging each fee means, for the subject.
FEE_TEXT: dict[Fee, str] = {
    Fee.reasonable_fee: "a reasonable fee based on the administrative cost of answering",
    Fee.cost_fee: "a fee covering the cost of answering",
}

# A request kind as the subject reads it ("this ... request").
KIND_WORDS: dict[RequestKind, str] = {
    RequestKind.confirm: "confirmation",
    RequestKind.access: "access",
    RequestKind.portability: "portability",
    RequestKind.rectification: "rectification",
    RequestKind.erasure: "erasure",
    RequestKind.account_closure: "account closure",
    RequestKind.restriction: "restriction",
    RequestKind.objection: "objection",
    RequestKind.withdraw_consent: "consent withdrawal",
    RequestKind.opt_out_sale: "opt-out of sale",
    RequestKind.restrict_recipients: "third-party restriction",
    RequestKind.explain_decision: "decision explanation",
    RequestKind.information: "information",
}

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def _day(value: datetime) -> str:
    """'1 March 2026', whatever the process locale."""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


# The grounds under which the policy's fee.when_excessive may apply instead of refusing.
_EXCESSIVE = frozenset({RequestException.excessive, RequestException.manifestly_unfounded})


def request_exception(exception: RequestException | str) -> RequestException:
    """The `RequestException` for a ground or its name; a wrong name raises with a did-you-mean."""
    if isinstance(exception, RequestException):
        return exception
    try:
        return RequestException(exception)
    except ValueError:
        raise RefusalError(
            unknown(exception, "a ground for refusal", [e.value for e in RequestException])
        ) from None


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise RefusalError(
            f"{name} must be a timezone-aware datetime, e.g. datetime.now(UTC); got {value!r}"
        )
    return value.astimezone(UTC)


def _complain(policy: Policy) -> str:
    authority = policy.controller.supervisory_authority
    if authority is not None:
        where = authority.name + (f" ({authority.url})" if authority.url else "")
    else:
        where = "the data protection authority where you live or work"
    return f"If you disagree, you can complain to {where} or go to court."


def _fee(policy: Policy) -> Fee | None:
    fee = policy.requests.fee.when_excessive
    return fee if fee in FEE_TEXT else None


def check_repeat(
    policy: Policy, kind: RequestKind | str, earlier: Sequence[datetime], now: datetime
) -> Refusal | None:
    """A refusal when this request goes over the policy's repeat limit, else None.

    `earlier` are the times of the same person's earlier requests of this `kind`; those
    whose period (`requests.repeat_limit.per`, counted from each) has not ended at `now`
    count. When the policy lets a fee be charged for excessive requests
    (`requests.fee.when_excessive`), the refusal says the request can go ahead for it.
    """
    try:
        kind = request_kind(kind)
    except DeadlineError as error:
        raise RefusalError(str(error)) from None
    now = _utc(now, "now")
    limit = policy.requests.repeat_limit
    if limit is None:
        return None
    ends = sorted(limit.per.add_to(_utc(at, "an earlier request's time")) for at in earlier)
    live = [end for end in ends if end > now]
    if len(live) < limit.count:
        return None
    # free again once enough earlier requests fall out of the period
    free_from = live[len(live) - limit.count]
    times = "once" if limit.count == 1 else "twice" if limit.count == 2 else f"{limit.count} times"
    text = (
        f"You have already made this {KIND_WORDS[kind]} request {times} within "
        f"{limit.per}, the limit in our privacy policy; the law lets us treat more requests "
        "as excessive."
    )
    fee = _fee(policy)
    if fee is not None:
        text += f" We can still answer it if you agree to pay {FEE_TEXT[fee]}."
    text += f" You can make it again free of charge from {_day(free_from)}. {_complain(policy)}"
    return Refusal(rule="repeat_limit", text=text, fee=fee.value if fee else None)


def exception_refusal(
    policy: Policy, exception: RequestException | str, detail: str | None = None
) -> Refusal:
    """A refusal (or partial answer) on a ground the policy lists in requests.exceptions.

    `detail` adds the facts of this case in plain words (no personal data: it is stored
    and shown). A ground the policy does not list is an error naming those it does.
    """
    ground = request_exception(exception)
    listed = list(policy.requests.exceptions)
    if ground not in listed:
        names = ", ".join(e.value for e in listed)
        hint = (
            f"it lists: {names}"
            if listed
            else "it lists none; add the ground to requests.exceptions first"
        )
        raise RefusalError(
            f"the policy does not list '{ground.value}' as a ground for refusal, so it cannot "
            f"be used; {hint}"
        )
    if detail is not None:
        if not isinstance(detail, str):
            raise RefusalError(f"detail must be a text, got {type(detail).__name__}")
        detail = " ".join(detail.split())
        if len(detail) > MAX_DETAIL:
            raise RefusalError(
                f"the detail is {len(detail)} characters long; keep it to {MAX_DETAIL} at most"
            )
        if detail and detail[-1] not in ".!?":
            detail += "."
    parts = [
        f"We could not do all you asked, because of {EXCEPTION_TITLE[ground]}.",
        EXCEPTION_TEXT[ground],
    ]
    if detail:
        parts.append(detail)
    # A refusal is final: where the policy allows a fee, the privacy team asks for it
    # instead (`Requests.charge_fee`), and the request waits rather than closes.
    parts.append(_complain(policy))
    return Refusal(rule=ground.value, text=" ".join(parts))


# --- fees ----------------------------------------------------------------------------------

FEE_UNPAID = "fee_unpaid"  # the rule of a request closed because its fee was not paid
FEE_GROUNDS = ("repeat_limit", *sorted(e.value for e in _EXCESSIVE))
_AMOUNT = re.compile(r"([A-Z]{3}) ?([0-9]{1,9}(?:\.[0-9]{1,2})?)")
_GROUND_WORDS = {
    "repeat_limit": "repeated beyond the limit in our privacy policy",
    RequestException.excessive.value: "excessive",
    RequestException.manifestly_unfounded.value: "manifestly unfounded",
}


def policy_fee(policy: Policy) -> Fee:
    """The fee the policy lets the controller charge for an excessive request; an error
    when it charges none (then such a request can only be answered or refused)."""
    fee = _fee(policy)
    if fee is None:
        raise RefusalError(
            "the policy charges no fee for excessive requests (requests.fee.when_excessive "
            "is free): answer the request, or refuse it with deny"
        )
    return fee


def fee_amount(amount: str) -> str:
    """`amount` as the person is told it: a currency code and a sum, e.g. 'EUR 25'."""
    found = _AMOUNT.fullmatch(amount.strip().upper()) if isinstance(amount, str) else None
    if found is None:
        raise RefusalError(
            "give the fee as a currency code and a sum, e.g. 'EUR 25' or 'CNY 50.00'"
        )
    return f"{found[1]} {found[2]}"


def fee_ground(ground: str) -> str:
    """A ground a fee may be charged on: the repeat limit, or excessive / manifestly unfounded."""
    if ground not in FEE_GROUNDS:
        raise RefusalError(unknown(ground, "a ground for a fee", list(FEE_GROUNDS)))
    return ground


def fee_text(policy: Policy, ground: str, amount: str | None) -> str:
    """What the person is told when asked for the fee (no personal data)."""
    fee = policy_fee(policy)
    price = f"{amount}, {FEE_TEXT[fee]}" if amount else FEE_TEXT[fee]
    return (
        f"Your request is {_GROUND_WORDS[fee_ground(ground)]}; our privacy policy and the "
        f"law let us answer it for a fee: {price}. We will go on once it is paid; the time "
        "we have to answer stands still until then."
    )


def fee_unpaid(policy: Policy, ground: str, amount: str | None) -> Refusal:
    """The refusal of a request whose fee was not paid."""
    price = amount or FEE_TEXT[policy_fee(policy)]
    text = (
        f"We asked for a fee ({price}) to answer this request, as it is "
        f"{_GROUND_WORDS[fee_ground(ground)]}, and it was not paid; so we have not carried "
        f"it out. {_complain(policy)}"
    )
    return Refusal(rule=FEE_UNPAID, text=text)
