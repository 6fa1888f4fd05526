"""Identities are normalised so one person hashes one way; errors never repeat the value."""

from __future__ import annotations

import pytest

from lawful.subjects import Identity, IdentityError, IdentityKind
from lawful.subjects.identity import identity_texts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email:Ada@Example.com", "ada@example.com"),
        ("  ADA.LOVELACE@EXAMPLE.COM \n", "ada.lovelace@example.com"),
        ("Email: ada@example.com", "ada@example.com"),  # the kind prefix is case-insensitive
        ("ada@example.com", "ada@example.com"),  # bare text with '@' is an email
        ("Straße@Example.de", "strasse@example.de"),  # case folding, not just lower()
        ("ＡＤＡ@ｅｘａｍｐｌｅ.com", "ada@example.com"),  # fullwidth letters: NFKC
        ("ﬁona@example.com", "fiona@example.com"),  # the 'ﬁ' ligature: NFKC
        ("josé@example.com", "josé@example.com"),  # composed and…
        ("jose\u0301@example.com", "josé@example.com"),  # …decomposed é are one address
    ],
)
def test_email_is_trimmed_case_folded_and_nfkc(text: str, expected: str) -> None:
    identity = Identity.parse(text)
    assert identity == Identity(IdentityKind.email, expected)
    assert identity.value == expected
    assert str(identity) == f"email:{expected}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "the email address is empty"),
        ("   ", "the email address is empty"),
        ("ada.example.com", "the email address has no '@'"),
        ("ada@@example.com", "the email address has more than one '@'"),
        ("a@b@example.com", "the email address has more than one '@'"),
        ("@example.com", "the email address has nothing before the '@'"),
        ("ada@localhost", "the email address's domain has no dot"),
        ("ada@example..com", "the email address's domain has an empty part"),
        ("ada@.example.com", "the email address's domain has an empty part"),
        ("ada lovelace@example.com", "the email address contains whitespace"),
        ("ada\u00a0@example.com", "the email address contains whitespace"),
        ("ada\x00x@example.com", "the email address contains control characters"),
        ("a" * 320 + "@example.com", "the email address is longer than 320 characters"),
    ],
)
def test_invalid_email_is_refused_without_echoing_it(value: str, message: str) -> None:
    with pytest.raises(IdentityError) as caught:
        Identity.of("email", value)
    assert str(caught.value).startswith(message)
    if value.strip():
        assert value.strip() not in str(caught.value)
        assert "ada" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("phone:+372 5123 4567", None, "+37251234567"),
        ("+372 5123 4567", None, "+37251234567"),  # bare text starting with '+'
        ("phone:+44 (20) 7946-0958", None, "+442079460958"),
        ("phone:+1 415-555-2671", None, "+14155552671"),
        ("phone:5123 4567", "EE", "+37251234567"),  # national format with a region
        ("phone:5123 4567", "ee", "+37251234567"),  # the region's case doesn't matter
        ("phone:020 7946 0958", "GB", "+442079460958"),  # trunk prefix 0 dropped
        ("phone:00372 5123 4567", "GB", "+37251234567"),  # international prefix from GB
        ("phone:(415) 555-2671", "US", "+14155552671"),
        ("phone: +37251234567 ", None, "+37251234567"),
    ],
)
def test_phone_becomes_e164(text: str, region: str | None, expected: str) -> None:
    identity = Identity.parse(text, default_region=region)
    assert identity == Identity(IdentityKind.phone, expected)
    assert str(identity) == f"phone:{expected}"


def test_the_same_phone_written_differently_is_one_identity() -> None:
    forms = ["+372 5123 4567", "+372-5123-4567", "+37251234567", "phone:(+372) 51234567"]
    assert len({Identity.parse(f) for f in forms}) == 1
    assert Identity.of("phone", "5123 4567", default_region="EE") == Identity.parse(forms[0])


def test_phone_without_country_code_needs_a_region() -> None:
    with pytest.raises(IdentityError) as caught:
        Identity.parse("phone:5123 4567")
    message = str(caught.value)
    assert "country code" in message and "region" in message
    assert "5123" not in message


@pytest.mark.parametrize(
    ("value", "region", "message"),
    [
        ("", None, "the phone number is empty"),
        ("+372 51", None, "the phone number"),  # too short
        ("+999 1234 5678", None, "country code is unknown"),
        ("+1 555 0100 0000 0000 0000", None, "the phone number"),  # far too long
        ("+44 20 7946 095", None, "the phone number"),  # a digit short for GB
        ("call me maybe", "EE", "is not a phone number"),
        ("+1 200 555 0123", None, "not a valid number"),  # US area codes don't start with 2-0-0…
    ],
)
def test_invalid_phone_is_refused_without_echoing_it(
    value: str, region: str | None, message: str
) -> None:
    with pytest.raises(IdentityError) as caught:
        Identity.of("phone", value, default_region=region)
    assert message in str(caught.value)
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) >= 4:
        assert digits[-4:] not in str(caught.value)


def test_unknown_region_is_named_and_explained() -> None:
    with pytest.raises(IdentityError, match="unknown region 'XX'"):
        Identity.of("phone", "5123 4567", default_region="XX")


@pytest.mark.parametrize("kind", ["account", "device", "customer"])
def test_ids_are_trimmed_and_keep_their_case(kind: str) -> None:
    identity = Identity.parse(f"{kind}:  AbC-123 xyz  ")
    assert identity.kind == IdentityKind(kind)
    assert identity.value == "AbC-123 xyz"
    assert str(identity) == f"{kind}:AbC-123 xyz"
    assert Identity.parse(f"{kind}:abc-123 xyz") != identity


def test_ids_may_contain_colons_and_at_signs() -> None:
    assert Identity.parse("device:ga:1.2.3").value == "ga:1.2.3"
    assert Identity.parse("account:ada@example.com").kind is IdentityKind.account
    assert Identity.parse("customer:tenant-7:42") == Identity("customer", "tenant-7:42")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "the account id is empty"),
        ("   ", "the account id is empty"),
        ("x" * 201, "the account id is longer than 200 characters"),
        ("abc\n123", "the account id contains control characters"),
        ("abc\x7f", "the account id contains control characters"),
    ],
)
def test_invalid_ids_are_refused(value: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        Identity.of("account", value)
    assert Identity.of("account", "x" * 200).value == "x" * 200


@pytest.mark.parametrize("text", ["12345", "ada", "user:12345", "mailto", ""])
def test_text_without_a_kind_must_be_prefixed(text: str) -> None:
    with pytest.raises(IdentityError) as caught:
        Identity.parse(text)
    message = str(caught.value)
    assert "prefix it with its kind" in message
    for kind in IdentityKind:
        assert f"{kind}:" in message
    if text:
        assert text not in message.replace("account:12345", "")


def test_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(
        IdentityError, match="unknown kind of identity 'fax'; use one of email, phone"
    ):
        Identity.of("fax", "123")


def test_constructing_directly_normalises_too() -> None:
    assert Identity("email", " Ada@Example.COM") == Identity.of("email", "ada@example.com")
    assert Identity("email", "ada@example.com").kind is IdentityKind.email
    with pytest.raises(IdentityError):
        Identity("email", "not an email")


@pytest.mark.parametrize(
    "text",
    ["email:Straße@Example.de", "phone:+372 5123 4567", "device:Ab:1", "email:ﬁ@x.io"],
)
def test_normalising_is_idempotent(text: str) -> None:
    once = Identity.parse(text)
    assert Identity.parse(str(once)) == once
    assert Identity.of(once.kind, once.value) == once


def test_identities_are_hashable_and_compare_by_kind_and_value() -> None:
    email = Identity.parse("x@example.com")
    assert {email, Identity.parse("X@example.com")} == {email}
    assert Identity.parse("account:x@example.com") != email


# Identities as batches give them: `identity_texts` has its own path for plain emails.
BATCH_TEXTS = [
    "email:ada@example.com",
    "email: Ada@Example.COM ",
    "EMAIL:ada@example.com",
    "Email:ADA@EXAMPLE.COM",
    " email:ada@example.com",
    "email:email:ada@example.com",
    "EMAIL:EMAIL:ADA@EXAMPLE.COM",
    "email:a.b+tag@sub.example.co.uk",
    "EMAIL:" + "a" * 316 + "@b.c",  # the longest address: 320 characters
    "Ada@Example.com",
    "email:Straße@Example.de",
    "email:ÅDA@exämple.com",
    "email:\u212aelvin@example.com",  # the Kelvin sign lower-cases to an ASCII "k"
    "email:ﬀ@example.com",
    "phone:+372 5123 4567",
    "+1 (415) 555-0100",
    "account:Ada",
    "device: d-1 ",
    "customer:C-9",
]


def test_identity_texts_read_identities_as_parse_does() -> None:
    assert identity_texts(BATCH_TEXTS) == [str(Identity.parse(t)) for t in BATCH_TEXTS]
    assert identity_texts([Identity.parse("account:x"), "account:x"]) == ["account:x"] * 2
    assert identity_texts([]) == []


@pytest.mark.parametrize(
    "bad",
    [
        "email:no at sign",
        "email:a@b",
        "email:a@b..c",
        "email:a@b.c.",
        "EMAIL:" + "a" * 317 + "@b.c",  # 321 characters after the kind
        "fax:1",
        "",
    ],
)
def test_identity_texts_refuse_as_parse_does(bad: str) -> None:
    with pytest.raises(IdentityError) as batch:
        identity_texts(["email:ok@example.com", bad])
    with pytest.raises(IdentityError) as single:
        Identity.parse(bad)
    assert str(batch.value) == str(single.value)
