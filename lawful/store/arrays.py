"""A batch of keys as the driving table of a PostgreSQL query: `unnest(...)`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
# Up to this many keys go inline: the statement text then differs per call, so psycopg
# never prepares it and PostgreSQL plans it for these values. A prepared statement gets
# a generic plan that cannot see how few keys there are, and on a table that grew since
# it was last analyzed that plan scans it whole (tens of ms for a single lookup).
_INLINE = 50


def unnest(values: Sequence[Any], kind: str) -> tuple[str, list[Any]]:
    """SQL for `unnest(<array>)` and its parameters; `kind` is "digest" or "bigint".

    Small batches are written inline (validated: 64-hex digests or integers only);
    large ones are one array parameter, where a generic plan costs little per key.
    """
    if kind not in ("digest", "bigint"):
        raise ValueError(f"unnest takes digests or bigints, not {kind!r}")
    cast = "text[]" if kind == "digest" else "bigint[]"
    if len(values) > _INLINE:
        return f"unnest(%s::{cast})", [list(values)]
    if kind == "digest":
        if not all(isinstance(v, str) and _HEX_DIGEST.fullmatch(v) for v in values):
            raise ValueError("identity hashes are 64 lowercase hex digits")
        inline = ",".join(f"'{v}'" for v in values)
    else:
        inline = ",".join(str(int(v)) for v in values)
    return f"unnest(ARRAY[{inline}]::{cast})", []
