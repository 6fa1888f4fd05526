"""`policy publish`: a changed policy is recorded, explained, and its consents renewed."""

from __future__ import annotations

import sqlalchemy as sa

from lawful.audit import AuditLog
from lawful.engine import Engine
from lawful.notice import Notices, publish_policy
from lawful.policy import load_policy, load_policy_text
from lawful.store import open_store
from lawful.subjects import Keyring

from .conftest import SHOP_POLICY

ORIGINAL = SHOP_POLICY.read_text(encoding="utf-8")


def _changed() -> str:
    """The shop's policy, v2: the newsletter also goes by SMS, and reviews show the city."""
    text = ORIGINAL.replace('version: "2026-01"', 'version: "2026-04"')
    text = text.replace(
        "    categories: [user.contact.email]\n    channels: [email]",
        "    categories: [user.contact.email, user.contact.phone_number]\n    channels: [email, sms]",
    )
    text = text.replace(
        "    categories: [user.content.public, user.name]",
        "    categories: [user.content.public, user.name, user.contact.address.city]",
    )
    assert text.count("2026-04") == 1 and "sms" in text and "address.city" in text
    return text


def test_publish_lists_consents_to_renew_with_counts(store_url: str) -> None:
    keyring = Keyring.generate()
    with Engine.open(load_policy(SHOP_POLICY), store_url, keyring=keyring) as engine:
        for who in ("ann", "bob", "cy"):
            engine.consent.give(f"email:{who}@example.com", "newsletter", method="checkbox")
        engine.consent.give("email:ann@example.com", "reviews", method="checkbox")
        engine.consent.withdraw("email:cy@example.com", "newsletter")
        first = engine.policy_version.number
    store = open_store(store_url)
    try:
        loaded = load_policy_text(_changed(), "policy.yaml")
        publication = Notices(loaded.policy, store=store).publish(loaded)
        assert publication.created and publication.material
        assert publication.previous == first and publication.version.number == first + 1
        assert {r.purpose: r.subjects for r in publication.renewals} == {
            "newsletter": 2,  # ann and bob; cy withdrew
            "reviews": 1,
        }
        # the count is what consent_state holds, checked with plain SQL
        with store.engine.connect() as conn:
            held = conn.execute(
                sa.text(
                    "SELECT COUNT(DISTINCT subject_id) FROM consent_state "
                    "WHERE topic = 'consent' AND key = 'newsletter' AND state IN ('given', 'renewed')"
                )
            ).scalar()
        assert held == 2
        md = publication.notice("md")
        assert "Newsletter, we may now also contact you by: text message" in md
        assert "Reviews now also uses: Contact city." in md
        assert "## Consents we will ask you to confirm again" in md
        assert "- Newsletter" in md and "- Reviews" in md
        page = publication.notice("html", "zh")
        assert '<html lang="zh-Hans">' in page and "我们将请您再次确认的同意" in page
        data = publication.to_dict()
        assert data["renew_consent"] == [
            {"purpose": "newsletter", "name": "Newsletter", "subjects": 2},
            {"purpose": "reviews", "name": "Reviews", "subjects": 1},
        ]
        events = AuditLog(store, loaded.policy.key).events(last=5)
        published = [e for e in events if e.kind == "policy.published"]
        assert published[-1].data["renew_consent"] == {"newsletter": 2, "reviews": 1}
        assert [e.kind for e in events][-2:] == ["policy.version_recorded", "policy.published"]
        # publishing the same text again records nothing
        again = publish_policy(store, loaded)
        assert not again.created and again.renewals == ()
        assert again.version.number == first + 1
    finally:
        store.close()


def test_first_publication_has_nothing_to_renew(store_url: str) -> None:
    store = open_store(store_url)
    try:
        loaded = load_policy(SHOP_POLICY)
        publication = publish_policy(store, loaded)
        assert publication.created and publication.previous is None
        assert publication.renewals == () and not publication.material
        assert "Nothing that matters for you changed." in publication.notice("md")
    finally:
        store.close()
