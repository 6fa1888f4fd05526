"""The breach register on SQLite and PostgreSQL, checked with plain SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from lawful.audit.tables import audit_events
from lawful.incidents import IncidentError, Incidents, SubjectHash
from lawful.incidents.tables import incident_subjects, incidents
from lawful.subjects import Identity

NOW = datetime.now(UTC).replace(microsecond=0)


def plain(store, sql: str) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql)]


def stored_hashes(store, number: int) -> set[str]:
    with store.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(incident_subjects.c.identity_hash)
                .join(incidents, incidents.c.id == incident_subjects.c.incident_id)
                .where(incidents.c.number == number)
            ).scalars()
        )


@pytest.fixture
def register(store, shop_policy, keyring, shop) -> Incidents:
    return Incidents(store, shop_policy, keyring, shop)


def test_affected_subjects_are_the_owners_plain_sql_finds(register, store, keyring) -> None:
    incident = register.open(
        NOW - timedelta(hours=3),
        "A payments export and the sign-in log were left readable",
        tables=["shop.payments", "login_events"],
        high_risk=True,
    )
    emails = plain(
        store,
        "SELECT DISTINCT c.email FROM payments p JOIN orders o ON p.order_id = o.id "
        "JOIN customers c ON o.customer_id = c.id "
        "UNION SELECT DISTINCT c.email FROM login_events l JOIN customers c ON l.customer_id = c.id",
    )
    expected = set(keyring.hash_many([f"email:{e}" for (e,) in emails]))
    assert len(expected) > 100
    assert stored_hashes(store, incident.number) == expected
    assert incident.subjects_count == len(expected)
    [(payments,)] = plain(store, "SELECT count(*) FROM payments")
    [(logins,)] = plain(store, "SELECT count(*) FROM login_events")
    assert incident.records_count == payments + logins
    assert incident.tables == ["shop.payments", "shop.login_events"]
    # nobody is known to lawful yet: the policy's jurisdiction applies
    assert incident.by_jurisdiction == {"": len(expected)}
    assert incident.jurisdictions == ["eu"]


def test_categories_alone_name_the_tables_holding_them(register, store, keyring) -> None:
    incident = register.open(NOW, "Emails leaked", categories=["user.contact.email"])
    assert sorted(incident.tables) == [
        "shop.agents",
        "shop.customers",
        "shop.newsletter_subscriptions",
    ]
    emails = plain(
        store,
        "SELECT lower(email) FROM customers UNION SELECT lower(email) FROM agents "
        "UNION SELECT lower(email) FROM newsletter_subscriptions",
    )
    expected = set(keyring.hash_many([f"email:{e}" for (e,) in emails]))
    assert stored_hashes(store, incident.number) == expected


def test_known_subjects_get_their_ref_and_jurisdiction(register, store, keyring) -> None:
    from lawful.subjects import Subjects

    subjects = Subjects(store, register.policy.key, register.policy.controller.name, keyring)
    subjects.resolve(["email:customer-1@example.com"], create=True, jurisdiction="uk")
    known = subjects.find("email:customer-1@example.com")
    assert known is not None
    incident = register.open(NOW, "Customers table copied", tables=["shop.customers"])
    assert incident.by_jurisdiction["uk"] == 1
    assert incident.by_jurisdiction[""] == incident.subjects_count - 1
    # deadlines for the known subject's law and the policy's (for those not known)
    assert sorted(incident.jurisdictions) == ["eu", "uk"]
    rows = plain(
        store,
        "SELECT subject_ref, jurisdiction FROM incident_subjects WHERE subject_ref IS NOT NULL",
    )
    assert rows == [(known.ref, "uk")]


def test_extra_subjects_from_a_disclosure_log(register, store, keyring) -> None:
    outsider = Identity.parse("email:partner-only@example.net")
    already = keyring.hash(Identity.parse("email:customer-2@example.com"))

    def disclosed(scope):
        assert scope.table_names == ["shop.customers"]
        return [outsider, SubjectHash(already, "email")]

    incident = register.open(
        NOW, "A recipient lost our export", tables=["shop.customers"], extra_subjects=disclosed
    )
    [(customers,)] = plain(store, "SELECT count(*) FROM customers")
    assert incident.subjects_count == customers + 1  # customer-2 is counted once
    assert plain(
        store, "SELECT identity_hash, source FROM incident_subjects WHERE source = 'extra'"
    ) == [(keyring.hash(outsider), "extra")]


def test_timeline_notices_and_close(register, store, shop_policy) -> None:
    incident = register.open(
        NOW - timedelta(hours=80),
        "Laptop with an unencrypted export stolen",
        tables=["shop.customers"],
        categories=["user.contact.email", "user.demographic.date_of_birth"],
        consequences="targeted phishing",
    )
    [authority] = [d for d in incident.deadlines if d.audience == "authority"]
    assert authority.due_at == incident.discovered_at + timedelta(hours=72)
    assert incident.overdue(), "80 hours after discovery the 72 hours are past"
    register.add_event(incident, "contained", "Remote wipe confirmed")
    register.add_event(incident, "measure", "Passwords reset for every customer")
    register.assess(incident, True, "dates of birth and emails together")
    notice = register.notify(incident, "authority")
    text = notice.text
    for expected in (
        shop_policy.controller.name,
        shop_policy.controller.contacts.privacy_email,
        shop_policy.controller.supervisory_authority.name,
        "Email (user.contact.email)",
        f"Approximate number of people concerned: {incident.subjects_count:,}",
        f"records concerned: {incident.records_count:,}",
        "targeted phishing",
        "Remote wipe confirmed",
        "Passwords reset for every customer",
        "Risk to people: high",
    ):
        assert expected in text, expected
    to_people = register.notify(incident, "subjects").text
    for expected in (
        "What happened",
        "What it could mean for you",
        "What we have done and will do",
        "What you can do",
        "we never ask for your password",
        "Passwords reset for every customer",
        shop_policy.controller.contacts.privacy_email,
        "we have reported the incident to Berliner",
        incident.ref,
    ):
        assert expected in to_people, expected
    shown = register.show(incident.number)
    assert shown.authority_notified_at is not None and shown.subjects_notified_at is not None
    assert not shown.overdue()
    closed = register.close(incident.ref, "Root cause: unencrypted disk. Fixed by policy.")
    assert closed.state == "closed" and closed.closed_at is not None
    assert [e.kind for e in closed.events] == [
        "opened",
        "contained",
        "measure",
        "assessed",
        "authority_notified",
        "subjects_notified",
        "closed",
    ]
    with pytest.raises(IncidentError, match="closed"):
        register.add_event(incident, "update", "late note")
    kinds = [k for (k,) in plain(store, "SELECT kind FROM audit_events ORDER BY seq")]
    assert kinds[-7:] == [
        "incident.opened",
        "incident.contained",
        "incident.measure",
        "incident.assessed",
        "incident.authority_notified",
        "incident.subjects_notified",
        "incident.closed",
    ]
    with store.engine.connect() as conn:
        data = " ".join(str(d) for d in conn.execute(sa.select(audit_events.c.data)).scalars())
    assert "Laptop" not in data and "Remote wipe" not in data and "@" not in data


def test_register_lists_overdue_first(register) -> None:
    fresh = register.open(NOW, "Fresh", tables=["shop.agents"])
    late = register.open(NOW - timedelta(days=4), "Late", tables=["shop.agents"])
    done = register.open(NOW - timedelta(days=5), "Done", tables=["shop.agents"])
    register.close(done, "closed")
    assert [i.number for i in register.list()] == [late.number, fresh.number, done.number]
    assert [i.number for i in register.list(open_only=True)] == [late.number, fresh.number]


def test_bad_input_is_refused_with_the_fix(register, store) -> None:
    cases = {
        "did you mean 'shop.payments'": dict(tables=["shop.payment"]),
        "is not a data category": dict(categories=["user.contact.emial"]),
        "name what the incident touched": {},
        "not a jurisdiction": dict(tables=["shop.agents"], jurisdictions=["mars"]),
    }
    for message, kwargs in cases.items():
        with pytest.raises(IncidentError, match=message):
            register.open(NOW, "x", **kwargs)
    with pytest.raises(IncidentError, match="time zone"):
        register.open(datetime(2026, 1, 1), "x", tables=["shop.agents"])
    with pytest.raises(IncidentError, match="future"):
        register.open(NOW + timedelta(days=1), "x", tables=["shop.agents"])
    with pytest.raises(IncidentError, match="kind of timeline entry"):
        register.add_event(1, "exploded", None)
    assert plain(store, "SELECT count(*) FROM incidents") == [(0,)]
