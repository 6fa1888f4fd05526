"""A request's states, the moves between them, and what the subject is told of each.

    received → awaiting_verification → verified → [awaiting_approval] → in_progress
        → completed | partially_completed | denied | withdrawn

A request may be denied or withdrawn from any open state; awaiting_clarification pauses
the clock (UK) and returns to where it was; awaiting_fee (an excessive request the policy
lets the controller answer for a fee) waits for the payment, its clock starting again
from it. Closed states are final.
"""

from __future__ import annotations

from enum import StrEnum


class RequestState(StrEnum):
    received = "received"
    awaiting_verification = "awaiting_verification"
    verified = "verified"
    awaiting_approval = "awaiting_approval"
    awaiting_clarification = "awaiting_clarification"
    awaiting_fee = "awaiting_fee"
    in_progress = "in_progress"
    completed = "completed"
    partially_completed = "partially_completed"
    denied = "denied"
    withdrawn = "withdrawn"

    @property
    def closed(self) -> bool:
        return self in CLOSED


CLOSED = frozenset(
    {
        RequestState.completed,
        RequestState.partially_completed,
        RequestState.denied,
        RequestState.withdrawn,
    }
)

S = RequestState
_OPEN_TO_END = {S.denied, S.withdrawn}
# The states before the job runs, where a request can wait on its subject and come back.
_WAITING = {S.awaiting_verification, S.verified, S.awaiting_approval}
MOVES: dict[RequestState, frozenset[RequestState]] = {
    S.received: frozenset({S.awaiting_verification, S.verified, S.awaiting_fee, *_OPEN_TO_END}),
    S.awaiting_verification: frozenset(
        {S.verified, S.awaiting_clarification, S.awaiting_fee, *_OPEN_TO_END}
    ),
    S.verified: frozenset(
        {S.awaiting_approval, S.in_progress, S.awaiting_clarification, S.awaiting_fee}
        | _OPEN_TO_END
    ),
    S.awaiting_approval: frozenset(
        {S.in_progress, S.awaiting_clarification, S.awaiting_fee, *_OPEN_TO_END}
    ),
    S.awaiting_clarification: frozenset({*_WAITING, S.in_progress, *_OPEN_TO_END}),
    S.awaiting_fee: frozenset({*_WAITING, S.in_progress, *_OPEN_TO_END}),
    # Once running, a request ends by its job: withdrawal can no longer undo an erasure.
    S.in_progress: frozenset({S.completed, S.partially_completed, S.denied}),
    S.completed: frozenset(),
    S.partially_completed: frozenset(),
    S.denied: frozenset(),
    S.withdrawn: frozenset(),
}

# Where the privacy team can still ask a fee of an excessive request: before it runs.
FEE_ASKABLE = frozenset({S.awaiting_verification, S.awaiting_approval, S.awaiting_fee})

# What the person sees, in plain words.
STATUS_TEXT: dict[RequestState, str] = {
    S.received: "We have received your request.",
    S.awaiting_verification: (
        "We need to confirm it is you: enter the code we sent you to continue."
    ),
    S.verified: "We have confirmed your identity and will start on your request.",
    S.awaiting_approval: "Your request is being reviewed by our privacy team.",
    S.awaiting_clarification: (
        "We need more information from you to go on; the deadline is paused until you reply."
    ),
    S.awaiting_fee: (
        "Your request goes beyond what we answer free of charge; we will go on once the fee is"
        " paid, and the time we have to answer stands still until then."
    ),
    S.in_progress: "We are working on your request.",
    S.completed: "Your request is complete.",
    S.partially_completed: (
        "Your request is complete, except for the parts the law requires or allows us to keep;"
        " the reasons are listed."
    ),
    S.denied: "We could not carry out your request; the reason is given below.",
    S.withdrawn: "You withdrew this request; nothing more will be done.",
}


class TransitionError(ValueError):
    """A move the lifecycle does not allow (e.g. completing a denied request)."""


def check_move(current: RequestState, new: RequestState) -> None:
    if new not in MOVES[current]:
        allowed = ", ".join(sorted(MOVES[current])) or "none: the request is closed"
        raise TransitionError(
            f"a request that is {current.value} cannot become {new.value} (allowed: {allowed})"
        )
