"""`lawful scan`: draft a dataset annotation from a live schema nobody prepared for lawful.

`scan_database(url)` reads the schema and a sample of rows (`scan_schema`), recognises
personal data in names and values (`recognise`), decides who the people are, whose rows
are whose and what erasure does (`scan_plan`), and writes the draft here: YAML with a
comment on every guess and `review` on the doubtful ones, which `lawful dataset check`
accepts as it is. Sampled values are only looked at: they never reach the draft or any
message, and neither does a password (a URL with one is written as `url_env`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from lawful.datasets.connect import ConnectError, create_engine, first_line, mask, parse_url
from lawful.datasets.recognise import is_customer_like, is_staff_like, table_words
from lawful.datasets.scan_plan import Draft, TableDraft, analyse
from lawful.datasets.scan_schema import Schema, read_schema

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,79}$")
DEFAULT_URL_ENV = "DATABASE_URL"


class ScanError(ConnectError):
    """The database can't be drafted (no tables, nothing personal); the message says why."""


def scan_database(
    url: str,
    *,
    schema: str | None = None,
    url_env: str | None = None,
    sample: int = 200,
    name: str | None = None,
) -> tuple[str, str]:
    """Draft the annotation of the database at `url`: (the YAML text, a one-line summary).

    Raises ConnectError (no password in it) when the database can't be reached or read.
    """
    parsed = parse_url(url)
    if name is not None and not _NAME.match(name):
        raise ScanError(
            f"'{name}' is not a dataset name: use lowercase letters, digits, '_' or '-', "
            "starting with a letter (e.g. shop)"
        )
    if url_env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", url_env):
        raise ScanError(f"'{url_env}' is not an environment variable name (e.g. SHOP_DATABASE_URL)")
    shown = _shown(url)
    _check_sqlite_file(parsed, shown)
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            schema_ = read_schema(conn, schema, max(sample, 0))
    except DBAPIError as exc:
        raise ConnectError(
            f"cannot read the database at {shown}: {_clean(first_line(exc), parsed)}"
        ) from None
    finally:
        engine.dispose()
    if not schema_.tables:
        where = f"schema {schema}" if schema else "the database"
        raise ScanError(f"{where} at {shown} has no tables to annotate")
    draft = analyse(schema_)
    if not draft.tables:
        raise ScanError(
            f"no personal data recognised in the {len(schema_.tables)} tables at {shown}: no "
            "column looks like an email, a phone or a person's name; write the annotation "
            "by hand (docs/datasets.md)"
        )
    dataset = name or _default_name(parsed)
    text = _render(draft, schema_, parsed, url, url_env, schema, dataset, sample)
    return text, draft.summary()


# --- connection --------------------------------------------------------------------------


def _check_sqlite_file(url: URL, shown: str) -> None:
    if url.get_backend_name() != "sqlite":
        return
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ScanError(
            f"{shown} names no SQLite file to read; give its path, e.g. sqlite:///app.db"
        )
    if not Path(database).is_file():
        raise ConnectError(f"no SQLite database at {database} (from {shown}): check the path")


_SECRET_PARAMS = frozenset(["password", "passwd", "pwd", "secret", "token", "sslpassword"])


def _secret(url: URL) -> bool:
    """Whether the URL carries a password (in its user part or a query parameter)."""
    return bool(url.password) or any(k.lower() in _SECRET_PARAMS for k in url.query)


def _shown(raw: str) -> str:
    """The URL as the user wrote it, its passwords hidden."""
    url = make_url(raw)
    query = {k: "hidden" if k.lower() in _SECRET_PARAMS else v for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)


def _clean(message: str, url: URL) -> str:
    secrets = [str(url.password)] if url.password else []
    secrets += [str(v) for k, v in url.query.items() if k.lower() in _SECRET_PARAMS]
    for secret in secrets:
        message = message.replace(secret, "***")
    return mask(message)


def _default_name(url: URL) -> str:
    base = url.database or ""
    if url.get_backend_name() == "sqlite":
        base = Path(base).stem
    slug = re.sub(r"[^a-z0-9_-]+", "_", base.lower()).strip("_-")
    if not slug:
        return "app"
    if not slug[0].isalpha():
        slug = f"db_{slug}"
    return slug[:80]


# --- the YAML text --------------------------------------------------------------------------


def _q(value: Any, *, flow: bool = False) -> str:
    """A YAML scalar that reads back as `value` (quoted when plain text would not)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    plain = r"[A-Za-z_][A-Za-z0-9_.$/ -]*" if flow else r"[A-Za-z_][A-Za-z0-9_.$/ (),;'-]*"
    if (
        re.fullmatch(plain, text)
        and not text.endswith(" ")
        and ": " not in text
        and " #" not in text
        and yaml.safe_load(text) == text
    ):
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(mapping: dict[str, Any], words: tuple[str, ...] = ("table", "on", "role")) -> str:
    """A flow mapping; the language's own words stay plain (lawful reads `on` as text)."""
    items = []
    for k, v in mapping.items():
        key = k if k in words else _q(k, flow=True)
        items.append(f"{key}: {_flow(v, ()) if isinstance(v, dict) else _q(v, flow=True)}")
    return "{" + ", ".join(items) + "}"


def _comment(line: str, note: str | None, width: int = 56) -> str:
    if not note:
        return line
    return f"{line.ljust(width)}  # {note}"


def _render(
    draft: Draft,
    schema: Schema,
    url: URL,
    raw: str,
    url_env: str | None,
    schema_name: str | None,
    dataset: str,
    sample: int,
) -> str:
    shown = _shown(raw)
    read = (
        f"at most {sample} rows sampled from each to recognise values (no value is written here)"
        if sample > 0
        else "no rows sampled: categories from column names only"
    )
    out = _wrapped_text(
        f"A draft annotation of {shown}, written by `lawful scan`: {len(schema.tables)} tables "
        f"read, {read}. Every line is a guess; those marked `review` are the doubtful ones."
    )
    out += [
        "#",
        "#   identities  emails and phone numbers (by column names and sampled values), and",
        "#               the key of the main subject table (account)",
        "#   owners      how each table's rows reach a person: breadth-first from the tables",
        "#               with identities over the foreign keys, and over column names where",
        "#               none is declared (customer_id -> customers)",
        "#   columns     data categories (fideslang keys) from names and sampled values",
        "#   erase       delete, or anonymize where rows that stay point at the table",
        "#",
        "# When it reads right, check it against the database and the policy:",
        "#   lawful dataset check FILE --policy policy.yaml",
    ]
    if draft.no_personal:
        out += ["#", "# Left out, no personal data found (erasure never touches them):"]
        out += _wrapped(draft.no_personal)
    if draft.unreached:
        out += [
            "#",
            "# Left out, personal data but no identity or link reaches it (review: annotate",
            "# them by hand if people can ask for these rows):",
        ]
        out += _wrapped(f"{t} ({', '.join(cols)})" for t, cols in sorted(draft.unreached.items()))
    if draft.skipped:
        out += ["#", "# Not read, names an annotation can't hold:"]
        out += _wrapped(draft.skipped)
    out += [
        "",
        "lawful: 1",
        f"dataset: {_q(dataset)}",
        "description: Drafted by lawful scan; review it",
    ]
    out += ["connection:"]
    if url_env:
        out.append(f"  url_env: {url_env}")
    elif _secret(url):
        out += [
            "  # The URL has a password, so it stays out of this file: set the environment",
            f"  # variable {DEFAULT_URL_ENV} to the URL ({shown}, with its password).",
            f"  url_env: {DEFAULT_URL_ENV}",
        ]
    else:
        out.append(f"  url: {_q(raw)}")
    if schema_name:
        out.append(f"  schema: {_q(schema_name)}")
    out += ["", "tables:"]
    for name, table in draft.tables.items():
        out += _render_table(name, table)
    return "\n".join(out) + "\n"


def _subject(table: str) -> str:
    if is_staff_like(table):
        return "employee"
    if is_customer_like(table):
        return "customer"
    return re.sub(r"[^a-z0-9_]+", "_", "_".join(table_words(table))) or "person"


def _wrapped_text(text: str, width: int = 88) -> list[str]:
    lines, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width and line != "#":
            lines.append(line)
            line = "#"
        line += f" {word}"
    return [*lines, line]


def _wrapped(items: Iterable[str], width: int = 86) -> list[str]:
    lines, line = [], "#  "
    for item in items:
        piece = f" {item},"
        if len(line) + len(piece) > width:
            lines.append(line)
            line = "#  "
        line += piece
    lines.append(line.rstrip(","))
    return lines


def _render_table(name: str, t: TableDraft) -> list[str]:
    out = [f"  {_q(name)}:", f"    description: {_q(t.description)}"]
    if t.claim.how == "root":
        out.append(f"    # subject: {_subject(name)}   (the policy's subject kind of these people)")
    if t.info.key_note:
        out.append(
            _comment(f"    primary_key: [{', '.join(_q(k) for k in t.info.key)}]", t.info.key_note)
        )
    if t.identities:
        out.append("    identities:")
        for column, kind, note in t.identities:
            out.append(_comment(f"      {_q(column)}: {kind}", note))
    if t.links:
        out.append("    owners:")
        for link in t.links:
            body: dict[str, Any] = {"table": link.target, "on": link.on}
            if link.role != "owner":
                body["role"] = link.role
            out.append(_comment(f"      - {_flow(body)}", link.note))
    out.append(_comment(f"    erase: {t.erase}", t.erase_note))
    if t.columns:
        out.append("    columns:")
        for column, category, action, note in t.columns:
            if action is None:
                line = f"      {_q(column)}: {category}"
            else:
                shown = _flow(action) if isinstance(action, dict) else action
                line = f"      {_q(column)}: {{category: {category}, erase: {shown}}}"
            out.append(_comment(line, note))
    out.append("")
    return out
