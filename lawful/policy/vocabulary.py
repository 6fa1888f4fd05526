"""The closed word lists of the policy language, and the validator that explains them.

Each list is a `StrEnum`; a field typed `choice(Basis, "a lawful basis")` rejects a
misspelling with ``'consnet' is not a lawful basis; did you mean 'consent'?``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError


class Role(StrEnum):
    controller = "controller"
    processor = "processor"


class Basis(StrEnum):
    """GDPR Art. 6(1) lawful bases; used for every jurisdiction."""

    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    vital_interests = "vital_interests"
    public_interest = "public_interest"
    legitimate_interests = "legitimate_interests"


class Channel(StrEnum):
    email = "email"
    sms = "sms"
    phone = "phone"
    post = "post"
    push = "push"
    in_app = "in-app"
    social = "social"
    fax = "fax"


class BelowMinAge(StrEnum):
    refuse = "refuse"  # do not open an account or collect data
    parental_consent = "parental_consent"  # allowed with a parent's recorded consent
    delete_on_discovery = "delete_on_discovery"  # data found to be a child's is deleted


class Source(StrEnum):
    """Where data comes from (GDPR Art. 14(2)(f); the seeds' 'given / automatic / third parties')."""

    subject = "subject"
    automatic = "automatic"
    third_party = "third_party"
    employer = "employer"
    customer = "customer"  # a customer of ours uploads data about their people (processor)
    public = "public"


class ConsentMethod(StrEnum):
    form = "form"
    checkbox = "checkbox"
    banner = "banner"
    email_link = "email_link"
    import_ = "import"
    api = "api"
    parent = "parent"
    written = "written"


class RecipientRole(StrEnum):
    processor = "processor"
    affiliate = "affiliate"
    partner = "partner"
    authority = "authority"
    acquirer = "acquirer"
    advisor = "advisor"
    controller = "controller"  # an independent controller (e.g. a payment institution)
    user = "user"  # other users of the service who see the data


class Safeguard(StrEnum):
    adequacy = "adequacy"
    scc = "scc"
    bcr = "bcr"
    dpf = "dpf"  # EU-U.S. Data Privacy Framework certification
    contract = "contract"
    consent = "consent"
    separate_consent = "separate_consent"  # PIPL Art. 39
    security_assessment = "security_assessment"  # PIPL Art. 38(1)
    certification = "certification"  # PIPL Art. 38(2)
    standard_contract = "standard_contract"  # PIPL Art. 38(3)
    derogation = "derogation"  # GDPR Art. 49
    deidentification = "deidentification"


class Then(StrEnum):
    delete = "delete"
    anonymize = "anonymize"


class HoldReason(StrEnum):
    legal_hold = "legal_hold"
    dispute = "dispute"
    legal_claim = "legal_claim"
    legal_obligation = "legal_obligation"
    investigation = "investigation"


class RequestKind(StrEnum):
    confirm = "confirm"
    access = "access"
    portability = "portability"
    rectification = "rectification"
    erasure = "erasure"
    account_closure = "account_closure"
    restriction = "restriction"
    objection = "objection"
    withdraw_consent = "withdraw_consent"
    opt_out_sale = "opt_out_sale"
    restrict_recipients = "restrict_recipients"
    explain_decision = "explain_decision"
    information = "information"


class Verification(StrEnum):
    email_code = "email_code"
    phone_code = "phone_code"
    signed_in = "signed_in"
    written_request = "written_request"
    id_document = "id_document"


class RequestException(StrEnum):
    """Grounds on which a request may be refused or answered in part (named to the subject)."""

    legal_obligation = "legal_obligation"
    national_security = "national_security"
    public_interest = "public_interest"
    crime_investigation = "crime_investigation"
    legal_claims = "legal_claims"
    abuse_of_rights = "abuse_of_rights"
    vital_interests = "vital_interests"
    others_rights = "others_rights"
    trade_secret = "trade_secret"
    confidentiality = "confidentiality"
    manifestly_unfounded = "manifestly_unfounded"
    excessive = "excessive"
    impractical = "impractical"
    not_required_by_law = "not_required_by_law"


class Fee(StrEnum):
    free = "free"
    reasonable_fee = "reasonable_fee"
    cost_fee = "cost_fee"
    refuse = "refuse"


class SignalHandling(StrEnum):
    honor = "honor"
    ignore = "ignore"


class ChangeNotice(StrEnum):
    email = "email"
    website = "website"
    in_app = "in-app"
    push = "push"
    letter = "letter"


class BreachChannel(StrEnum):
    email = "email"
    letter = "letter"
    phone = "phone"
    sms = "sms"
    push = "push"
    announcement = "announcement"


class SecurityMeasure(StrEnum):
    encryption = "encryption"
    encryption_in_transit = "encryption_in_transit"
    access_control = "access_control"
    authentication = "authentication"
    security_audits = "security_audits"
    training = "training"
    physical_security = "physical_security"
    pseudonymisation = "pseudonymisation"
    minimisation = "minimisation"
    backups = "backups"
    incident_response = "incident_response"
    certification = "certification"
    disclosure_log = "disclosure_log"


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """The option `word` was most likely meant to be, or None when nothing is close.

    Case, '-' and spaces don't count. For dotted keys a close last segment is enough,
    so a typo at the end (``user.contact.emial``) and a missing middle segment
    (``user.email``) both find ``user.contact.email``.
    """
    by_norm = {_norm(o): o for o in options}
    w = _norm(word)
    if w in by_norm:
        return by_norm[w]
    # A strict whole-key match first: it keeps the right branch when several keys end alike.
    close = difflib.get_close_matches(w, by_norm, n=1, cutoff=0.8)
    if close:
        return by_norm[close[0]]
    by_last: dict[str, list[str]] = {}
    for norm in sorted(by_norm):
        by_last.setdefault(norm.rpartition(".")[2], []).append(norm)
    close = difflib.get_close_matches(w.rpartition(".")[2], by_last, n=1, cutoff=0.75)
    if close:
        best = max(by_last[close[0]], key=lambda n: difflib.SequenceMatcher(None, w, n).ratio())
        return by_norm[best]
    close = difflib.get_close_matches(w, by_norm, n=1, cutoff=0.6)
    return by_norm[close[0]] if close else None


def _norm(word: str) -> str:
    return word.strip().lower().replace("-", "_").replace(" ", "_")


def unknown(word: object, noun: str, options: Iterable[str]) -> str:
    """`'x' is not <noun>; did you mean 'y'?` — or the full list when nothing is close."""
    options = list(options)
    if not isinstance(word, str):
        return f"expected {noun} (one of: {', '.join(options)}), got {describe(word)}"
    guess = did_you_mean(word, options)
    if guess:
        return f"'{word}' is not {noun}; did you mean '{guess}'?"
    shown = ", ".join(options) if len(options) <= 16 else ", ".join(options[:16]) + ", …"
    return f"'{word}' is not {noun}; use one of: {shown}"


def describe(value: object) -> str:
    """How a wrong value reads in an error: its kind, and short scalars themselves."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 40 else "a long text"
    return type(value).__name__


def fail(message: str) -> PydanticCustomError:
    """An error whose message reaches the user verbatim (braces in user input are safe)."""
    return PydanticCustomError("lawful", "{message}", {"message": message})


def choice(enum_cls: type[StrEnum], noun: str) -> Any:
    """An annotated enum type whose error says what the word should be and guesses it."""
    values = [e.value for e in enum_cls]

    def check(value: object) -> object:
        if isinstance(value, enum_cls):
            return value
        if isinstance(value, str) and value in values:
            return enum_cls(value)
        raise fail(unknown(value, noun, values))

    return Annotated[enum_cls, BeforeValidator(check)]


def checked(predicate: Callable[[str], bool], message: str) -> Any:
    """An annotated str type checked by `predicate`; `message` may use {value}."""

    def check(value: object) -> object:
        if not isinstance(value, str):
            raise fail(f"expected text, got {describe(value)}")
        if not predicate(value):
            raise fail(message.format(value=value))
        return value

    return Annotated[str, BeforeValidator(check)]


_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,79}$")
Name = checked(
    _NAME.match,
    "'{value}' is not a valid name: use lowercase letters, digits, '_' or '-', "
    "starting with a letter (e.g. marketing_email)",
)
