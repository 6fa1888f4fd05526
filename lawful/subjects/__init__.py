"""Subjects and the identities they are known by.

An identity (email, phone, account, device or customer id) is normalised
(`Identity.parse`), then stored and looked up by a keyed hash (`Keyring.hash`), so the
store finds a subject without holding raw identities; a raw value kept for use (an
address to send a code to) is encrypted with AES-GCM. `Subjects` is the facade, one
transaction per call; `lawful.subjects.registry` has the same operations as functions
that work inside a caller's transaction. The `lawful keyring` command is in
`lawful.subjects.cli`.
"""

from lawful.subjects import registry
from lawful.subjects.identity import Identity, IdentityError, IdentityKind
from lawful.subjects.keyring import (
    DEFAULT_KEYRING_PATH,
    ENCRYPTION_KEYS_ENV,
    HASH_KEY_ENV,
    KEYRING_ENV,
    Keyring,
    KeyringError,
    KeyringMissing,
    keyring_path,
    load_keyring,
)
from lawful.subjects.registry import (
    UNSET,
    Context,
    IdentityConflict,
    Subject,
    SubjectError,
    Subjects,
)

__all__ = [
    "DEFAULT_KEYRING_PATH",
    "ENCRYPTION_KEYS_ENV",
    "HASH_KEY_ENV",
    "KEYRING_ENV",
    "UNSET",
    "Context",
    "Identity",
    "IdentityConflict",
    "IdentityError",
    "IdentityKind",
    "Keyring",
    "KeyringError",
    "KeyringMissing",
    "Subject",
    "SubjectError",
    "Subjects",
    "keyring_path",
    "load_keyring",
    "registry",
]
