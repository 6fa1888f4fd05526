"""Decisions: may purpose P use subject S's data now, and why (or why not).

The policy is compiled once into one `PurposeRule` per purpose; a decision is then a
handful of dictionary lookups on the subject's current choices (`SubjectState`), so
an application can ask thousands of times a second. The rules, in the order they are
applied (the first that refuses gives the reason):

1. restriction of processing (GDPR Art. 18): only storage and legal claims go on;
2. age: below the policy's minimum age its rule applies (refuse, or parental consent);
   for consent purposes, below the law's age of digital consent a parent must consent;
3. objection (Art. 21): stops legitimate-interest and public-interest purposes, and
   every direct-marketing purpose whatever its basis;
4. opt-outs of sale, sharing and targeted advertising (CCPA; Selro's "limit ad
   tracking"), and the signals: Global Privacy Control where the policy or the
   subject's law honours it, Do Not Track where the policy says so;
5. recipients: declared for the purpose, and not restricted by the subject;
6. marketing channels and lists the subject left (transactional messages never stop);
7. cookie categories the purpose relies on must be accepted;
8. the lawful basis in the subject's jurisdiction; for consent, a consent that is
   given, not expired, and given under a policy version at or after the last one that
   changed the purpose materially.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from lawful.consent.records import Status
from lawful.policy.jurisdictions import get_jurisdiction
from lawful.policy.model import Policy, Purpose
from lawful.policy.vocabulary import Basis, BelowMinAge, SignalHandling, unknown

MARKETING_OBJECTION = "*marketing"  # the objection key for all direct marketing
OPT_OUTS = ("sale", "share", "targeted_advertising", "ad_tracking")

# Uses that continue under a restriction of processing (storage, and legal claims or
# obligations: GDPR Art. 18(2)).
_RESTRICTION_USES = (
    "functional.storage",
    "essential.legal_obligation",
    "third_party_sharing.legal_obligation",
)
_RESTRICTION_BASES = frozenset(
    {Basis.legal_obligation, Basis.vital_interests, Basis.public_interest}
)
# Uses that track people, which Do Not Track stops where the policy honours it.
_TRACKING_USES = (
    "analytics",
    "marketing.advertising",
    "personalize.profiling",
    "personalize.content.profil",
)
_OBJECTABLE = frozenset({Basis.legitimate_interests, Basis.public_interest})

_BASIS_WORDS = {
    Basis.consent: "consent",
    Basis.contract: "the performance of a contract",
    Basis.legal_obligation: "a legal obligation",
    Basis.vital_interests: "vital interests",
    Basis.public_interest: "a task in the public interest",
    Basis.legitimate_interests: "legitimate interests",
}
# Where each law states the basis; a law without one (the CCPA) is not cited.
_CITATIONS = {
    "eu": {
        Basis.consent: "GDPR Art. 6(1)(a)",
        Basis.contract: "GDPR Art. 6(1)(b)",
        Basis.legal_obligation: "GDPR Art. 6(1)(c)",
        Basis.vital_interests: "GDPR Art. 6(1)(d)",
        Basis.public_interest: "GDPR Art. 6(1)(e)",
        Basis.legitimate_interests: "GDPR Art. 6(1)(f)",
    },
    "cn": {
        Basis.consent: "PIPL Art. 13(1)",
        Basis.contract: "PIPL Art. 13(2)",
        Basis.legal_obligation: "PIPL Art. 13(3)",
        Basis.vital_interests: "PIPL Art. 13(4)",
        Basis.public_interest: "PIPL Art. 13(5)",
    },
    "br": {
        Basis.consent: "LGPD Art. 7(I)",
        Basis.legal_obligation: "LGPD Art. 7(II)",
        Basis.public_interest: "LGPD Art. 7(III)",
        Basis.contract: "LGPD Art. 7(V)",
        Basis.vital_interests: "LGPD Art. 7(VII)",
        Basis.legitimate_interests: "LGPD Art. 7(IX)",
    },
}
_CITATIONS["uk"] = {b: f"UK {c}" for b, c in _CITATIONS["eu"].items()}


class UnknownName(ValueError):
    """A purpose, channel, list, recipient or jurisdiction the policy does not declare."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one subject and purpose, with the rule that decided it.

    `rule` is a stable code for programs (`consent.withdrawn`, `signal.gpc`, ...);
    `reason` says the same in words a DPO would use; `signal` names the browser signal
    that applied, if one did.
    """

    allowed: bool
    purpose: str
    basis: Basis | None
    rule: str
    reason: str
    jurisdiction: str | None = None
    signal: str | None = None

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "purpose": self.purpose,
            "basis": str(self.basis) if self.basis else None,
            "rule": self.rule,
            "reason": self.reason,
            "jurisdiction": self.jurisdiction,
            "signal": self.signal,
        }


@dataclass(frozen=True, slots=True)
class Signals:
    """Browser privacy signals sent with a request."""

    gpc: bool = False  # Global Privacy Control, `Sec-GPC: 1`
    dnt: bool = False  # Do Not Track, `DNT: 1`

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Signals:
        """Read `Sec-GPC` and `DNT` from HTTP request headers (names in any case)."""
        lowered = {k.lower(): v.strip() for k, v in headers.items()}
        return cls(gpc=lowered.get("sec-gpc") == "1", dnt=lowered.get("dnt") == "1")


NO_SIGNALS = Signals()


class Choice(NamedTuple):
    """A subject's current choice on one topic (the newest ledger record)."""

    state: str
    method: str
    expires_at: datetime | None
    policy_version: int | None

    def permits(self, now: datetime) -> bool:
        return self.state in _PERMITTING and (self.expires_at is None or self.expires_at > now)


_PERMITTING = frozenset({Status.given.value, Status.renewed.value})


@dataclass(slots=True)
class SubjectState:
    """What decisions need to know about one subject: attributes and current choices."""

    subject_id: int | None = None  # None: nobody with that identity is known
    ref: str | None = None
    kind: str | None = None
    jurisdiction: str | None = None
    country: str | None = None
    birth_date: date | None = None
    choices: dict[tuple[str, str, str], Choice] = field(default_factory=dict)

    def get(self, topic: str, key: str, scope: str = "") -> Choice | None:
        return self.choices.get((topic, key, scope))


UNKNOWN_SUBJECT = SubjectState()

Refuse = Callable[..., Decision]  # builds a refusal: (rule code, reason, signal=None)


@dataclass(frozen=True, slots=True)
class AgeRule:
    min_age: int
    below: frozenset[BelowMinAge]


@dataclass(slots=True)
class PurposeRule:
    """One purpose of the policy, compiled for fast decisions."""

    name: str
    basis: Basis
    bases: dict[str, Basis]
    marketing: bool
    transactional: bool
    channels: frozenset[str]
    lists: frozenset[str]
    sale: bool
    share: bool
    targeted: bool
    tracking: bool
    restriction_ok_uses: bool
    recipients: frozenset[str]
    sale_recipients: frozenset[str]
    share_recipients: frozenset[str]
    cookies: tuple[str, ...]  # optional cookie categories it relies on
    subjects: tuple[str, ...]
    renew_from: int = 0  # consent given under an older policy version must be renewed
    # Precomputed answers for the common cases, per jurisdiction key ("" = default).
    allowed: dict[str, Decision] = field(default_factory=dict)

    def basis_in(self, jurisdiction: str | None) -> Basis:
        if jurisdiction is None:
            return self.basis
        return self.bases.get(jurisdiction, self.basis)


class Decider:
    """The policy compiled into rules; `decide` answers for one subject state."""

    def __init__(self, policy: Policy, renew_from: Mapping[str, int] | None = None) -> None:
        self.policy = policy
        self.gpc_everywhere = policy.signals.gpc == SignalHandling.honor
        self.dnt = policy.signals.dnt == SignalHandling.honor
        self.jurisdictions = tuple(str(j) for j in policy.jurisdictions)
        self.default_jurisdiction = self.jurisdictions[0] if len(self.jurisdictions) == 1 else None
        self.gpc_required = {j: get_jurisdiction(j).gpc_required for j in self.jurisdictions}
        self.rules = {name: self._compile(name, p) for name, p in policy.purposes.items()}
        self.channels = frozenset(str(c) for p in policy.purposes.values() for c in p.channels)
        self.set_renewals(renew_from or {})

    # -- compiling the policy -----------------------------------------------------------

    def set_renewals(self, renew_from: Mapping[str, int]) -> None:
        """Per purpose, the policy version from which consent must have been given."""
        for name, rule in self.rules.items():
            rule.renew_from = renew_from.get(name, 0)

    def _compile(self, name: str, purpose: Purpose) -> PurposeRule:
        policy = self.policy
        use = str(purpose.use)
        declared = set(purpose.recipients) | {
            r for r, recipient in policy.recipients.items() if name in recipient.purposes
        }
        targeted = purpose.targeted_advertising or "targeted" in use
        rule = PurposeRule(
            name=name,
            basis=purpose.basis,
            bases={str(j): b for j, b in purpose.basis_by_jurisdiction.items()},
            marketing=use.startswith("marketing"),
            transactional=name in policy.marketing.transactional,
            channels=frozenset(str(c) for c in purpose.channels),
            lists=frozenset(purpose.lists),
            sale=purpose.sale,
            share=purpose.share,
            targeted=targeted,
            tracking=targeted or purpose.sale or purpose.share or use.startswith(_TRACKING_USES),
            restriction_ok_uses=use.startswith(_RESTRICTION_USES),
            recipients=frozenset(declared),
            sale_recipients=frozenset(r for r in declared if policy.recipients[r].sale),
            share_recipients=frozenset(r for r in declared if policy.recipients[r].share),
            cookies=tuple(c for c in purpose.cookies if c in _optional_cookies(policy)),
            subjects=tuple(purpose.subjects),
        )
        for jurisdiction in ("", *self.jurisdictions):
            basis = rule.basis_in(jurisdiction or None)
            rule.allowed[jurisdiction] = Decision(
                True,
                name,
                basis,
                f"basis.{basis}",
                _allowed_reason(basis, jurisdiction or None),
                jurisdiction or None,
            )
        return rule

    def rule(self, purpose: str) -> PurposeRule:
        try:
            return self.rules[purpose]
        except KeyError:
            raise UnknownName(
                unknown(purpose, "a purpose of the policy", sorted(self.rules))
            ) from None

    def age_rule(
        self, state: SubjectState, rule: PurposeRule, jurisdiction: str | None
    ) -> AgeRule | None:
        """The minimum age that applies to this subject, and what happens below it.

        The subject's kind decides; when it is unknown, the strictest kind the purpose
        concerns (or any kind of the policy) applies.
        """
        kinds = self.policy.subjects
        names = [state.kind] if state.kind in kinds else list(rule.subjects or kinds)
        found: AgeRule | None = None
        for name in names:
            kind = kinds[name]
            age = (
                kind.min_age_by_jurisdiction.get(jurisdiction, kind.min_age)
                if jurisdiction
                else kind.min_age
            )
            if age is not None and (found is None or age > found.min_age):
                found = AgeRule(age, frozenset(kind.below_min_age))
        return found

    # -- deciding ----------------------------------------------------------------------

    def check_jurisdiction(self, jurisdiction: str) -> None:
        get_jurisdiction(jurisdiction)  # raises with the known keys

    def decide(
        self,
        state: SubjectState,
        purpose: str,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        jurisdiction: str | None = None,
        recipient: str | None = None,
        signals: Signals = NO_SIGNALS,
        now: datetime | None = None,
    ) -> Decision:
        """The decision about `purpose` for a subject in `state`.

        It depends on the state's attributes and choices only, never on who the subject
        is (`subject_id`, `ref`): batch decisions (lawful.consent.batch) give subjects in
        one state the same answer, and must learn of anything new this reads.
        """
        rule = self.rules.get(purpose) or self.rule(purpose)
        j = jurisdiction or state.jurisdiction or self.default_jurisdiction
        basis = rule.basis_in(j)
        choices = state.choices
        if now is None:
            now = datetime.now(UTC)

        def no(code: str, reason: str, signal: str | None = None) -> Decision:
            return Decision(False, purpose, basis, code, reason, j, signal)

        # 1. restriction of processing
        restriction = choices.get(("restriction", "*", "")) if choices else None
        if (
            restriction is not None
            and not restriction.permits(now)
            and not (rule.restriction_ok_uses or basis in _RESTRICTION_BASES)
        ):
            return no(
                "restriction",
                "processing is restricted at the subject's request (GDPR Art. 18): only "
                "storage and what legal claims or obligations need may continue",
            )

        # 2. age
        if state.birth_date is not None:
            refused = self._age(state, rule, basis, j, now, no)
            if refused is not None:
                return refused

        # 3. objection
        if choices and (rule.marketing or basis in _OBJECTABLE) and not rule.transactional:
            objection = choices.get(("objection", purpose, ""))
            if objection is not None and not objection.permits(now):
                return no(
                    "objection",
                    "the subject objected to this purpose (GDPR Art. 21)"
                    + (
                        "; an objection to direct marketing always prevails"
                        if rule.marketing
                        else ""
                    ),
                )
            if rule.marketing:
                objection = choices.get(("objection", MARKETING_OBJECTION, ""))
                if objection is not None and not objection.permits(now):
                    return no(
                        "objection",
                        "the subject objected to all direct marketing (GDPR Art. 21(2)-(3)), "
                        "which always prevails",
                    )

        # 4. recipients, opt-outs and signals
        sale, share = rule.sale, rule.share
        if recipient is not None:
            if recipient not in rule.recipients:
                if recipient not in self.policy.recipients:
                    raise UnknownName(
                        unknown(
                            recipient, "a recipient of the policy", sorted(self.policy.recipients)
                        )
                    )
                return no(
                    "recipient.not_declared",
                    f"recipient '{recipient}' is not declared for purpose '{purpose}' in the policy",
                )
            sale = sale or recipient in rule.sale_recipients
            share = share or recipient in rule.share_recipients
            restricted = choices.get(("recipient", recipient, "")) if choices else None
            if restricted is not None and not restricted.permits(now):
                return no(
                    "recipient.restricted",
                    f"the subject asked that their data not go to recipient '{recipient}'",
                )
        if sale or share or rule.targeted:
            refused = self._opt_outs(rule, sale, share, choices, signals, j, now, no)
            if refused is not None:
                return refused
        if signals.dnt and self.dnt and rule.tracking:
            return no(
                "signal.dnt",
                "the browser sent Do Not Track, which the policy honours for tracking purposes",
                "dnt",
            )

        # 5. marketing channels and lists
        if rule.marketing and not rule.transactional:
            if channel is not None:
                if channel not in self.channels:
                    raise UnknownName(
                        unknown(channel, "a channel of the policy", sorted(self.channels))
                    )
                if channel not in rule.channels:
                    return no(
                        "channel.not_declared",
                        f"purpose '{purpose}' is not declared for the {channel} channel"
                        + (
                            f" (declared: {', '.join(sorted(rule.channels))})"
                            if rule.channels
                            else ""
                        ),
                    )
                left = choices.get(("channel", channel, "")) if choices else None
                if left is not None and not left.permits(now):
                    return no(
                        "channel.unsubscribed",
                        f"the subject unsubscribed from marketing by {channel}",
                    )
            if list_name is not None:
                if list_name not in self.policy.marketing.lists:
                    raise UnknownName(
                        unknown(
                            list_name,
                            "a marketing list of the policy",
                            sorted(self.policy.marketing.lists),
                        )
                    )
                if list_name not in rule.lists:
                    return no(
                        "list.not_declared",
                        f"list '{list_name}' is not a list of purpose '{purpose}'",
                    )
                for key in (list_name, "*"):
                    left = choices.get(("list", key, "")) if choices else None
                    if left is not None and not left.permits(now):
                        return no(
                            "list.unsubscribed",
                            "the subject unsubscribed from every list"
                            if key == "*"
                            else f"the subject unsubscribed from list '{list_name}'",
                        )

        # 6. cookies the purpose relies on
        for category in rule.cookies:
            accepted = choices.get(("cookie", category, "")) if choices else None
            if accepted is None or not accepted.permits(now):
                return no(
                    "cookie.not_accepted",
                    f"the subject has not accepted '{category}' cookies, which this purpose needs",
                )

        # 7. the lawful basis
        if basis is Basis.consent:
            return self._consent(rule, state, purpose, channel, list_name, j, now, no)
        return rule.allowed.get(j or "") or rule.allowed[""]

    def _age(
        self,
        state: SubjectState,
        rule: PurposeRule,
        basis: Basis,
        j: str | None,
        now: datetime,
        no: Refuse,
    ) -> Decision | None:
        assert state.birth_date is not None
        age = _age_on(state.birth_date, now.date())
        found = self.age_rule(state, rule, j)
        parent = state.choices.get(("parental", "*", ""))
        has_parent = parent is not None and parent.permits(now)
        if found is not None and age < found.min_age:
            if BelowMinAge.parental_consent in found.below:
                if not has_parent:
                    return no(
                        "age.parental_consent_missing",
                        f"the subject is {age}, under the policy's minimum age of "
                        f"{found.min_age}, and no parent's consent is recorded",
                    )
            else:
                extra = (
                    "; their data is to be deleted on discovery"
                    if BelowMinAge.delete_on_discovery in found.below
                    else ""
                )
                return no(
                    "age.below_minimum",
                    f"the subject is {age}, under the policy's minimum age of {found.min_age}{extra}",
                )
        if basis is Basis.consent and j is not None:
            law_age = get_jurisdiction(j).consent_age(state.country)
            if law_age is not None and age < law_age:
                given = state.choices.get(("consent", rule.name, ""))
                if given is None or given.method != "parent":
                    return no(
                        "age.parental_consent_missing",
                        f"the subject is {age}, under the age of digital consent in {j} "
                        f"({law_age}): a parent must give this consent",
                    )
        return None

    def _opt_outs(
        self,
        rule: PurposeRule,
        sale: bool,
        share: bool,
        choices: dict[tuple[str, str, str], Choice],
        signals: Signals,
        j: str | None,
        now: datetime,
        no: Refuse,
    ) -> Decision | None:
        kinds = [
            k
            for k, on in (("sale", sale), ("share", share), ("targeted_advertising", rule.targeted))
            if on
        ]
        if choices:
            for kind in (*kinds, "ad_tracking") if rule.targeted or share else kinds:
                opted = choices.get(("opt_out", kind, ""))
                if opted is not None and not opted.permits(now):
                    what = {
                        "sale": "the sale of their personal information",
                        "share": "the sharing of their personal information for cross-context behavioural advertising",
                        "targeted_advertising": "targeted advertising",
                        "ad_tracking": "ad tracking (limit ad tracking)",
                    }[kind]
                    return no(f"opt_out.{kind}", f"the subject opted out of {what}")
        if signals.gpc and (
            self.gpc_everywhere or (j is not None and self.gpc_required.get(j, False))
        ):
            return no(
                "signal.gpc",
                "the browser sent Global Privacy Control, an opt-out of sale, sharing and "
                "targeted advertising"
                + (
                    " that California law requires honouring (11 CCR §7025)"
                    if j == "us-ca"
                    else " that the policy honours"
                ),
                "gpc",
            )
        return None

    def _consent(
        self,
        rule: PurposeRule,
        state: SubjectState,
        purpose: str,
        channel: str | None,
        list_name: str | None,
        j: str | None,
        now: datetime,
        no: Refuse,
    ) -> Decision:
        choices = state.choices
        given = None
        if choices:
            if channel is not None:
                given = choices.get(("consent", purpose, channel))
            if given is None and list_name is not None:
                given = choices.get(("consent", purpose, f"list:{list_name}"))
            if given is None:
                given = choices.get(("consent", purpose, ""))
        if given is None:
            return no("consent.missing", f"purpose '{purpose}' needs consent and none is recorded")
        state_ = given.state
        if state_ not in _PERMITTING:
            words = {
                "withdrawn": "the subject withdrew their consent",
                "refused": "the subject refused consent",
                "requested": "consent was asked for and not yet given",
                "expired": "the consent expired",
                "invalidated": "the consent was invalidated",
            }
            return no(f"consent.{state_}", f"{words.get(state_, state_)} to purpose '{purpose}'")
        if given.expires_at is not None and given.expires_at <= now:
            return no(
                "consent.expired",
                f"the consent to purpose '{purpose}' expired on {given.expires_at.date().isoformat()}; ask again",
            )
        if rule.renew_from and (given.policy_version or 0) < rule.renew_from:
            return no(
                "consent.renewal_needed",
                f"purpose '{purpose}' changed materially in policy version {rule.renew_from}, "
                f"after consent was given (under version {given.policy_version or 'unknown'}); "
                "consent must be given again",
            )
        return rule.allowed.get(j or "") or rule.allowed[""]


def _optional_cookies(policy: Policy) -> set[str]:
    return {k for k, c in policy.cookies.items() if c.optional}


def _allowed_reason(basis: Basis, jurisdiction: str | None) -> str:
    where = f" in {jurisdiction}" if jurisdiction else ""
    if basis is Basis.consent:
        return f"allowed: the subject's consent{where} is recorded and valid"
    cited = _CITATIONS.get(jurisdiction or "eu", {}).get(basis)
    return f"allowed: based on {_BASIS_WORDS[basis]}{f' ({cited})' if cited else ''}{where}"


def _age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


__all__ = [
    "MARKETING_OBJECTION",
    "NO_SIGNALS",
    "OPT_OUTS",
    "UNKNOWN_SUBJECT",
    "Choice",
    "Decider",
    "Decision",
    "PurposeRule",
    "Signals",
    "SubjectState",
    "UnknownName",
]
