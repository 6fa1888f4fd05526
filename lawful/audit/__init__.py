"""The tamper-evident audit log: hash-chained events per controller, and their verification."""

from lawful.audit.log import (
    GENESIS,
    AuditLog,
    Break,
    Event,
    NewEvent,
    Verification,
    append,
    event_hash,
    lock_head,
)

__all__ = [
    "GENESIS",
    "AuditLog",
    "Break",
    "Event",
    "NewEvent",
    "Verification",
    "append",
    "event_hash",
    "lock_head",
]
