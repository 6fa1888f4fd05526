"""Cross-border transfers: may a recipient's country receive the data, and under what?

The laws are data (lawful.policy.jurisdictions): each lists the countries it covers, the
countries it deems adequate, conditional adequacy (the US with the Data Privacy
Framework), what every transfer out needs (`transfer_requires`: PIPL separate consent)
and the mechanisms of which one suffices (`transfer_mechanisms`). The policy narrows them
(`transfers.rules.<jurisdiction>`: `require`, `accept`, `deidentify`) and each recipient
declares its `safeguards`. `decide_transfer` puts the three together for one recipient,
country by country and law by law; the transfer is allowed only when every leg is.

Which laws apply: the law of the controller's own country when the policy serves it (a
controller's home law governs what it sends abroad, whoever the data is about), plus the
subject's law when known, else every law the policy serves (then all must allow it).

Consent-type safeguards (`separate_consent`, `consent`) are facts about a person, not
the recipient: a recipient declaring them says the transfer needs them; the subject's
ledger must show them (`SubjectConsent`). Without a subject, such a transfer is refused
with `transfer.needs_subject_consent`: it can only be decided per person.

Pure functions on the policy: no store access here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lawful.policy.countries import ANYWHERE
from lawful.policy.jurisdictions import EEA, Jurisdiction, get_jurisdiction
from lawful.policy.model import Policy, Recipient

# Recipients anywhere that are not transfers needing a safeguard (as the policy check
# says): disclosures the law compels (GDPR Art. 49(1)(d), PIPL Art. 13(3)) and what other
# users of the service see (publication, CJEU C-101/01 Lindqvist).
NOT_A_TRANSFER_ROLES = frozenset({"authority", "user"})

# Safeguards that only a person can give: evidence comes from their consent ledger.
PER_SUBJECT = frozenset({"separate_consent", "consent"})

# When a recipient declares several mechanisms, the one named as used (first found).
_PREFERENCE = (
    "scc",
    "bcr",
    "standard_contract",
    "certification",
    "security_assessment",
    "derogation",
    "consent",
)

_ARTICLES = {
    "eu": {
        "adequacy": "GDPR Art. 45",
        "dpf": "GDPR Art. 45, Decision (EU) 2023/1795",
        "scc": "GDPR Art. 46(2)(c)",
        "bcr": "GDPR Art. 47",
        "derogation": "GDPR Art. 49",
    },
    "uk": {
        "adequacy": "UK GDPR Art. 45, DPA 2018 s. 17A",
        "dpf": "UK Extension to the EU-U.S. DPF",
        "scc": "UK GDPR Art. 46 (IDTA or UK Addendum)",
        "bcr": "UK GDPR Art. 47",
        "derogation": "UK GDPR Art. 49",
    },
    "cn": {
        "separate_consent": "PIPL Art. 39",
        "security_assessment": "PIPL Art. 38(1)(1)",
        "certification": "PIPL Art. 38(1)(2)",
        "standard_contract": "PIPL Art. 38(1)(3)",
    },
    "br": {
        "adequacy": "LGPD Art. 33(I)",
        "scc": "LGPD Art. 33(II)(b)",
        "bcr": "LGPD Art. 33(II)(c)",
        "consent": "LGPD Art. 33(VIII)",
    },
}


@dataclass(frozen=True)
class SubjectConsent:
    """Which per-person safeguards a subject's ledger shows for one recipient."""

    separate_consent: bool = False
    consent: bool = False

    def has(self, safeguard: str) -> bool:
        return bool(getattr(self, safeguard, False))


@dataclass(frozen=True)
class TransferLeg:
    """One law and one destination country of a transfer, and the answer for it."""

    jurisdiction: str
    country: str
    allowed: bool
    basis: str  # internal, not_a_transfer, no_conditions, adequacy, dpf, scc, ... or refused
    rule: str  # transfer.<code>
    reason: str
    safeguards: tuple[str, ...] = ()  # what this leg relies on (mechanism and requirements)
    missing: tuple[str, ...] = ()  # what it lacks, when refused

    def to_dict(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "country": self.country,
            "allowed": self.allowed,
            "basis": self.basis,
            "rule": self.rule,
            "reason": self.reason,
            "safeguards": list(self.safeguards),
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class TransferDecision:
    """Whether data may go to a recipient's country (countries), and by what.

    `rule` is a stable code (`transfer.internal`, `transfer.adequacy`,
    `transfer.safeguard`, `transfer.no_conditions`, `transfer.not_a_transfer`; refusals
    `transfer.no_safeguard`, `transfer.requirement_missing`,
    `transfer.separate_consent_missing`, `transfer.needs_subject_consent`); `reason`
    says it in words, with what to do when refused. `deidentify` tells the caller the
    data must be de-identified before it leaves (`deidentify_categories`).
    """

    allowed: bool
    recipient: str
    countries: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    rule: str
    reason: str
    safeguards: tuple[str, ...] = ()  # everything relied on, over every leg
    deidentify: bool = False
    deidentify_categories: tuple[str, ...] = ()
    legs: tuple[TransferLeg, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def abroad(self) -> bool:
        """Whether any leg is a transfer out of a law's territory."""
        return any(leg.basis not in ("internal", "not_a_transfer") for leg in self.legs)

    @property
    def safeguard(self) -> str | None:
        """The safeguards relied on as one text (for the disclosure log), None if none."""
        return ",".join(self.safeguards) or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "recipient": self.recipient,
            "countries": list(self.countries),
            "jurisdictions": list(self.jurisdictions),
            "rule": self.rule,
            "reason": self.reason,
            "safeguards": list(self.safeguards),
            "deidentify": self.deidentify,
            "deidentify_categories": list(self.deidentify_categories),
            "legs": [leg.to_dict() for leg in self.legs],
        }


def applicable_jurisdictions(policy: Policy, subject_jurisdiction: str | None) -> tuple[str, ...]:
    """The laws a transfer is checked under (see the module's docstring)."""
    served = [str(j) for j in policy.jurisdictions]
    home = [j for j in served if policy.controller.country in get_jurisdiction(j).countries]
    person = [get_jurisdiction(subject_jurisdiction).key] if subject_jurisdiction else served
    return tuple(dict.fromkeys([*home, *person]))


def decide_transfer(
    policy: Policy,
    recipient: str,
    *,
    jurisdictions: Sequence[str],
    consent: SubjectConsent | None = None,
    categories: Iterable[str] | None = None,
    country: str | None = None,
) -> TransferDecision:
    """The transfer decision for one recipient under `jurisdictions`.

    `consent` is what the subject's ledger shows (None: no subject, so per-person
    safeguards can't be checked); `categories` are what would be sent (default: what the
    recipient may receive), named when the data must be de-identified; `country` narrows
    a recipient with several countries to the one the data goes to.
    """
    spec = policy.recipients[recipient]
    countries = tuple(str(c) for c in spec.country)
    if country is not None:
        if country not in countries and ANYWHERE not in countries:
            raise ValueError(
                f"recipient '{recipient}' is declared in {', '.join(countries)}, not {country}; "
                "a transfer to another country needs the recipient declared there in the policy"
            )
        countries = (country,)
    sent = tuple(categories) if categories is not None else receivable_categories(policy, recipient)
    legs = [
        _leg(policy, recipient, spec, get_jurisdiction(j), c, consent)
        for j in jurisdictions
        for c in countries
    ]
    refused = [leg for leg in legs if not leg.allowed]
    relied = tuple(dict.fromkeys(s for leg in legs if leg.allowed for s in leg.safeguards))
    deidentify = _deidentify(policy, spec, legs)
    if refused:
        first = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        return TransferDecision(
            False,
            recipient,
            countries,
            tuple(jurisdictions),
            first.rule,
            first.reason + more,
            (),
            deidentify,
            sent if deidentify else (),
            tuple(legs),
        )
    real = [leg for leg in legs if leg.basis not in ("internal", "not_a_transfer")]
    if not real:
        rule = legs[0].rule if legs else "transfer.internal"
        reason = "; ".join(dict.fromkeys(leg.reason for leg in legs)) or "no transfer"
    else:
        rule = _summary_rule(real)
        reason = "; ".join(dict.fromkeys(leg.reason for leg in real))
    if deidentify:
        reason += "; the policy requires the data to be de-identified before it leaves"
    return TransferDecision(
        True,
        recipient,
        countries,
        tuple(jurisdictions),
        rule,
        reason,
        relied,
        deidentify,
        sent if deidentify else (),
        tuple(legs),
    )


def receivable_categories(policy: Policy, recipient: str) -> tuple[str, ...]:
    """The categories a recipient may receive: its own list, else its purposes' categories."""
    spec = policy.recipients[recipient]
    if spec.categories:
        return tuple(spec.categories)
    found: dict[str, None] = {}
    for name in recipient_purposes(policy, recipient):
        found.update(dict.fromkeys(policy.purposes[name].categories))
    return tuple(found)


def recipient_purposes(policy: Policy, recipient: str) -> tuple[str, ...]:
    """The purposes that send data to a recipient: those naming it plus its own list."""
    spec = policy.recipients[recipient]
    named = [p for p, purpose in policy.purposes.items() if recipient in purpose.recipients]
    return tuple(dict.fromkeys([*named, *(p for p in spec.purposes if p in policy.purposes)]))


# -- one leg --------------------------------------------------------------------------------


def _leg(
    policy: Policy,
    name: str,
    spec: Recipient,
    law: Jurisdiction,
    country: str,
    consent: SubjectConsent | None,
) -> TransferLeg:
    j = law.key
    where = "anywhere" if country == ANYWHERE else country

    def leg(
        allowed: bool,
        basis: str,
        reason: str,
        relied: Iterable[str] = (),
        missing: Iterable[str] = (),
    ) -> TransferLeg:
        rule = f"transfer.{basis}" if allowed else basis
        return TransferLeg(
            j,
            country,
            allowed,
            basis if allowed else "refused",
            rule,
            reason,
            tuple(relied),
            tuple(missing),
        )

    if country != ANYWHERE and country in law.countries:
        inside = "the EEA" if law.countries == EEA else _territory(law)
        return leg(True, "internal", f"{country} is inside {inside}: not a transfer out of {j}")
    # Declared anywhere (even when narrowed to one country): the policy check's exemption.
    if ANYWHERE in spec.country and str(spec.role) in NOT_A_TRANSFER_ROLES:
        why = (
            "a disclosure the law compels"
            if str(spec.role) == "authority"
            else "what other users of the service see is publication"
        )
        return leg(True, "not_a_transfer", f"{why}, not a transfer needing a safeguard under {j}")
    rule = policy.transfers.rules.get(j)
    accepted = _accepted(law, rule)
    required = list(
        dict.fromkeys(
            [*sorted(law.transfer_requires), *(str(s) for s in (rule.require if rule else []))]
        )
    )
    if not accepted and not required:
        return leg(True, "no_conditions", f"{law.name} puts no conditions on transfers out")
    declared = {str(s) for s in spec.safeguards}

    # 1. every required safeguard, declared on the recipient (and per-person ones given)
    undeclared = [s for s in required if s not in declared]
    if undeclared:
        return leg(
            False,
            "transfer.requirement_missing",
            f"a transfer out of {j} to {where} needs {' and '.join(undeclared)} and recipient "
            f"'{name}' does not declare {'them' if len(undeclared) > 1 else 'it'}: add "
            f"safeguards: [{', '.join(undeclared)}] to the recipient or stop the transfer",
            missing=undeclared,
        )
    per_subject = [s for s in required if s in PER_SUBJECT]
    if per_subject and consent is None:
        return leg(
            False,
            "transfer.needs_subject_consent",
            f"a transfer out of {j} to {where} needs each person's {' and '.join(per_subject)} "
            f"({_cite(j, per_subject[0])}): decide it per subject",
            missing=per_subject,
        )
    absent = [s for s in per_subject if consent is not None and not consent.has(s)]
    if absent:
        return leg(
            False,
            "transfer.separate_consent_missing",
            f"a transfer out of {j} to {where} ({name}) needs the subject's "
            f"{' and '.join(s.replace('_', ' ') for s in absent)} ({_cite(j, absent[0])}) and "
            f"none is recorded: ask for it (consent.allow_recipient(subject, '{name}', "
            "method=...) records it) or stop the transfer",
            missing=absent,
        )

    # 2. one accepted mechanism: adequacy of the country, or a safeguard of the recipient
    if not accepted:
        return leg(
            True,
            "safeguard",
            f"out of {j} to {where} with {', '.join(required)}",
            required,
        )
    conditional = set(law.conditional_adequacy.values())
    if "adequacy" in accepted and country != ANYWHERE and country in law.adequate_countries:
        note = law.adequacy_notes.get(country)
        return leg(
            True,
            "adequacy",
            f"{country} has an adequacy decision under {law.name}" + (f" ({note})" if note else ""),
            ["adequacy", *required],
        )
    condition = law.conditional_adequacy.get(country) if country != ANYWHERE else None
    if condition and condition in accepted and condition in declared:
        note = law.adequacy_notes.get(country)
        return leg(
            True,
            condition,
            f"{country} is adequate under {law.name} for recipients certified under "
            f"{condition} and '{name}' declares it" + (f" ({note})" if note else ""),
            [condition, *required],
        )
    usable = accepted - {"adequacy"} - conditional
    for safeguard in _PREFERENCE:
        if safeguard not in usable or safeguard not in declared:
            continue
        if safeguard in PER_SUBJECT and (consent is None or not consent.has(safeguard)):
            continue
        return leg(
            True,
            safeguard,
            f"out of {j} to {where} under {safeguard} ({_cite(j, safeguard)})"
            + (f" with {', '.join(required)}" if required else ""),
            [safeguard, *required],
        )
    return leg(
        False,
        "transfer.no_safeguard",
        _no_safeguard(law, name, country, accepted, conditional, consent, declared),
        missing=sorted(usable),
    )


def _no_safeguard(
    law: Jurisdiction,
    name: str,
    country: str,
    accepted: set[str],
    conditional: set[str],
    consent: SubjectConsent | None,
    declared: set[str],
) -> str:
    j = law.key
    if country == ANYWHERE:
        first = f"'anywhere' can't rest on an adequacy decision under {law.name}"
    elif "adequacy" in accepted and law.adequate_countries:
        condition = law.conditional_adequacy.get(country)
        first = f"no adequacy decision for {country} under {law.name}" + (
            f" (only for recipients certified under {condition})" if condition else ""
        )
    else:
        first = f"{law.name} recognises no adequate countries"
    options = sorted(
        accepted - {"adequacy"} - (conditional - {law.conditional_adequacy.get(country, "")})
    )
    given = sorted(declared & PER_SUBJECT & accepted)
    lacking = (
        f"; the subject's {', '.join(given)} is not recorded"
        if given and consent is not None
        else ""
    )
    suggest = next((s for s in (*_PREFERENCE, *options) if s in options), "scc")
    named = "/".join(s.upper() if s in ("scc", "bcr", "dpf") else s for s in options)
    return (
        f"{first} and no {named or 'safeguard'} declared for recipient '{name}'{lacking}: "
        f"add safeguards: [{suggest}] to the recipient"
        + (f" (any of {', '.join(options)})" if len(options) > 1 else "")
        + f" or stop the transfer out of {j}"
    )


def _accepted(law: Jurisdiction, rule: Any) -> set[str]:
    """The law's mechanisms (with conditional adequacy), narrowed by the policy's `accept`."""
    mechanisms = set(law.transfer_mechanisms) | set(law.conditional_adequacy.values())
    if rule is not None and rule.accept:
        chosen = {str(s) for s in rule.accept}
        return chosen & mechanisms if mechanisms else chosen
    return mechanisms


def _deidentify(policy: Policy, spec: Recipient, legs: Sequence[TransferLeg]) -> bool:
    """De-identify before transfer: a rule of a law the data leaves says so, or the
    recipient's safeguards include de-identification."""
    out = [leg for leg in legs if leg.basis not in ("internal", "not_a_transfer", "no_conditions")]
    if not out:
        return False
    if any(str(s) == "deidentification" for s in spec.safeguards):
        return True
    rules = policy.transfers.rules
    return any(rules[leg.jurisdiction].deidentify for leg in out if leg.jurisdiction in rules)


def _summary_rule(legs: Sequence[TransferLeg]) -> str:
    bases = {leg.basis for leg in legs}
    if bases <= {"adequacy", "dpf"}:
        return "transfer.adequacy"
    if bases == {"no_conditions"}:
        return "transfer.no_conditions"
    return "transfer.safeguard"


def _territory(law: Jurisdiction) -> str:
    names = {
        "cn": "mainland China",
        "uk": "the United Kingdom",
        "us-ca": "the United States",
        "br": "Brazil",
    }
    return names.get(law.key, ", ".join(sorted(law.countries)))


def _cite(jurisdiction: str, safeguard: str) -> str:
    return _ARTICLES.get(jurisdiction, {}).get(safeguard, jurisdiction)
