"""What an anonymizing erasure writes in place of a value.

Every mask is idempotent: masking a masked value gives it back unchanged, so a second
erasure of the same subject changes nothing (and can say so). `null` and `fixed` do
not depend on the value and are applied set-based; `hash`, `generalize` and `truncate`
are computed per row from the value read.

`hash` is a keyed hash (HMAC-SHA256 under a key derived from the keyring): the same
value gives the same pseudonym in every table, so counts and joins survive, while the
value can't be read back without the key. Its output starts with `~` so it is
recognised and never hashed twice.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any

from lawful.datasets.model import Column, ColumnErase, Generalize, Mask

HASH_PREFIX = "~"
HASH_MIN_LENGTH = 12  # '~' and 11 hex digits: 44 bits, no collisions among a table's values
HASH_MAX_LENGTH = 33  # '~' and 32 hex digits (128 bits) when the column allows
MASK_KEY_PURPOSE = "lawful dataset mask v1"


class MaskKeyMissing(Exception):
    """A hash mask needs a key and none was given."""


@dataclass(frozen=True)
class ColumnMask:
    """One column's erasure action bound to the column's type and length."""

    column: str
    action: ColumnErase | Mask
    python_type: type | None
    length: int | None

    @property
    def constant(self) -> bool:
        """Whether the masked value does not depend on the value (set-based update)."""
        return self.action is ColumnErase.null or (
            isinstance(self.action, Mask) and "fixed" in self.action.model_fields_set
        )

    def apply(self, value: Any, key: bytes | None) -> Any:
        """The value erasure writes for `value` (None stays None for every mask)."""
        action = self.action
        if action is ColumnErase.null:
            return None
        if isinstance(action, Mask) and "fixed" in action.model_fields_set:
            return fixed_value(action.fixed, self.python_type)
        if value is None:
            return None
        if action is ColumnErase.hash:
            return keyed_hash(value, key, self.length)
        assert isinstance(action, Mask)
        if action.truncate is not None:
            return str(value)[: action.truncate]
        if action.generalize is Generalize.ip:
            return generalize_ip(value)
        return generalize_time(value, action.generalize)


def column_mask(
    name: str, spec: Column, python_type: type | None, length: int | None
) -> ColumnMask | None:
    """The mask of an anonymized column; None when erasure leaves it (no action, keep)."""
    if spec.erase is None or spec.erase in (ColumnErase.keep, ColumnErase.delete):
        return None
    return ColumnMask(name, spec.erase, python_type, length)


def fixed_value(value: Any, python_type: type | None) -> Any:
    if value is None or python_type is None:
        return value
    if issubclass(python_type, dt.datetime) and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if issubclass(python_type, dt.date) and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def keyed_hash(value: Any, key: bytes | None, length: int | None) -> str:
    text = str(value)
    size = min(length or HASH_MAX_LENGTH, HASH_MAX_LENGTH)
    if is_hashed(text, size):
        return text
    if key is None:
        raise MaskKeyMissing(
            "a hash mask needs the keyring's key: create one with `lawful keyring init`, or "
            "pass --keyring FILE"
        )
    digest = hmac.digest(key, text.encode("utf-8"), "sha256").hex()
    return HASH_PREFIX + digest[: size - 1]


def is_hashed(text: str, size: int) -> bool:
    return (
        len(text) == size
        and text.startswith(HASH_PREFIX)
        and all(c in "0123456789abcdef" for c in text[1:])
    )


def generalize_ip(value: Any) -> str | None:
    """An address → the first address of its /24 (IPv4) or /48 (IPv6); None if not one."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def generalize_time(value: Any, to: Generalize | None) -> Any:
    if not isinstance(value, dt.date):
        return value
    month = value.month if to is Generalize.month else 1
    if isinstance(value, dt.datetime):
        return value.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    return value.replace(month=month, day=1)
