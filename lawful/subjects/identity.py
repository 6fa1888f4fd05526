"""Identities: the names a subject is known by, normalised so one person hashes one way.

An email is trimmed, NFKC-normalised and case-folded; a phone number becomes E.164; an
account, device or customer id is only trimmed (its case matters to the system that
issued it). Error messages describe what is wrong with a value, never the value itself:
they end up in logs and API responses, and the value is personal data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

MAX_ID_LENGTH = 200  # account, device and customer ids
MAX_EMAIL_LENGTH = 320  # 64 for the local part + '@' + 255 for the domain, rounded


class IdentityError(ValueError):
    """An identity can't be understood; the message says why without repeating it."""


class IdentityKind(StrEnum):
    email = "email"
    phone = "phone"
    account = "account"  # the controller's own user/account id
    device = "device"  # a device or cookie id
    customer = "customer"  # an id the controller's customer supplied (processor mode)


_KINDS = ", ".join(f"{k}:" for k in IdentityKind)


@dataclass(frozen=True)
class Identity:
    """One identity, its value normalised: `Identity.parse("email:A@B.com")`.

    Constructing one directly normalises too, so equal identities are equal objects
    and hash to the same key. A phone number without a country code needs
    `Identity.of(..., default_region=...)`.
    """

    kind: IdentityKind
    value: str

    def __post_init__(self) -> None:
        kind = identity_kind(self.kind)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", normalise(kind, self.value))

    @classmethod
    def of(
        cls, kind: IdentityKind | str, value: str, *, default_region: str | None = None
    ) -> Identity:
        """The identity of `kind` with `value` normalised; raises IdentityError if invalid."""
        kind = identity_kind(kind)
        return cls._normalised(kind, normalise(kind, value, default_region=default_region))

    @classmethod
    def _normalised(cls, kind: IdentityKind, value: str) -> Identity:
        """An identity from a value already normalised (skips __post_init__'s second pass)."""
        made = object.__new__(cls)
        object.__setattr__(made, "kind", kind)
        object.__setattr__(made, "value", value)
        return made

    @classmethod
    def parse(cls, text: str, *, default_region: str | None = None) -> Identity:
        """Read "kind:value"; a bare value with '@' is an email, one starting '+' a phone."""
        if not isinstance(text, str):
            raise IdentityError(f"an identity must be text, got {type(text).__name__}")
        if text.startswith("email:"):
            # The common case, in one match: batch decisions parse every identity given.
            plain = text[6:].strip().lower()
            if len(plain) <= MAX_EMAIL_LENGTH and _PLAIN_EMAIL.fullmatch(plain):
                return cls._normalised(IdentityKind.email, plain)
        head, sep, rest = text.partition(":")
        if sep and head.strip().lower() in IdentityKind.__members__:
            return cls.of(head.strip().lower(), rest, default_region=default_region)
        if "@" in text:
            return cls.of(IdentityKind.email, text)
        if text.strip().startswith("+"):
            return cls.of(IdentityKind.phone, text, default_region=default_region)
        raise IdentityError(
            "cannot tell which kind of identity this is: prefix it with its kind, one of "
            f"{_KINDS} (e.g. account:12345)"
        )

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def identity_text(identity: Identity | str, *, default_region: str | None = None) -> str:
    """The normalised "kind:value" text of an identity (what `Keyring.hash` hashes).

    Text is read as `Identity.parse` reads it, and invalid text raises the same error.
    """
    if isinstance(identity, Identity):
        return f"{identity.kind}:{identity.value}"
    parsed = Identity.parse(identity, default_region=default_region)
    return f"{parsed.kind}:{parsed.value}"


def identity_texts(identities: Iterable[Identity | str]) -> list[str]:
    """`identity_text` of each identity, in order: for batches.

    A plain email with its kind ("email:..." in any case, the common case) is read in
    this loop, without a call or an Identity per address: lower-casing the whole text
    and matching it once gives what `Identity.parse` gives (the kind is read without
    case; a value that matches has nothing to trim and lower() is its case fold).
    """
    plain_email = _PLAIN_EMAIL_TEXT.fullmatch
    texts: list[str] = []
    append = texts.append
    for identity in identities:
        if type(identity) is str:
            lowered = identity.lower()
            if len(lowered) <= _MAX_EMAIL_TEXT and plain_email(lowered):
                append(lowered)
                continue
        append(identity_text(identity))
    return texts


def identity_kind(kind: IdentityKind | str) -> IdentityKind:
    """`kind` as an IdentityKind; IdentityError listing the kinds if it is none."""
    if isinstance(kind, IdentityKind):
        return kind
    try:
        return IdentityKind(kind)
    except ValueError:
        # The kind is a word of lawful's vocabulary, not personal data: safe to repeat.
        raise IdentityError(
            f"unknown kind of identity {kind!r}; use one of {', '.join(IdentityKind)}"
        ) from None


def normalise(kind: IdentityKind | str, value: str, *, default_region: str | None = None) -> str:
    """`value` in the one form lawful hashes and stores for `kind`."""
    kind = identity_kind(kind)
    if not isinstance(value, str):
        raise IdentityError(f"an identity's value must be text, got {type(value).__name__}")
    if kind is IdentityKind.email:
        return normalise_email(value)
    if kind is IdentityKind.phone:
        return normalise_phone(value, default_region=default_region)
    return _normalise_id(kind, value)


# The common case, checked in one regular-expression match: printable ASCII without
# whitespace, one '@', a local part and a dotted domain with no empty label.
_PLAIN_EMAIL = re.compile(
    r"[\x21-\x3f\x41-\x7e]+@[\x21-\x2d\x2f-\x3f\x41-\x7e]+(?:\.[\x21-\x2d\x2f-\x3f\x41-\x7e]+)+"
)

# The same, with the kind: a whole "email:..." text as `identity_texts` reads it.
_PLAIN_EMAIL_TEXT = re.compile(f"email:{_PLAIN_EMAIL.pattern}")
_MAX_EMAIL_TEXT = len("email:") + MAX_EMAIL_LENGTH


def normalise_email(value: str) -> str:
    """Trimmed, NFKC, case-folded; one '@', a local part, a dotted domain, no whitespace."""
    plain = value.strip().lower()
    if len(plain) <= MAX_EMAIL_LENGTH and _PLAIN_EMAIL.fullmatch(plain):
        return plain  # ASCII: NFKC changes nothing and casefold() is lower()
    text = unicodedata.normalize("NFKC", value.strip())
    text = unicodedata.normalize("NFKC", text.casefold())
    if not text:
        raise IdentityError("the email address is empty")
    if len(text) > MAX_EMAIL_LENGTH:
        raise IdentityError(f"the email address is longer than {MAX_EMAIL_LENGTH} characters")
    if any(ch.isspace() for ch in text):
        raise IdentityError("the email address contains whitespace")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise IdentityError("the email address contains control characters")
    ats = text.count("@")
    if ats == 0:
        raise IdentityError("the email address has no '@'")
    if ats > 1:
        raise IdentityError("the email address has more than one '@'")
    local, _, domain = text.partition("@")
    if not local:
        raise IdentityError("the email address has nothing before the '@'")
    if "." not in domain:
        raise IdentityError(
            "the email address's domain has no dot; it should look like example.com"
        )
    if any(not label for label in domain.split(".")):
        raise IdentityError(
            "the email address's domain has an empty part (a leading, trailing or double dot)"
        )
    return text


def normalise_phone(value: str, *, default_region: str | None = None) -> str:
    """E.164 (`+37251234567`); without a '+' and country code it needs `default_region`."""
    text = value.strip()
    if not text:
        raise IdentityError("the phone number is empty")
    region = None
    if default_region is not None:
        region = default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            # A region code is not personal data.
            raise IdentityError(
                f"unknown region {default_region!r} for phone numbers; "
                "use a two-letter country code such as EE or US"
            )
    if region is None and "+" not in text:
        raise IdentityError(
            "the phone number has no country code: write it with '+' and the country "
            "code (e.g. +372...) or give the region it belongs to (e.g. EE)"
        )
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise IdentityError(_PARSE_ERRORS.get(exc.error_type, _NOT_A_NUMBER)) from None
    if not phonenumbers.is_possible_number(number):
        raise IdentityError("the phone number has the wrong number of digits for its country")
    if not phonenumbers.is_valid_number(number):
        raise IdentityError("the phone number is not a valid number in its country's plan")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_NOT_A_NUMBER = "the phone number is not a phone number"
_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
        "the phone number's country code is unknown (or it has none and no region was given)"
    ),
    phonenumbers.NumberParseException.NOT_A_NUMBER: _NOT_A_NUMBER,
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: (
        "the phone number is too short after its international prefix"
    ),
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "the phone number is too short",
    phonenumbers.NumberParseException.TOO_LONG: "the phone number is too long",
}


def _normalise_id(kind: IdentityKind, value: str) -> str:
    text = value.strip()
    if not text:
        raise IdentityError(f"the {kind} id is empty")
    if len(text) > MAX_ID_LENGTH:
        raise IdentityError(f"the {kind} id is longer than {MAX_ID_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise IdentityError(f"the {kind} id contains control characters")
    return text
