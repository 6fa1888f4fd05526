"""Minimal `requests` rows for tests of the modules that hang off a request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from lawful.requests.tables import requests
from lawful.store.store import Store
from lawful.subjects import Identity, Keyring

CONTROLLER = "shop"


def new_request(
    store: Store,
    keyring: Keyring,
    *,
    identity: str = "email:ada@example.com",
    controller: str = CONTROLLER,
    now: datetime | None = None,
) -> int:
    """Insert a received access request for `identity` and return its id."""
    now = now or datetime.now(UTC)
    controller_id = store.ensure_controller(controller, controller.title())
    with store.engine.begin() as conn:
        inserted = conn.execute(
            sa.insert(requests).values(
                controller_id=controller_id,
                ref=uuid.uuid4().hex,
                kind="access",
                state="awaiting_verification",
                identity_kind="email",
                identity_hash=keyring.hash(Identity.parse(identity)),
                channel="api",
                received_at=now,
                due_at=now + timedelta(days=30),
                updated_at=now,
            )
        )
        return int(inserted.inserted_primary_key[0])


def request_ref(store: Store, request_id: int) -> str:
    with store.engine.connect() as conn:
        return conn.scalar(sa.select(requests.c.ref).where(requests.c.id == request_id))
