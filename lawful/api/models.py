"""The bodies the HTTP API takes and the answers it gives (pydantic models).

A subject is named by an identity, as everywhere in lawful: `email:alice@example.com`,
`phone:+3725551234`, `account:42`, `device:…`, `customer:…`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BIGINT = 2**63 - 1  # the largest integer a store column holds; larger is refused, not a 500

Identity = Field(
    min_length=1,
    max_length=320,
    description="The subject's identity, e.g. email:alice@example.com",
    examples=["email:alice@example.com"],
)


class Body(BaseModel):
    # An unknown field is a typo the caller wants to hear about, not silently ignored.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorOut(BaseModel):
    """Every error: a stable `code` for programs, a `message` for people, the `field` at fault."""

    code: str = Field(examples=["name.unknown"])
    message: str
    field: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        None, description="Every problem found, when the body had several (validation errors)"
    )


# -- decisions ---------------------------------------------------------------------------


class DecisionOptions(Body):
    channel: str | None = Field(None, description="A marketing channel, e.g. email")
    list_name: str | None = Field(None, alias="list", description="A marketing list")
    jurisdiction: str | None = Field(
        None, description="eu, uk, us-ca, cn, … (default: the subject's)"
    )
    recipient: str | None = Field(None, description="A recipient the data would go to")
    gpc: bool = Field(False, description="The person's browser sent Global Privacy Control")
    dnt: bool = Field(False, description="The person's browser sent Do Not Track")


class DecisionIn(DecisionOptions):
    subject: str = Identity
    purpose: str = Field(min_length=1, max_length=100, examples=["marketing_email"])


class BatchDecisionIn(DecisionOptions):
    subjects: list[str] = Field(min_length=1, max_length=10_000)
    purpose: str = Field(min_length=1, max_length=100)


class DecisionOut(BaseModel):
    allowed: bool
    purpose: str
    basis: str | None
    rule: str = Field(description="A stable code: consent.given, signal.gpc, …")
    reason: str
    jurisdiction: str | None = None
    signal: str | None = None


class BatchDecisionOut(BaseModel):
    decisions: list[DecisionOut] = Field(description="In the order of the subjects given")
    allowed: int
    refused: int


# -- consents and preferences ------------------------------------------------------------


class ConsentIn(Body):
    subject: str = Identity
    purpose: str = Field(min_length=1, max_length=100)
    action: Literal["give", "withdraw", "refuse"]
    channel: str | None = None
    list_name: str | None = Field(None, alias="list")
    method: str = Field("api", description="form, checkbox, banner, import, api, written, …")
    language: str | None = Field(None, max_length=20)
    notice_hash: str | None = Field(None, description="sha256 (hex) of the notice shown")
    jurisdiction: str | None = None
    evidence: dict[str, Any] | None = None
    parent: str | None = Field(None, description="A parent's identity, consenting for a child")


class ConsentRecordOut(BaseModel):
    record: str
    subject: str = Field(description="The subject's opaque ref")
    topic: str
    key: str
    scope: str | None
    state: str
    method: str
    at: datetime
    expires_at: datetime | None
    policy_version: int | None


class ConsentStateOut(BaseModel):
    known: bool = Field(description="Whether any choice of this subject is recorded")
    decisions: list[DecisionOut]
    history: list[ConsentRecordOut]


class PreferencesIn(Body):
    channels: dict[str, bool] = Field(
        default_factory=dict, description="Marketing by channel: true receives, false stops"
    )
    lists: dict[str, bool] = Field(
        default_factory=dict, description="Marketing lists ('*': every list): true subscribed"
    )
    cookies: dict[str, bool] = Field(
        default_factory=dict, description="Cookie categories: true accepted"
    )
    opt_outs: dict[str, bool] = Field(
        default_factory=dict,
        description="sale, share, targeted_advertising, ad_tracking: true opted out",
    )
    method: str = "api"


class PreferencesOut(BaseModel):
    """Every choice the policy offers; null where the subject has made none."""

    channels: dict[str, bool | None]
    lists: dict[str, bool | None]
    cookies: dict[str, bool | None]
    opt_outs: dict[str, bool | None]
    records: list[str] = Field(default_factory=list, description="Records written by this call")


# -- requests ----------------------------------------------------------------------------


class OnBehalfIn(Body):
    """Someone asking for the subject: an authorised agent (CCPA) or a child's parent.

    The subject is still verified as for their own request; only the actor's keyed hash
    is stored, never their identity.
    """

    role: Literal["agent", "parent"]
    actor: str = Field(
        min_length=1,
        max_length=320,
        description="Who asks: their identity (only its keyed hash is stored)",
        examples=["email:agent@firm.example"],
    )
    proof: str = Field(
        min_length=1,
        max_length=500,
        description="What they showed, in at most 200 characters once spaces are collapsed",
        examples=["signed permission", "birth certificate"],
    )
    document_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="The SHA-256 (lowercase hex) of the document they showed, if one is kept",
    )


class RequestIn(Body):
    kind: str = Field(examples=["access", "erasure"])
    identity: str = Identity
    jurisdiction: str | None = None
    params: dict[str, Any] | None = None
    assertion: str | None = Field(None, description="A signed-in assertion from your app")
    on_behalf: OnBehalfIn | None = Field(
        None, description="Set when an authorised agent or a parent asks for the subject"
    )


class IntakeOut(BaseModel):
    """The same shape and values (but the ref) whoever the identity belongs to."""

    ref: str
    state: str
    status: str
    due_at: datetime
    code_sent_to: str | None = Field(description="The channel the code went to, never the address")


class VerifyIn(Body):
    code: str = Field(min_length=1, max_length=20)


class FeeOut(BaseModel):
    """The fee asked for an excessive request, as the person sees it (not who saw it paid)."""

    fee: str = Field(description="reasonable_fee or cost_fee, as the policy says")
    ground: str = Field(description="repeat_limit, excessive or manifestly_unfounded")
    amount: str | None = Field(description="As the person was told it, e.g. EUR 25")
    asked_at: datetime | None = None
    paid_at: datetime | None = None


class RequestStatusOut(BaseModel):
    """What the person who asked sees: no personal data."""

    ref: str
    kind: str
    state: str
    status: str
    received_at: datetime
    due_at: datetime
    extended: bool
    extension_reason: str | None
    closed_at: datetime | None
    refusal: dict[str, Any] | None
    fee: FeeOut | None = Field(None, description="The fee asked for an excessive request")
    paused: bool = Field(False, description="Whether the deadline's clock stands still")


class RequestOut(RequestStatusOut):
    """What the privacy team sees."""

    fee: dict[str, Any] | None = Field(  # type: ignore[assignment]
        None, description="The fee: ground, amount, asked_at, paid_at, paid_by"
    )

    acknowledge_by: datetime | None
    verified_at: datetime | None
    verified_by: str | None
    jurisdiction: str | None
    outcome: dict[str, Any] | None
    receipt: dict[str, Any] | None
    steps: list[dict[str, Any]]
    overdue: bool


class ApproveIn(Body):
    by: str | None = Field(None, max_length=200, description="Who approves (default: the key)")


class DenyIn(Body):
    rule: str = Field(description="A ground the policy lists in requests.exceptions, or fee_unpaid")
    detail: str | None = Field(None, max_length=2000)


class ClarifyIn(Body):
    question: str = Field(min_length=1, max_length=1000, description="Sent to the person")


class ChargeIn(Body):
    amount: str = Field(
        min_length=1, max_length=40, description="The fee with its currency", examples=["EUR 25"]
    )
    ground: str | None = Field(
        None, description="excessive or manifestly_unfounded (default: as recorded)"
    )


class FeePaidIn(Body):
    by: str | None = Field(None, max_length=200, description="Who saw it (default: the key)")


class ExtendIn(Body):
    reason: str = Field(min_length=1, max_length=2000, description="Told to the person")


# -- disclosures, incidents, audit, keys -------------------------------------------------


class DisclosureIn(Body):
    subject: str = Identity
    recipient: str
    categories: list[str] = Field(min_length=1)
    purpose: str
    jurisdiction: str | None = None
    at: datetime | None = None


class DisclosureOut(BaseModel):
    allowed: bool
    recipient: str
    purpose: str
    categories: list[str]
    rule: str
    reason: str
    at: datetime
    subject: str | None
    ref: str | None
    batch: str | None
    deidentify: bool
    transfer: dict[str, Any] | None


class IncidentIn(Body):
    discovered_at: datetime
    summary: str = Field(min_length=1, max_length=10_000)
    tables: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    systems: list[str] = Field(default_factory=list)
    people_estimate: int | None = Field(None, ge=0, le=MAX_BIGINT)
    high_risk: bool | None = None
    jurisdictions: list[str] | None = None
    consequences: str | None = None


class IncidentOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    number: int
    ref: str
    state: str
    summary: str
    discovered_at: datetime
    subjects_count: int
    deadlines: list[dict[str, Any]]
    events: list[dict[str, Any]]
    overdue: bool


class VerificationOut(BaseModel):
    controller: str
    ok: bool
    checked: int
    head: int
    broken: dict[str, Any] | None


class EventOut(BaseModel):
    seq: int
    at: datetime
    kind: str
    subject: str | None
    data: dict[str, Any] | None
    prev_hash: str
    hash: str


class KeyOut(BaseModel):
    ref: str
    name: str | None
    scope: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    active: bool
