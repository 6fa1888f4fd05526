"""Consent and decisions on the Seestar Store policy, in a throwaway SQLite store.

    python examples/consent_walkthrough.py

A customer subscribes to the mailing list, a 13-year-old tries to use the shop, Do
Not Track reaches the email tracking, the customer withdraws, and the audit chain that
recorded all of it verifies. Every answer says why.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from lawful.audit import AuditLog
from lawful.engine import Engine
from lawful.subjects import Keyring

POLICY = Path(__file__).parent / "policies" / "seestar_store.yaml"
CUSTOMER = "email:li.wei@example.com"
CHILD = "email:xiao.ming@example.com"


def show(label: str, decision: object) -> None:
    print(f"  {label:<44} {decision.reason}  [{decision.rule}]")  # type: ignore[attr-defined]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{folder}/lawful.db"
        with Engine.open(POLICY, store, keyring=Keyring.generate()) as engine:
            consent = engine.consent
            print(f"{engine.policy.controller.name}: consent and decisions")

            show("orders (contract):", engine.decide(CUSTOMER, "orders"))
            show("mailing list, before consent:", engine.decide(CUSTOMER, "commercial_messages"))
            record = consent.give(CUSTOMER, "commercial_messages", method="checkbox", language="zh")
            show("mailing list, after consent:", engine.decide(CUSTOMER, "commercial_messages"))
            receipt = consent.receipt(record.ref)
            print(f"  receipt {receipt['recordId']}: {receipt['state']}, {receipt['schema']}")

            consent.give(CUSTOMER, "email_tracking", method="checkbox")
            tracking = engine.decide(CUSTOMER, "email_tracking", signals={"DNT": "1"})
            show("email tracking with Do Not Track:", tracking)

            today = date.today()
            consent.set_subject(
                CHILD, kind="customer", birth_date=today.replace(year=today.year - 13)
            )
            show("a 13-year-old places an order:", engine.decide(CHILD, "orders"))
            consent.parental_consent(CHILD, parent="email:parent@example.com")
            show("... once a parent consented:", engine.decide(CHILD, "orders"))

            consent.withdraw(CUSTOMER, "commercial_messages")
            show("mailing list, after withdrawal:", engine.decide(CUSTOMER, "commercial_messages"))
            kept = [
                str(r.state) for r in consent.history(CUSTOMER) if r.key == "commercial_messages"
            ]
            print(f"  the ledger keeps it all: {kept}")

            check = AuditLog(engine.store, engine.policy.key).verify()
            print(f"  audit chain: {'intact' if check.ok else 'BROKEN'}, {check.checked} events")


if __name__ == "__main__":
    main()
