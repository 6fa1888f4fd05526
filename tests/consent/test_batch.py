"""Batch decisions (`decide_many`) answer exactly as `decide` does, one subject at a time.

`decide_many` reads driver rows and decides once per distinct state shape
(lawful.consent.batch); these tests hold it to `decide` over a population that reaches
every rule, for every purpose of the test policy and the ways of asking, through each
way the rows are read (hashes inline, as an array or an IN list, the whole-controller
scan, subjects by id), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lawful.audit.log import AuditLog
from lawful.consent import ChoiceInput, DecisionLogging, Signals, Status, Topic, UnknownName, ledger
from lawful.consent.decide import Decision
from lawful.engine import Engine
from lawful.subjects import Identity, IdentityError, Keyring, Subject
from tests.consent.conftest import POLICY, open_engine

NOW = datetime.now(UTC).replace(microsecond=123456)
V1 = POLICY.read_text()
# Version 2 changes the analytics and ad purposes materially (their consent must be
# renewed) and refuses visitors under 13.
V2 = (
    V1.replace(
        "    categories: [user.device.cookie_id]\n    cookies: [analytics]",
        "    categories: [user.device.cookie_id, user.name]\n    cookies: [analytics]",
    )
    .replace(
        "    categories: [user.device.cookie_id]\n    sale: true",
        "    categories: [user.device.cookie_id, user.name]\n    sale: true",
    )
    .replace("  visitor: {}\n", "  visitor: {min_age: 13, below_min_age: [refuse]}\n")
)
assert V2.count("user.name]") == V1.count("user.name]") + 2 and "min_age: 13" in V2
PARENT = "email:parent@example.com"
DEVICE = "0" * 64  # a cookie choice for one device, which decisions do not read
OFF = DecisionLogging(mode="off")

GIVEN, WITHDRAWN, REFUSED, REQUESTED = (
    Status.given,
    Status.withdrawn,
    Status.refused,
    Status.requested,
)


def years_ago(years: int, days: int = 0) -> date:
    today = NOW.date()
    return today.replace(year=today.year - years) - timedelta(days=days)


def choice(topic: str, key: str, state: Status, **fields: Any) -> dict[str, Any]:
    return {"topic": Topic(topic), "key": key, "state": state, **fields}


# Each profile: the subject's attributes and choices. Every profile is given to two
# people, so decisions are shared between subjects of one shape.
PROFILES: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "known, no choice": ({"kind": "visitor"}, []),
    "given": ({}, [choice("consent", "newsletter", GIVEN)]),
    "given by import": ({}, [choice("consent", "newsletter", GIVEN, method="import")]),
    "withdrawn": ({}, [choice("consent", "newsletter", WITHDRAWN)]),
    "refused": ({}, [choice("consent", "newsletter", REFUSED)]),
    "requested": ({}, [choice("consent", "newsletter", REQUESTED)]),
    "expired 400 days": ({}, [choice("consent", "newsletter", GIVEN, at=NOW - timedelta(400))]),
    "expired 500 days": ({}, [choice("consent", "newsletter", GIVEN, at=NOW - timedelta(500))]),
    "expires in an hour": (
        {},
        [choice("consent", "newsletter", GIVEN, expires_at=NOW + timedelta(hours=1))],
    ),
    "expired an hour ago": (
        {},
        [choice("consent", "newsletter", GIVEN, expires_at=NOW - timedelta(hours=1))],
    ),
    "expires now": ({}, [choice("consent", "newsletter", GIVEN, expires_at=NOW)]),
    "expired, state says so": ({}, [choice("consent", "newsletter", Status.expired)]),
    "renewed": ({}, [choice("consent", "newsletter", Status.renewed)]),
    "restricted": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("restriction", "*", WITHDRAWN)],
    ),
    "restriction lifted": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("restriction", "*", GIVEN)],
    ),
    "objected": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("objection", "newsletter", WITHDRAWN)],
    ),
    "objected to fraud": ({}, [choice("objection", "fraud", WITHDRAWN)]),
    "objected to marketing": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("objection", "*marketing", WITHDRAWN)],
    ),
    "objection withdrawn": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("objection", "*marketing", GIVEN)],
    ),
    "opted out of sale": ({"jurisdiction": "us-ca"}, [choice("opt_out", "sale", WITHDRAWN)]),
    "opted out of sharing": ({"jurisdiction": "us-ca"}, [choice("opt_out", "share", WITHDRAWN)]),
    "opted out of targeting": (
        {"jurisdiction": "us-ca"},
        [choice("opt_out", "targeted_advertising", WITHDRAWN)],
    ),
    "limited ad tracking": (
        {"jurisdiction": "us-ca"},
        [choice("opt_out", "ad_tracking", WITHDRAWN)],
    ),
    "opted back in": ({"jurisdiction": "us-ca"}, [choice("opt_out", "sale", GIVEN)]),
    "californian": ({"jurisdiction": "us-ca"}, [choice("consent", "ad_sharing", GIVEN)]),
    "european ad consent": ({"jurisdiction": "eu"}, [choice("consent", "ad_sharing", GIVEN)]),
    "european ad consent under v1": (
        {"jurisdiction": "eu"},
        [choice("consent", "ad_sharing", GIVEN, policy_version=1)],
    ),
    "left email": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("channel", "email", WITHDRAWN)],
    ),
    "back on email": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("channel", "email", GIVEN)],
    ),
    "left news": ({}, [choice("consent", "newsletter", GIVEN), choice("list", "news", WITHDRAWN)]),
    "left every list": (
        {},
        [choice("consent", "newsletter", GIVEN), choice("list", "*", WITHDRAWN)],
    ),
    "sms only": ({}, [choice("consent", "newsletter", GIVEN, scope="sms")]),
    "news only": ({}, [choice("consent", "newsletter", GIVEN, scope="list:news")]),
    "sms given, email withdrawn": (
        {},
        [
            choice("consent", "newsletter", GIVEN, scope="sms"),
            choice("consent", "newsletter", WITHDRAWN, scope="email"),
        ],
    ),
    "analytics under v2": (
        {},
        [choice("consent", "site_analytics", GIVEN), choice("cookie", "analytics", GIVEN)],
    ),
    "analytics under v1": (
        {},
        [
            choice("consent", "site_analytics", GIVEN, policy_version=1),
            choice("cookie", "analytics", GIVEN),
        ],
    ),
    "analytics, version unknown": (
        {},
        [
            choice("consent", "site_analytics", GIVEN, policy_version=0),
            choice("cookie", "analytics", GIVEN),
        ],
    ),
    "analytics cookies refused": (
        {},
        [choice("consent", "site_analytics", GIVEN), choice("cookie", "analytics", REFUSED)],
    ),
    "analytics cookies on a device only": (
        {},
        [
            choice("consent", "site_analytics", GIVEN),
            choice("cookie", "analytics", GIVEN, scope=DEVICE),
        ],
    ),
    "adnet restricted": ({"jurisdiction": "us-ca"}, [choice("recipient", "adnet", WITHDRAWN)]),
    "child, no parent": (
        {"kind": "customer", "jurisdiction": "eu", "birth_date": years_ago(15)},
        [choice("consent", "newsletter", GIVEN)],
    ),
    "child with a parent": (
        {"kind": "customer", "jurisdiction": "eu", "birth_date": years_ago(15)},
        [choice("parental", "*", GIVEN), choice("consent", "newsletter", GIVEN)],
    ),
    "child, parent gave consent": (
        {"kind": "customer", "jurisdiction": "eu", "birth_date": years_ago(15)},
        [choice("parental", "*", GIVEN), choice("consent", "newsletter", GIVEN, method="parent")],
    ),
    "child, parent withdrew": (
        {"kind": "customer", "jurisdiction": "eu", "birth_date": years_ago(15, days=40)},
        [
            choice("parental", "*", WITHDRAWN),
            choice("consent", "newsletter", GIVEN, method="parent"),
        ],
    ),
    "sixteen with a parent": (
        {"kind": "customer", "jurisdiction": "eu", "birth_date": years_ago(16)},
        [choice("parental", "*", GIVEN), choice("consent", "newsletter", GIVEN)],
    ),
    "german visitor, 14": (
        {"kind": "visitor", "jurisdiction": "eu", "country": "DE", "birth_date": years_ago(14)},
        [choice("consent", "newsletter", GIVEN)],
    ),
    "german visitor, 14, parent gave consent": (
        {"kind": "visitor", "jurisdiction": "eu", "country": "DE", "birth_date": years_ago(14)},
        [choice("consent", "newsletter", GIVEN, method="parent")],
    ),
    "sixteen today": (
        {"kind": "customer", "birth_date": years_ago(16)},
        [choice("consent", "newsletter", GIVEN)],
    ),
    "sixteen tomorrow": (
        {"kind": "customer", "birth_date": years_ago(16, days=-1)},
        [choice("consent", "newsletter", GIVEN)],
    ),
    "french visitor, 15": (
        {"kind": "visitor", "jurisdiction": "eu", "country": "FR", "birth_date": years_ago(15)},
        [choice("consent", "newsletter", GIVEN)],
    ),
    "german visitor, 15": (
        {"kind": "visitor", "jurisdiction": "eu", "country": "DE", "birth_date": years_ago(15)},
        [choice("consent", "newsletter", GIVEN)],
    ),
    "kind unknown, 12": ({"birth_date": years_ago(12)}, [choice("consent", "newsletter", GIVEN)]),
    "visitor, 12": ({"kind": "visitor", "birth_date": years_ago(12)}, []),
    "adult customer": (
        {"kind": "customer", "birth_date": years_ago(40)},
        [choice("consent", "newsletter", GIVEN), choice("opt_out", "sale", WITHDRAWN)],
    ),
}

# The ways of asking: every purpose with each of these (some refuse or raise).
QUESTIONS: list[dict[str, Any]] = [
    {},
    {"channel": "email"},
    {"channel": "sms"},
    {"list_name": "news"},
    {"list_name": "deals"},
    {"channel": "email", "list_name": "news"},
    {"jurisdiction": "eu"},
    {"jurisdiction": "us-ca"},
    {"recipient": "adnet"},
    {"recipient": "mailer"},
    {"signals": Signals(gpc=True)},
    {"signals": Signals(dnt=True)},
    {"signals": Signals(gpc=True, dnt=True), "jurisdiction": "us-ca", "recipient": "adnet"},
    {"now": NOW + timedelta(days=400)},  # a year on: more consents have expired
]


@pytest.fixture
def population(store_url: str, keyring: Keyring) -> Iterator[tuple[Engine, list[Any]]]:
    """An engine on policy version 2 and a batch naming everyone in PROFILES, twice
    each, plus people nobody knows, duplicates, other spellings and Subject objects."""
    with open_engine(store_url, keyring, V1, decision_logging=OFF):
        pass
    engine = open_engine(store_url, keyring, V2, decision_logging=OFF)
    assert set(engine.recorded.version.renew_consent or ()) == {"ad_sharing", "site_analytics"}
    people: list[str] = []
    items: list[ChoiceInput] = []
    for n, (attributes, choices) in enumerate(PROFILES.values()):
        for copy in "ab":
            person = f"email:p{n}{copy}@example.com"
            people.append(person)
            if attributes:
                engine.consent.set_subject(person, **attributes)
            for made in choices:
                fields = {"at": NOW - timedelta(days=1), **made}
                if copy == "b" and "at" in made:
                    fields["at"] = made["at"] - timedelta(hours=3)  # same day, another time
                items.append(ChoiceInput(person, **fields))
    engine.consent.record_many(items)
    engine.consent.link(people[2], "phone:+37251234567")
    subjects = [engine.consent.subject(p) for p in people[:6]]
    batch: list[Any] = [
        *people,
        "email:nobody@example.com",
        "account:nobody",
        people[3].upper().replace("EMAIL:", "email: "),  # the same person, typed again
        people[5],  # twice in one batch
        "phone:+37251234567",  # another identity of people[2]
        "P7A@EXAMPLE.COM",  # a bare address
        Identity.parse(people[8]),
        *[s for s in subjects if s is not None],
    ]
    try:
        yield engine, batch
    finally:
        engine.close()


def one_at_a_time(engine: Engine, batch: list[Any], purpose: str, **asked: Any) -> Any:
    try:
        return [engine.decide(s, purpose, **asked) for s in batch]
    except Exception as error:  # the batch must fail the same way
        return (type(error), str(error))


def all_at_once(engine: Engine, batch: list[Any], purpose: str, **asked: Any) -> Any:
    try:
        return engine.decide_many(batch, purpose, **asked)
    except Exception as error:
        return (type(error), str(error))


@pytest.mark.parametrize("read", ["as read", "scan", "inline", "subjects"])
def test_decide_many_equals_decide_for_every_rule(
    population: tuple[Engine, list[Any]], read: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, batch = population
    if read == "scan":  # the batch names most identities: one query over all of them
        monkeypatch.setattr(ledger, "_SCAN_FROM", 10)
    elif read == "inline":  # PostgreSQL writes batches of up to 50 hashes inline
        batch = batch[::3]
        assert len(batch) <= 50
    elif read == "subjects":  # Subjects are read by id (more than 50: an array on PostgreSQL)
        people = [engine.consent.subject(p) for p in batch if isinstance(p, str)]
        batch = [p for p in people if p is not None] + batch[-8:]
        assert len(batch) > 60
    rules: set[str] = set()
    for purpose in engine.policy.purposes:
        for question in QUESTIONS:
            asked = {"now": NOW, **question}
            expected = one_at_a_time(engine, batch, purpose, **asked)
            got = all_at_once(engine, batch, purpose, **asked)
            assert got == expected, (purpose, question)
            if isinstance(got, list):
                assert all(type(d) is Decision for d in got)
                rules.update(d.rule for d in got)
    if read != "inline":
        # The population reaches every rule (and so the comparison covers them).
        assert rules >= {
            "restriction",
            "age.below_minimum",
            "age.parental_consent_missing",
            "objection",
            "recipient.not_declared",
            "recipient.restricted",
            "opt_out.sale",
            "opt_out.share",
            "opt_out.targeted_advertising",
            "opt_out.ad_tracking",
            "signal.gpc",
            "signal.dnt",
            "channel.not_declared",
            "channel.unsubscribed",
            "list.not_declared",
            "list.unsubscribed",
            "cookie.not_accepted",
            "consent.missing",
            "consent.requested",
            "consent.refused",
            "consent.withdrawn",
            "consent.expired",
            "consent.renewal_needed",
            "basis.consent",
            "basis.contract",
            "basis.legitimate_interests",
        }


def test_expiry_refusals_name_each_subjects_day(population: tuple[Engine, list[Any]]) -> None:
    engine, batch = population
    decisions = engine.decide_many(batch, "newsletter", now=NOW)
    expired = {d.reason for d in decisions if d.rule == "consent.expired"}
    for days in (400, 500):
        day = (NOW - timedelta(days - 365)).date()
        assert any(day.isoformat() in reason for reason in expired), days
    assert any(NOW.date().isoformat() in reason for reason in expired)  # an hour ago, now


def test_a_batch_decides_once_per_shape(
    population: tuple[Engine, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, batch = population
    decider = engine.consent.decider
    calls: list[object] = []
    original = decider.decide

    def counted(*args: Any, **kwargs: Any) -> Decision:
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(decider, "decide", counted)
    decisions = engine.decide_many(batch, "newsletter", channel="email", now=NOW)
    assert len(decisions) == len(batch) > 2 * len(PROFILES)
    # The two people of a profile share a shape, unless their consents, three hours
    # apart, expired on two days; and nobody known is one more.
    assert len(calls) <= len(PROFILES) + 3


def test_a_bad_identity_in_a_whole_read_leaves_the_connection_usable(
    population: tuple[Engine, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, batch = population
    monkeypatch.setattr(ledger, "_SCAN_FROM", 10)
    # On PostgreSQL the whole read is sent before the identities are hashed.
    with pytest.raises(IdentityError, match="no '@'"):
        engine.decide_many([*batch[:-6], "email:nobody.example.com"], "newsletter")
    asked = {"now": NOW, "channel": "email"}
    expected = one_at_a_time(engine, batch, "newsletter", **asked)
    for _ in range(6):  # whichever connection of the pool (5) comes next
        assert engine.decide_many(batch, "newsletter", **asked) == expected


def test_unknown_subjects_and_empty_batches(engine: Engine) -> None:
    assert engine.decide_many([], "newsletter") == []
    nobody = ["email:a@example.com", "account:nobody", "+37251234567"]
    assert engine.decide_many(nobody, "newsletter", now=NOW) == [
        engine.decide(p, "newsletter", now=NOW) for p in nobody
    ]
    with pytest.raises(UnknownName, match="recipient"):
        engine.decide_many(nobody, "ad_sharing", recipient="nobody")
    with pytest.raises(IdentityError) as raised:
        engine.decide_many(["email:a@example.com", "email:not an address"], "newsletter")
    with pytest.raises(IdentityError) as single:
        engine.decide("email:not an address", "newsletter")
    assert str(raised.value) == str(single.value)


def test_decide_many_logs_each_decision_under_its_subject(store_url: str, keyring: Keyring) -> None:
    logging = DecisionLogging(mode="all", batch=1000)
    with open_engine(store_url, keyring, decision_logging=logging) as engine:
        people = [f"email:log{i}@example.com" for i in range(4)]
        engine.consent.give(people[0], "newsletter")
        engine.consent.restrict(people[1])
        engine.consent.give(people[2], "newsletter", channel="sms")
        engine.consent.record_many([ChoiceInput(people[3], Topic.opt_out, "sale", WITHDRAWN)])
        engine.consent.give(people[3], "newsletter")
        batch = [*people, "email:nobody@example.com", people[0]]
        after = AuditLog(engine.store, engine.policy.key).events(last=1)[0].seq
        decisions = engine.decide_many(batch, "newsletter")
        written = [
            e
            for e in AuditLog(engine.store, engine.policy.key).events(after=after)
            if e.kind.startswith("decision.")
        ]
        found = [engine.consent.subject(p) for p in batch]
        assert [e.subject for e in written] == [
            keyring.subject_hash(s.ref) if isinstance(s, Subject) else None for s in found
        ]
        assert [(e.data or {}).get("rule") for e in written] == [d.rule for d in decisions]
        assert [d.rule for d in decisions] == [
            "basis.consent",
            "restriction",
            "consent.missing",
            "basis.consent",
            "consent.missing",
            "basis.consent",
        ]


# -- the rows behind it ----------------------------------------------------------------------


def test_state_rows_by_hash_reads_every_choice_and_only_the_hashes_asked(
    population: tuple[Engine, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, batch = population
    consent = engine.consent
    people = [p for p in batch[:20] if isinstance(p, str)]
    hashes = consent.keyring.hash_many(people)
    with engine.store.engine.connect() as conn:
        by_hash = ledger.load_states_by_hash(conn, consent.controller_id, hashes)
        monkeypatch.setattr(ledger, "_SCAN_FROM", 10)
        scanned = ledger.load_states_by_hash(conn, consent.controller_id, [*hashes, "f" * 64])
    assert set(by_hash) == set(scanned) == set(hashes)
    for person, digest in zip(people, hashes, strict=True):
        state = consent.state(person)
        for read in (by_hash[digest], scanned[digest]):
            assert read == state  # attributes, id, ref and every choice with its expiry


def test_state_rows_keep_times_aware_and_dates_as_dates(engine: Engine) -> None:
    engine.consent.set_subject("email:t@example.com", birth_date=date(1990, 2, 3))
    engine.consent.give("email:t@example.com", "newsletter", at=NOW)
    state = engine.consent.state("email:t@example.com")
    assert state.birth_date == date(1990, 2, 3)
    given = state.get("consent", "newsletter")
    assert given is not None and given.expires_at is not None
    assert given.expires_at.tzinfo is not None
    assert given.expires_at == NOW.replace(year=NOW.year + 1)
