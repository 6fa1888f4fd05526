"""UnsubscribeRequest tokens are signed, scoped and checked; one-click headers follow RFC 8058."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
from datetime import UTC, datetime, timedelta

import pytest

from lawful.consent.unsubscribe import (
    UnsubscribeRequest,
    UnsubscribeScope,
    UnsubscribeTokenError,
    headers_for,
    make_token,
    one_click_headers,
    read_token,
    unsubscribe_url,
)
from lawful.policy.vocabulary import Channel

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SUBJECT = "0123456789abcdef0123456789abcdef"  # a subject's opaque public ref (uuid4 hex)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = "https://shop.example/privacy/unsubscribe"
B64URL = string.ascii_letters + string.digits + "-_"


def _token(scope: UnsubscribeScope | str = "list:newsletter", **kwargs: object) -> str:
    args: dict = {"controller": "acme", "subject_ref": SUBJECT, "scope": scope, "issued_at": T0}
    args.update(kwargs)
    key = args.pop("key", KEY)
    return make_token(key, **args)


def _read(token: str, **kwargs: object) -> UnsubscribeRequest:
    args: dict = {"controller": "acme", "now": T0 + timedelta(hours=1)}
    args.update(kwargs)
    key = args.pop("key", KEY)
    return read_token(key, token, **args)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(payload: bytes | dict, key: bytes = KEY) -> str:
    """A token signed exactly as the format says, whatever the payload holds."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    body = _b64(raw)
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def _failure(token: str, **kwargs: object) -> UnsubscribeTokenError:
    with pytest.raises(UnsubscribeTokenError) as caught:
        _read(token, **kwargs)
    message = str(caught.value)
    assert token not in message or not token
    assert SUBJECT not in message
    return caught.value


GOOD = {"c": "acme", "s": SUBJECT, "u": "all", "t": int(T0.timestamp()), "v": 1}


# --- scopes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["list:newsletter", "list:offers_2026", "list:b-side", "channel:email", "all"]
)
def test_scope_text_roundtrips(text: str) -> None:
    assert str(UnsubscribeScope.parse(text)) == text


def test_scope_constructors_agree_with_parsing() -> None:
    assert UnsubscribeScope.of_list("newsletter") == UnsubscribeScope.parse("list:newsletter")
    assert UnsubscribeScope.of_channel(Channel.sms) == UnsubscribeScope.parse("channel:sms")
    assert UnsubscribeScope.of_channel("in-app").channel is Channel.in_app
    assert UnsubscribeScope.everything() == UnsubscribeScope.parse("all")
    assert UnsubscribeScope.everything().channel is None
    scope = UnsubscribeScope.of_list("newsletter")
    assert UnsubscribeScope.parse(scope) is scope


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("list:Newsletter", "not a valid list name"),
        ("list:", "not a valid list name"),
        ("list:2026", "not a valid list name"),
        ("list:news letter", "not a valid list name"),
        ("channel:emial", "did you mean 'email'"),
        ("channel:", "not a marketing channel"),
        ("everything", "not an unsubscribe scope"),
        ("all:x", "not an unsubscribe scope"),
        ("List:newsletter", "not an unsubscribe scope"),
        ("", "not an unsubscribe scope"),
    ],
)
def test_bad_scopes_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        UnsubscribeScope.parse(text)


def test_scope_fields_are_checked_too() -> None:
    with pytest.raises(ValueError, match="takes no name"):
        UnsubscribeScope("all", "newsletter")
    with pytest.raises(ValueError, match="kind of unsubscribe scope"):
        UnsubscribeScope("purpose", "marketing")
    with pytest.raises(ValueError, match="as text"):
        UnsubscribeScope.parse(42)  # type: ignore[arg-type]


# --- tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        UnsubscribeScope.of_list("newsletter"),
        UnsubscribeScope.of_channel(Channel.email),
        UnsubscribeScope.of_channel(Channel.in_app),
        UnsubscribeScope.everything(),
    ],
    ids=str,
)
def test_a_token_roundtrips_for_every_kind_of_scope(scope: UnsubscribeScope) -> None:
    token = _token(scope)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert _read(token) == UnsubscribeRequest(
        controller="acme", subject_ref=SUBJECT, scope=scope, issued_at=T0
    )
    assert _read(_token(str(scope))).scope == scope


def test_the_payload_is_compact_json_without_any_address() -> None:
    body, signature = _token("channel:sms").split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    stamp = int(T0.timestamp())
    expected = f'{{"c":"acme","s":"{SUBJECT}","u":"channel:sms","t":{stamp},"v":1}}'
    assert raw.decode() == expected
    mac = hmac.new(KEY, body.encode(), hashlib.sha256).digest()
    assert signature == _b64(mac)


def test_issue_time_is_whole_seconds_and_defaults_to_now() -> None:
    token = _token(issued_at=T0 + timedelta(microseconds=999_999))
    assert _read(token).issued_at == T0
    before = datetime.now(UTC).replace(microsecond=0)
    fresh = read_token(KEY, _token(issued_at=None), controller="acme")
    assert before <= fresh.issued_at <= datetime.now(UTC)


def test_any_changed_character_is_refused() -> None:
    token = _token()
    for i, char in enumerate(token):
        if char == ".":
            continue
        changed = token[:i] + ("A" if char != "A" else "B") + token[i + 1 :]
        error = _failure(changed)
        assert error.reason == "signature", i
        assert "was altered or signed with another key" in str(error)


def test_the_signature_must_be_canonical() -> None:
    # The last character of a 32-byte base64url value carries two unused bits; variants
    # that decode to the same bytes must not pass either.
    token = _token()
    for char in B64URL.replace(token[-1], ""):
        assert _failure(token[:-1] + char).reason == "signature"


def test_a_forged_payload_with_the_old_signature_is_refused() -> None:
    _, signature = _token().split(".")
    forged = _b64(json.dumps({**GOOD, "s": "f" * 32}).encode()) + "." + signature
    assert _failure(forged).reason == "signature"


def test_a_token_signed_with_another_key_is_refused() -> None:
    error = _failure(_token(key=OTHER_KEY))
    assert error.reason == "signature"
    assert str(error) == "the unsubscribe token was altered or signed with another key"


def test_a_token_of_another_controller_is_refused() -> None:
    error = _failure(_token(controller="other"))
    assert error.reason == "controller"
    assert "'other', not 'acme'" in str(error)


def test_expiry_applies_only_with_a_max_age() -> None:
    token = _token()
    limit = timedelta(days=30)
    assert _read(token, max_age=limit, now=T0 + limit).issued_at == T0
    error = _failure(token, max_age=limit, now=T0 + limit + timedelta(seconds=1))
    assert error.reason == "expired"
    assert "issued 2026-03-01T12:00:00Z" in str(error)
    assert "30 days" in str(error)
    assert _read(token, now=T0 + timedelta(days=3650)).issued_at == T0


def test_the_limit_reads_as_people_say_it() -> None:
    error = _failure(_token(), max_age=timedelta(days=1, hours=2), now=T0 + timedelta(days=2))
    assert "1 day 2 hours" in str(error)


def test_a_token_from_the_future_is_refused_beyond_five_minutes() -> None:
    token = _token()
    assert _read(token, now=T0 - timedelta(minutes=5)).issued_at == T0
    error = _failure(token, now=T0 - timedelta(minutes=5, seconds=1))
    assert error.reason == "future"
    assert "2026-03-01T12:00:00Z" in str(error)


def test_now_and_issue_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _token(issued_at=datetime(2026, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        _read(_token(), now=datetime(2026, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="positive timedelta"):
        _read(_token(), max_age=timedelta(0))


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("", "not two parts"),
        ("abc", "not two parts"),
        ("a.b.c", "not two parts"),
        ("abc.", "not two parts"),
        (".abc", "not two parts"),
        ("ab+c." + "A" * 43, "payload is not base64url"),
        ("abcd=." + "A" * 43, "payload is not base64url"),
        ("abcde." + "A" * 43, "payload is not base64url"),
        ("abcd." + "A" * 42, "signature is not a base64url HMAC-SHA256"),
        ("abcd." + "A" * 42 + "/", "signature is not a base64url HMAC-SHA256"),
        ("a" * 3000 + "." + "A" * 43, "longer than"),
    ],
)
def test_malformed_tokens_say_what_is_wrong(token: str, says: str) -> None:
    error = _failure(token)
    assert error.reason == "malformed"
    assert says in str(error)


def _without(field: str) -> dict:
    return {key: value for key, value in GOOD.items() if key != field}


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_without("v"), "no version"),
        ({**GOOD, "v": 2}, "unknown version the number 2"),
        ({**GOOD, "v": "1"}, "unknown version"),
        ({**GOOD, "v": True}, "unknown version"),
        (_without("s"), "lacks the subject ref ('s')"),
        (_without("t"), "lacks the issue time ('t')"),
        ({"v": 1}, "lacks the controller ('c'), subject ref ('s'), scope ('u'), issue time"),
        ({**GOOD, "c": 5}, "controller ('c') is not text"),
        ({**GOOD, "s": "alice@example.com"}, "subject ref ('s') is not 32 lowercase hex"),
        ({**GOOD, "u": "list:BAD"}, "scope ('u') is not valid"),
        ({**GOOD, "t": "yesterday"}, "not whole unix seconds"),
        ({**GOOD, "t": 1.5}, "not whole unix seconds"),
        ({**GOOD, "t": True}, "not whole unix seconds"),
        ({**GOOD, "t": 10**20}, "out of range"),
    ],
)
def test_signed_but_malformed_payloads_say_what_is_wrong(payload: bytes | dict, says: str) -> None:
    error = _failure(_signed(payload))
    assert error.reason == "malformed"
    assert says in str(error)
    assert "alice@example.com" not in str(error)


def test_a_correctly_signed_payload_from_elsewhere_is_read() -> None:
    assert _read(_signed(GOOD)).scope == UnsubscribeScope.everything()


@pytest.mark.parametrize(
    "ref",
    [
        "alice@example.com",
        "+447700900123",
        SUBJECT.upper(),
        SUBJECT[:-1],
        SUBJECT + "0",
        "01234567-89ab-cdef-0123-456789abcdef",
        "g" * 32,
        "",
        None,
    ],
)
def test_the_subject_ref_must_be_an_opaque_id(ref: object) -> None:
    with pytest.raises(ValueError, match="32 lowercase hex") as caught:
        _token(subject_ref=ref)
    if ref:
        assert str(ref) not in str(caught.value)


def test_keys_must_be_at_least_32_bytes() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        _token(key=b"short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        _read(_token(), key=KEY[:31])
    with pytest.raises(TypeError, match="must be bytes"):
        _token(key="k" * 32)


def test_the_controller_must_be_named() -> None:
    with pytest.raises(ValueError, match="controller id"):
        _token(controller="")


# --- links and headers ------------------------------------------------------------------


def test_one_click_headers_for_a_url() -> None:
    assert one_click_headers(url="https://shop.example/privacy/unsubscribe/abc.def") == {
        "List-Unsubscribe": "<https://shop.example/privacy/unsubscribe/abc.def>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_one_click_headers_with_a_mailto() -> None:
    headers = one_click_headers(
        url="https://shop.example/u/abc.def", mailto="unsubscribe@shop.example"
    )
    assert headers == {
        "List-Unsubscribe": (
            "<https://shop.example/u/abc.def>, "
            "<mailto:unsubscribe@shop.example?subject=unsubscribe>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    again = one_click_headers(
        url="https://shop.example/u/abc.def", mailto="MAILTO:unsubscribe@shop.example"
    )
    assert again == headers


@pytest.mark.parametrize(
    ("url", "header"),
    [
        ("https://shop.example/désabonner/t", "<https://shop.example/d%C3%A9sabonner/t>"),
        ("https://shop.example/a%20b/t", "<https://shop.example/a%20b/t>"),
        ("https://shop.example/100%/t", "<https://shop.example/100%25/t>"),
        ('https://shop.example/t?x="y"', "<https://shop.example/t?x=%22y%22>"),
        ("https://bücher.example/t", "<https://xn--bcher-kva.example/t>"),
        ("HTTPS://shop.example:8443/t", "<https://shop.example:8443/t>"),
    ],
)
def test_urls_are_percent_encoded(url: str, header: str) -> None:
    assert one_click_headers(url=url)["List-Unsubscribe"] == header


@pytest.mark.parametrize(
    ("address", "uri"),
    [
        ("un&sub@shop.example", "mailto:un%26sub@shop.example?subject=unsubscribe"),
        ("a+b@shop.example", "mailto:a+b@shop.example?subject=unsubscribe"),
        ("100%@shop.example", "mailto:100%25@shop.example?subject=unsubscribe"),
        (
            "désinscrire@bücher.example",
            "mailto:d%C3%A9sinscrire@xn--bcher-kva.example?subject=unsubscribe",
        ),
    ],
)
def test_mailto_addresses_are_percent_encoded(address: str, uri: str) -> None:
    headers = one_click_headers(url="https://shop.example/t", mailto=address)
    assert headers["List-Unsubscribe"] == f"<https://shop.example/t>, <{uri}>"


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("nobody", "not an email address"),
        ("@shop.example", "not an email address"),
        ("a@", "not an email address"),
        ("a@shop example", "whitespace"),
        ("a,b@shop.example", "','"),
        ("a@shop.example>", "'>'"),
        ("a@shop.example?subject=x", "valid email domain"),
        ("", "must be an email address"),
    ],
)
def test_bad_mailto_addresses_are_refused(address: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        one_click_headers(url="https://shop.example/t", mailto=address)


def test_http_is_refused_but_localhost_is_allowed_for_development() -> None:
    with pytest.raises(ValueError, match=r"must use https://.*RFC 8058"):
        one_click_headers(url="http://shop.example/u/t")
    for url in ("http://localhost:8000/u/t", "http://127.0.0.1/u/t", "http://[::1]:8000/u/t"):
        assert one_click_headers(url=url)["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.example/u/t",
        "mailto:unsubscribe@shop.example",
        "/privacy/unsubscribe/t",
        "shop.example/u/t",
        "https:///u/t",
        "",
    ],
)
def test_only_absolute_https_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        one_click_headers(url=url)


def test_urls_with_credentials_or_bad_ports_are_refused() -> None:
    with pytest.raises(ValueError, match="user name or password"):
        one_click_headers(url="https://user:secret@shop.example/u/t")
    with pytest.raises(ValueError, match="invalid host or port"):
        one_click_headers(url="https://shop.example:99999/u/t")


@pytest.mark.parametrize("char", ["<", ">", ",", " ", "\t", "\r\n", "\x00", "\x7f", "\u2028"])
def test_header_breaking_characters_are_refused_without_echoing_the_url(char: str) -> None:
    token = _token()
    url = f"https://shop.example/u{char}x/{token}"
    with pytest.raises(ValueError, match="would break the List-Unsubscribe header") as caught:
        one_click_headers(url=url)
    assert token not in str(caught.value)
    assert SUBJECT not in str(caught.value)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (BASE, f"{BASE}/TOKEN"),
        (BASE + "/", f"{BASE}/TOKEN"),
        ("https://shop.example", "https://shop.example/TOKEN"),
        ("https://shop.example/u?lang=fr", "https://shop.example/u/TOKEN?lang=fr"),
        ("http://localhost:8000/u", "http://localhost:8000/u/TOKEN"),
    ],
)
def test_unsubscribe_url_puts_the_token_in_the_path(base: str, url: str) -> None:
    token = _token()
    assert unsubscribe_url(base, token) == url.replace("TOKEN", token)


def test_unsubscribe_url_refuses_what_is_not_a_token_or_not_https() -> None:
    for bad in ("", "abc", "a.b/../c", "a.b?x=1", "../a.b"):
        with pytest.raises(ValueError, match="unsubscribe token made by make_token"):
            unsubscribe_url(BASE, bad)
    with pytest.raises(ValueError, match="https://"):
        unsubscribe_url("http://shop.example/u", _token())


def test_headers_for_mints_a_token_and_returns_both_headers() -> None:
    headers = headers_for(
        KEY,
        controller="acme",
        subject_ref=SUBJECT,
        scope="channel:email",
        base_url=BASE,
        mailto="unsubscribe@shop.example",
        issued_at=T0,
    )
    token = _token("channel:email")
    assert headers == {
        "List-Unsubscribe": (
            f"<{BASE}/{token}>, <mailto:unsubscribe@shop.example?subject=unsubscribe>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    found = re.match(
        r"<https://shop\.example/privacy/unsubscribe/([^>]+)>", headers["List-Unsubscribe"]
    )
    assert found is not None
    assert _read(found.group(1)).scope == UnsubscribeScope.of_channel(Channel.email)
    assert SUBJECT not in headers["List-Unsubscribe"]
