"""An authorised agent's request, end to end, on the sample shop (SQLite and PostgreSQL).

Under a policy that accepts authorised agents (`requests.authorised_agents`, CCPA
§ 1798.135 and its regulations), an agent asks for a customer with the customer's signed
permission; the customer confirms with the code sent to them; the request runs. The
request keeps who acted as the role and the keyed hash of the agent's identity, and the
document shown as its SHA-256: never the agent's address, never the document. A policy
that does not accept agents refuses the agent's request before anything is stored or
sent, and says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from lawful.audit import AuditLog
from lawful.engine import Engine
from lawful.requests.messages import MemorySender
from lawful.requests.verify import OnBehalf, OnBehalfError
from lawful.subjects import Identity
from tests.requests import test_requests as shop
from tests.requests.test_requests import (
    a_customer,
    shop_engine,
    shop_policy_text,
    shop_rows,
    submit_and_verify,
)

# The fixtures of the requests tests: the store and the shop on SQLite and on PostgreSQL
# (a fresh database each), and the sender that keeps the messages.
urls, shop_url, sender = shop.urls, shop.shop_url, shop.sender

AGENT = "email:agent@privacy-agents.example"
# The signed permission the customer gave the agent, as the agent uploaded it.
PERMISSION = b"%PDF-1.7 I authorise Privacy Agents LLC to delete my data. Signed, the customer"


@contextmanager
def opened(store_url: str, sender: MemorySender, *, agents: bool) -> Iterator[Engine]:
    """The shop under its policy, accepting authorised agents or not."""
    text = shop_policy_text().replace(
        "  verification:", f"  authorised_agents: {str(agents).lower()}\n  verification:", 1
    )
    with shop_engine(store_url, sender, text) as engine:
        assert engine.policy.requests.authorised_agents is agents
        yield engine


def agent() -> OnBehalf:
    """The agent, showing the customer's signed permission (kept as its SHA-256)."""
    digest = OnBehalf.document_hash(PERMISSION)
    return OnBehalf("agent", Identity.parse(AGENT), "signed permission", digest)


def test_an_authorised_agent_erases_for_a_customer(
    urls: tuple[str, str], shop_url: str, sender: MemorySender
) -> None:
    with opened(urls[0], sender, agents=True) as engine:
        requests = engine.requests
        customer, email = a_customer(shop_url)
        # The agent asks; the code goes to the customer, who confirms it is their wish.
        ref = submit_and_verify(requests, sender, "erasure", email, on_behalf=agent())
        assert not [m for m in sender.sent if m.to == AGENT.removeprefix("email:")]
        assert requests.run_pending() == 1
        view = requests.show(ref)
        assert view.state in ("completed", "partially_completed")
        assert requests.check_receipt(ref)
        assert view.receipt is not None and view.receipt["on_behalf"] == "agent"
        assert shop_rows(
            shop_url, "SELECT first_name FROM customers WHERE id = :c", c=customer
        ) == [("erased",)]

        # Who acted: the role and the agent's keyed hash; what they showed: its kind and
        # the document's SHA-256.
        with engine.store.engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT on_behalf FROM requests WHERE ref = :ref"), {"ref": ref}
            ).scalar_one()
        stored = json.loads(stored) if isinstance(stored, str) else stored
        assert stored["role"] == "agent"
        assert stored["actor_hash"] == engine.keyring.hash(Identity.parse(AGENT))
        assert stored["document_sha256"] == OnBehalf.document_hash(PERMISSION)
        assert stored["proof"] == "signed permission"

        # The audit log names the role, and the request, by its ref.
        log = AuditLog(engine.store, engine.policy.key)
        received = next(
            e for e in log.events() if e.kind == "request.received" and e.data["ref"] == ref
        )
        assert received.data["on_behalf"] == "agent"
        assert received.subject == engine.keyring.hash(Identity.parse(f"email:{email}"))
        assert log.verify().ok

        # Neither the agent's address nor the document is anywhere in lawful's store.
        with engine.store.engine.connect() as conn:
            for table in ("requests", "audit_events", "request_steps", "request_messages"):
                rows = " ".join(
                    str(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))
                )
                assert "privacy-agents" not in rows, table
                assert "I authorise" not in rows, table


def test_a_policy_without_agents_refuses_them_and_says_why(
    urls: tuple[str, str], shop_url: str, sender: MemorySender
) -> None:
    with opened(urls[0], sender, agents=False) as engine:
        requests = engine.requests
        _, email = a_customer(shop_url)
        with pytest.raises(OnBehalfError) as refused:
            requests.submit("erasure", f"email:{email}", jurisdiction="eu", on_behalf=agent())
        message = str(refused.value)
        assert "does not accept requests from authorised agents" in message
        assert "requests.authorised_agents is false" in message
        assert "the subject must make the request" in message
        assert "privacy-agents" not in message and email not in message
        # Refused before anything was stored or sent.
        assert requests.list(open_only=False) == []
        assert sender.sent == []
        assert not [
            e
            for e in AuditLog(engine.store, engine.policy.key).events()
            if e.kind.startswith("request.")
        ]

        # The customer may still ask themselves, and a parent for a child: only agents are
        # refused.
        ref = submit_and_verify(requests, sender, "access", email)
        parent = OnBehalf("parent", Identity.parse("email:parent@example.org"), "birth certificate")
        child = submit_and_verify(requests, sender, "access", email, on_behalf=parent)
        requests.run_pending()
        assert requests.show(ref).state == requests.show(child).state == "completed"
