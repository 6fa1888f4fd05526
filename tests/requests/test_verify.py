"""Identity verification: one-time codes, signed-in assertions, agents and parents."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from lawful.requests.tables import verification_codes
from lawful.requests.verify import (
    AssertionRejected,
    CodeCheck,
    CodeLimitReached,
    CodeResult,
    OnBehalf,
    OnBehalfError,
    check_code,
    issue_code,
    on_behalf_record,
    read_assertion,
    sign_assertion,
    uniform_delay,
    uniform_time,
)
from lawful.store.store import Store, open_store
from lawful.subjects import Identity, Keyring
from tests.requests.request_rows import new_request

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def request_id(store: Store, keyring: Keyring) -> int:
    return new_request(store, keyring, now=T0)


def issue(store: Store, keyring: Keyring, request_id: int, **kwargs: object) -> str:
    now = kwargs.pop("now", T0)
    channel = kwargs.pop("channel", "email")
    return store.write(
        lambda conn: issue_code(conn, keyring, request_id, channel, now, **kwargs)  # type: ignore[arg-type]
    )


def check(
    store: Store, keyring: Keyring, request_id: int, code: object, **kwargs: object
) -> CodeCheck:
    now = kwargs.pop("now", T0 + timedelta(minutes=1))
    return store.write(
        lambda conn: check_code(conn, keyring, request_id, code, now, **kwargs)  # type: ignore[arg-type]
    )


def other(code: str) -> str:
    """A code of the same length that is not `code`."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


# --- codes ------------------------------------------------------------------------------


def test_a_code_is_numeric_and_stored_only_as_a_keyed_hash(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    code = issue(store, keyring, request_id, length=8)
    assert len(code) == 8 and code.isdigit()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(verification_codes)).all()
    assert len(rows) == 1
    row = rows[0]
    assert code not in repr(tuple(row))
    # Not a plain hash of the code either: a million guesses at SHA-256 would find it.
    assert row.code_hash != hashlib.sha256(code.encode()).hexdigest()
    assert row.expires_at == T0 + timedelta(minutes=30)
    assert row.channel == "email" and row.attempts == 0 and row.used_at is None


def test_the_right_code_verifies_once(store: Store, keyring: Keyring, request_id: int) -> None:
    code = issue(store, keyring, request_id)
    assert check(store, keyring, request_id, code) == CodeCheck(CodeResult.ok, 5)
    with store.engine.connect() as conn:
        used_at = conn.scalar(sa.select(verification_codes.c.used_at))
    assert used_at == T0 + timedelta(minutes=1)
    assert check(store, keyring, request_id, code).result is CodeResult.used


def test_spaces_and_dashes_typed_in_a_code_are_ignored(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    code = issue(store, keyring, request_id)
    typed = f" {code[:3]} - {code[3:]}\n"
    assert check(store, keyring, request_id, typed).result is CodeResult.ok


def test_a_code_expires(store: Store, keyring: Keyring, request_id: int) -> None:
    code = issue(store, keyring, request_id, ttl=timedelta(minutes=10))
    late = T0 + timedelta(minutes=10)
    assert check(store, keyring, request_id, code, now=late) == CodeCheck(CodeResult.expired, 5)
    # Still expired, however often it is tried, and never spent.
    assert check(store, keyring, request_id, code, now=late).result is CodeResult.expired
    just_in_time = T0 + timedelta(minutes=9, seconds=59)
    assert check(store, keyring, request_id, code, now=just_in_time).result is CodeResult.ok


def test_wrong_attempts_are_counted_then_the_code_locks(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    code = issue(store, keyring, request_id)
    results = [check(store, keyring, request_id, other(code), max_attempts=3) for _ in range(3)]
    assert results == [
        CodeCheck(CodeResult.wrong, 2),
        CodeCheck(CodeResult.wrong, 1),
        CodeCheck(CodeResult.locked, 0),
    ]
    # Locked: even the right code no longer works; a new code is needed.
    assert check(store, keyring, request_id, code, max_attempts=3).result is CodeResult.locked
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(verification_codes.c.attempts)) == 3
    fresh = issue(store, keyring, request_id, now=T0 + timedelta(minutes=2))
    assert check(store, keyring, request_id, fresh, now=T0 + timedelta(minutes=3)).ok


@pytest.mark.parametrize(
    "typed", ["", "abcdef", "12345", "1234567", "12 34 5x", "١٢٣٤٥٦", None, 123456, "0" * 10_000]
)
def test_a_malformed_code_is_wrong_and_counted_never_an_error(
    store: Store, keyring: Keyring, request_id: int, typed: object
) -> None:
    issue(store, keyring, request_id)
    assert check(store, keyring, request_id, typed) == CodeCheck(CodeResult.wrong, 4)
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(verification_codes.c.attempts)) == 1


def test_no_code_issued(store: Store, keyring: Keyring, request_id: int) -> None:
    assert check(store, keyring, request_id, "123456") == CodeCheck(CodeResult.none, 0)


def test_a_new_code_invalidates_the_earlier_ones(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    first = issue(store, keyring, request_id)
    second = issue(store, keyring, request_id, now=T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=2)
    if first != second:  # one chance in a million they are the same
        assert check(store, keyring, request_id, first, now=later).result is CodeResult.wrong
    with store.engine.connect() as conn:
        expiries = conn.scalars(
            sa.select(verification_codes.c.expires_at).order_by(verification_codes.c.id)
        ).all()
    assert expiries == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=31)]
    assert check(store, keyring, request_id, second, now=later).ok


def test_a_code_works_only_for_its_request_and_channel(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    other_request = new_request(store, keyring, identity="email:bob@example.com", now=T0)
    code = issue(store, keyring, request_id, channel="email")
    other_code = issue(store, keyring, other_request, channel="email")
    if code != other_code:
        assert check(store, keyring, other_request, code).result is CodeResult.wrong
    # Asked for a code sent by SMS, an email code does not count.
    assert check(store, keyring, request_id, code, channel="phone").result is CodeResult.none
    phone_code = issue(store, keyring, request_id, channel="phone", now=T0 + timedelta(seconds=1))
    # The email code was invalidated by the phone code.
    email_check = check(store, keyring, request_id, phone_code, channel="email")
    assert email_check.result is CodeResult.expired
    assert check(store, keyring, request_id, phone_code, channel="phone").ok


def test_a_code_typed_twice_at_once_verifies_once(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    code = issue(store, keyring, request_id)
    results: list[CodeResult] = []
    start = threading.Barrier(4)

    def attempt() -> None:
        start.wait()
        results.append(check(store, keyring, request_id, code).result)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [CodeResult.ok, CodeResult.used, CodeResult.used, CodeResult.used]


def test_the_same_code_text_hashes_differently_per_request_and_channel(
    keyring: Keyring,
) -> None:
    from lawful.requests.verify import _code_hash

    hashes = {
        _code_hash(keyring, 1, "email", "123456"),
        _code_hash(keyring, 2, "email", "123456"),
        _code_hash(keyring, 1, "phone", "123456"),
        _code_hash(Keyring.generate(), 1, "email", "123456"),
    }
    assert len(hashes) == 4


def test_codes_a_request_may_get_are_limited_per_hour(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    for minute in range(5):
        issue(store, keyring, request_id, now=T0 + timedelta(minutes=minute))
    with pytest.raises(CodeLimitReached) as caught:
        issue(store, keyring, request_id, now=T0 + timedelta(minutes=30))
    assert caught.value.retry_at == T0 + timedelta(hours=1)
    assert "at most 5" in str(caught.value) and "after 2026-03-02T10:00:00Z" in str(caught.value)
    # A refused issue leaves the last code working.
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(verification_codes)) == 5
    # Once the first code is an hour old, one more may be sent.
    issue(store, keyring, request_id, now=T0 + timedelta(hours=1, seconds=1))
    other_request = new_request(store, keyring, identity="email:bob@example.com", now=T0)
    issue(store, keyring, other_request, now=T0 + timedelta(minutes=30))  # per request


def test_bad_arguments_to_issue_code_say_what_to_pass(
    store: Store, keyring: Keyring, request_id: int
) -> None:
    with pytest.raises(ValueError, match="channel='email' or channel='phone'"):
        issue(store, keyring, request_id, channel="pigeon")
    with pytest.raises(ValueError, match="4 to 10 digits"):
        issue(store, keyring, request_id, length=3)
    with pytest.raises(ValueError, match="no request with id 999999"):
        issue(store, keyring, 999_999)
    with pytest.raises(ValueError, match="timezone-aware"):
        issue(store, keyring, request_id, now=datetime(2026, 3, 2, 9, 0))


# --- signed-in assertions ---------------------------------------------------------------

ADA = Identity.parse("email:Ada@Example.com")


def test_an_assertion_vouches_for_the_identity(keyring: Keyring) -> None:
    token = sign_assertion(keyring, controller="shop", identity=ADA, now=T0)
    got = read_assertion(keyring, token, controller="shop", now=T0 + timedelta(minutes=9))
    assert got == ADA
    account = Identity.parse("account:u-42")
    token = sign_assertion(keyring, controller="shop", identity=account, now=T0)
    assert read_assertion(keyring, token, controller="shop", now=T0) == account


def _reject(keyring: Keyring, token: str, reason: str, **kwargs: object) -> str:
    kwargs.setdefault("controller", "shop")
    kwargs.setdefault("now", T0 + timedelta(minutes=1))
    with pytest.raises(AssertionRejected) as caught:
        read_assertion(keyring, token, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    message = str(caught.value)
    assert "ada" not in message.lower()
    assert len(token) < 4 or token not in message
    return message


def test_an_expired_assertion_is_rejected(keyring: Keyring) -> None:
    token = sign_assertion(keyring, controller="shop", identity=ADA, now=T0)
    message = _reject(keyring, token, "expired", now=T0 + timedelta(minutes=10))
    assert "expired at 2026-03-02T09:10:00Z" in message
    _reject(keyring, token, "future", now=T0 - timedelta(minutes=6))


def test_an_assertion_for_another_controller_is_rejected(keyring: Keyring) -> None:
    token = sign_assertion(keyring, controller="blog", identity=ADA, now=T0)
    message = _reject(keyring, token, "controller")
    assert "'blog', not 'shop'" in message


def test_a_tampered_assertion_is_rejected(keyring: Keyring) -> None:
    token = sign_assertion(keyring, controller="shop", identity=ADA, now=T0)
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["i"] = "eve@example.com"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    _reject(keyring, f"{forged}.{signature}", "signature")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    _reject(keyring, f"{body}.{flipped}", "signature")
    # Signed with another keyring (another installation's key).
    stranger = sign_assertion(Keyring.generate(), controller="shop", identity=ADA, now=T0)
    _reject(keyring, stranger, "signature")


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "two parts"),
        ("abc", "two parts"),
        ("a.b.c", "two parts"),
        ("ab$.cd", "not base64url"),
        ("abcd.short", "signature is not"),
        ("x" * 5000, "longer than"),
    ],
)
def test_a_malformed_assertion_is_rejected(keyring: Keyring, token: str, why: str) -> None:
    assert why in _reject(keyring, token, "malformed")


def test_a_signed_payload_that_is_not_an_assertion_is_malformed(keyring: Keyring) -> None:
    from lawful.requests import verify
    from lawful.subjects import tokens

    key = keyring.derive(verify._ASSERTION_KEY_PURPOSE)

    def signed(payload: object) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        return f"{body}.{tokens.signature(key, body)}"

    good = {"v": 1, "typ": "lawful-request-assertion", "c": "shop", "k": "email"}
    good |= {"i": "ada@example.com", "t": int(T0.timestamp()), "e": int(T0.timestamp()) + 600}
    assert read_assertion(keyring, signed(good), controller="shop", now=T0) == ADA
    assert "JSON object" in _reject(keyring, signed([1, 2]), "malformed")
    assert "version" in _reject(keyring, signed(good | {"v": 2}), "malformed")
    assert "not a lawful" in _reject(keyring, signed(good | {"typ": "other"}), "malformed")
    lacking = {k: v for k, v in good.items() if k != "i"}
    assert "identity ('i')" in _reject(keyring, signed(lacking), "malformed")
    assert "unknown kind" in _reject(keyring, signed(good | {"k": "dna"}), "malformed")
    assert "no '@'" in _reject(keyring, signed(good | {"i": "ada"}), "malformed")
    longer = good | {"e": good["t"] + 7200}
    assert "longer than 1 hour" in _reject(keyring, signed(longer), "malformed")


def test_sign_assertion_refuses_long_lived_tokens(keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="at most 1 hour"):
        sign_assertion(keyring, controller="shop", identity=ADA, now=T0, ttl=timedelta(days=1))
    with pytest.raises(TypeError, match="Identity"):
        sign_assertion(keyring, controller="shop", identity="email:a@b.co", now=T0)  # type: ignore[arg-type]


# --- agents and parents -----------------------------------------------------------------


def test_on_behalf_record_holds_no_raw_identity(keyring: Keyring) -> None:
    agent = Identity.parse("email:agent@lawyers.example")
    document = OnBehalf.document_hash(b"%PDF- signed permission")
    record = on_behalf_record(
        keyring, OnBehalf("agent", agent, "  signed   permission ", document.upper())
    )
    assert record == {
        "role": "agent",
        "actor_kind": "email",
        "actor_hash": keyring.hash(agent),
        "proof": "signed permission",
        "document_sha256": document,
    }
    assert "lawyers" not in json.dumps(record)
    parent = OnBehalf("parent", Identity.parse("+372 5123 4567"), "birth certificate")
    assert on_behalf_record(keyring, parent)["document_sha256"] is None


def test_on_behalf_needs_a_known_role_and_a_proof(keyring: Keyring) -> None:
    actor = Identity.parse("email:agent@lawyers.example")
    with pytest.raises(OnBehalfError, match="use 'agent' or 'parent'"):
        OnBehalf("friend", actor, "a note")  # type: ignore[arg-type]
    with pytest.raises(OnBehalfError, match="what proof was shown"):
        OnBehalf("agent", actor, "   ")
    with pytest.raises(OnBehalfError, match="64 hexadecimal"):
        OnBehalf("agent", actor, "power of attorney", "not-a-hash")
    with pytest.raises(OnBehalfError, match="must be an Identity"):
        OnBehalf("agent", "email:agent@lawyers.example", "power of attorney")  # type: ignore[arg-type]
    with pytest.raises(OnBehalfError, match=r"authorised_agents is false"):
        on_behalf_record(
            keyring, OnBehalf("agent", actor, "power of attorney"), agents_allowed=False
        )


# --- timing -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_uniform_time_makes_fast_and_slow_answers_take_the_floor() -> None:
    clock = FakeClock()
    with uniform_time(0.25, clock=clock, sleep=clock.sleep):
        clock.now += 0.01  # an unknown identity: no message to queue
    assert clock.slept == [pytest.approx(0.24)]
    clock.slept.clear()
    with uniform_time(0.25, clock=clock, sleep=clock.sleep):
        clock.now += 0.3  # slower than the floor: nothing added
    assert clock.slept == []
    with pytest.raises(RuntimeError), uniform_time(0.25, clock=clock, sleep=clock.sleep):
        raise RuntimeError("an error answer is delayed too")
    assert clock.slept == [pytest.approx(0.25)]
    clock.slept.clear()
    uniform_delay(clock.now - 0.1, 0.25, clock=clock, sleep=clock.sleep)
    assert clock.slept == [pytest.approx(0.15)]


def test_uniform_time_really_waits() -> None:
    import time

    started = time.monotonic()
    with uniform_time(0.05):
        pass
    assert time.monotonic() - started >= 0.05
