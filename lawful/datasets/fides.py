"""Import a Fides dataset (fideslang `dataset:` YAML) as a lawful dataset annotation.

People moving from Ethyca Fides keep their maps: `lawful dataset import-fides FILE -o
OUT` writes a commented annotation that `lawful dataset check` then verifies against the
database. The conversion, and where Fides and lawful differ:

* **One dataset per output.** A file may hold several datasets (`dataset:` is a list);
  with more than one, name the one to convert (`--fides-key KEY`, `dataset=`), so
  each database gets its own annotation file and connection.
* **Collections are tables, fields with `data_categories` are columns.** Fides allows
  several categories per field; lawful keeps one: the most specific personal (`user.*`)
  category, the others written beside the column. A category lawful's taxonomy does not
  know becomes its nearest known ancestor, with a warning (declare it as a custom
  category of the policy to keep it). Fields without categories hold nothing personal
  and are not listed under columns (a key or link column still appears in primary_key
  or owners).
* **Identities.** `fides_meta.identity` columns become identities: email → email,
  phone_number → phone, device ids (fides_user_device_id, ga_client_id) → device, any
  other (user_id, a custom identity) → account. Fides compares identities exactly and
  never searches for a value it found, so they are written `match: exact` and
  `expands: false`.
* **References are ownership links**, read as Fides reads them: `direction: from` on
  field F of collection C, referencing D.G, means C's rows are reached from D's rows
  (they are D's): `C.owners: [{table: D, on: {F: G}}]`; `direction: to` means D's rows
  are reached from C's: `D.owners: [{table: C, on: {G: F}}]`. A reference without a
  direction (an edge Fides walks both ways) is an error: ownership has one direction and
  the file must say which. A reference to another dataset can't be followed inside one
  database: it is skipped with a warning.
* **Nested fields are an error.** A field with `fields` of its own (a document store, a
  JSON column masked key by key) can't be expressed: lawful annotates and erases whole
  columns of SQL tables. The error names each one; give the column its own
  `data_categories` instead (erasure then masks the whole value) or leave it out.
  Skipping them silently would leave personal data unerased.
* **Erasure.** Fides erases by masking the fields whose categories the erasure policy
  targets (null_rewrite by default); it never deletes rows. So every table is
  `erase: anonymize` and every personal column `erase: null`, assuming a policy that
  targets all of `user`, except the columns that keep rows linked: the key, and the
  columns of a link when they hold ids (`user.unique_id`) or nothing personal (kept, so
  the rows stay linked and erasure stays idempotent). A link column holding other
  personal data (rows joined by email) is erased like any personal column: keeping it
  would keep the email; the erased rows are then unlinked from the subject, which is
  what erasure means (`erase: hash` keeps them linked by a pseudonym instead).
  `masking_strategy_override` maps to: null_rewrite → null; string_rewrite →
  `{fixed: rewrite_value}` (with a format_preservation suffix appended); hash and hmac →
  hash (lawful's keyed HMAC-SHA256); random_string_rewrite → hash too (lawful writes
  nothing random: a random value differs on every run, so a second erasure would change
  the row again and an erased row could not be recognised; a keyed hash is as
  irreversible and stays put); any other strategy (aes_encrypt, ...) → null, with a
  comment. A collection-level override `{strategy: delete}` makes the table
  `erase: delete`; `skip_processing` collections are left out, with a warning.
  Two cases go further than Fides, on purpose: a table whose key holds personal data
  other than an id (Fides' visit table: the key is (email, last_visit)) can't be
  masked, since rows are changed by their key, so its rows are deleted; and, unlike
  Fides, a row another subject owns too (an address shared by two customers) is kept for
  them, the erasing subject only released from it (lawful's shared rows).
* **The database, when it can be read.** Given `url` (or `url_env` naming a variable
  that is set), the live schema is read to fit the annotation to it; nothing is read
  otherwise, and `lawful dataset check` reports what does not fit. With the schema:
  a table without a primary key gets one (a unique index of NOT NULL columns, else all
  its columns, with a comment); a key column of the database is kept like Fides'
  primary keys; and a column erasure would set to NULL but the database declares NOT
  NULL gets the value that says least instead: a keyed hash when the column is unique
  text, else `{fixed: erased}` for text, 0 for numbers, 1970-01-01 for dates and times
  (1970-01-02 for a MySQL TIMESTAMP, whose range starts after the epoch). Fides' own
  null_rewrite fails on such a column; the column's comment says so and suggests
  `erase: keep` with a reason and a retention rule when the law keeps the value (an
  invoice total). A NOT NULL column of another type (a boolean, JSON) gets no guess:
  it stays `null`, with a warning, and the check reports it. An override that does not
  fit the column (a hash in 8 characters, a rewrite string in a number) falls back the
  same way. A database that can't be reached is a warning, not an error.
* **Connection.** `url` (without a password) or `url_env` is written as given; with
  neither, `url_env: <DATASET>_DATABASE_URL`. A dataset-level
  `fides_meta.namespace.schema` becomes `connection.schema`.

Problems with the Fides file are `DatasetError`s with the file, line and column, all at
once; what the conversion could only approximate is a warning, listed in the output's
header and returned with the conversion.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from lawful.datasets.checks import is_personal
from lawful.datasets.connect import ConnectError, create_engine, first_line, parse_url
from lawful.datasets.load import DatasetError, load_dataset_text
from lawful.datasets.masks import HASH_MIN_LENGTH
from lawful.policy.load import place_problem
from lawful.policy.problems import Path, Problem, sort_problems
from lawful.policy.taxonomy import load_taxonomy
from lawful.policy.vocabulary import describe, did_you_mean
from lawful.policy.yamlfile import YamlDocument, YamlProblem, parse_yaml, read_bytes

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
DIRECTIONS = ("from", "to")

# Fides identity types → lawful identity kinds (anything else: account).
IDENTITY_KINDS = {
    "email": "email",
    "phone_number": "phone",
    "phone": "phone",
    "fides_user_device_id": "device",
    "ga_client_id": "device",
    "ljt_readerID": "device",
}

NEUTRAL_TEXT = "erased"
EPOCH = {
    "date": "1970-01-01",
    "datetime": "1970-01-01T00:00:00",
    "datetime_tz": "1970-01-01T00:00:00+00:00",
    "mysql_timestamp": "1970-01-02T00:00:00",
}


# --- the Fides dataset, read and checked -------------------------------------------------


@dataclass
class FidesReference:
    path: Path
    dataset: str
    collection: str
    field: str
    direction: str


@dataclass
class FidesField:
    path: Path
    name: str
    categories: list[str]
    description: str | None = None
    primary_key: bool = False
    identity: str | None = None
    references: list[FidesReference] = field(default_factory=list)
    strategy: str | None = None  # masking_strategy_override.strategy
    configuration: dict[str, Any] = field(default_factory=dict)
    read_only: bool = False


@dataclass
class FidesCollection:
    path: Path
    name: str
    description: str | None
    fields: list[FidesField]
    delete: bool = False  # collection-level masking_strategy_override: delete
    skip: bool = False  # fides_meta.skip_processing: left out


@dataclass
class FidesDataset:
    path: Path
    key: str
    name: str | None
    description: str | None
    schema: str | None
    collections: list[FidesCollection]
    skipped: set[str] = field(default_factory=set)  # collections with skip_processing


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def error(self, path: Path, message: str) -> None:
        self.items.append(Problem(message, path=path))

    def warn(self, path: Path, message: str) -> None:
        self.items.append(Problem(message, path=path, severity="warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    def raise_errors(self) -> None:
        if self.errors:
            raise DatasetError(sort_problems(self.items))


def parse_fides(data: object, *, dataset: str | None = None) -> tuple[FidesDataset, list[Problem]]:
    """The one Fides dataset of `data` to convert (checked), and the warnings about it.

    Raises DatasetError (problems with key paths, no positions) listing every error.
    """
    out = _Problems()
    datasets = _datasets(data, out)
    out.raise_errors()
    chosen = _choose(datasets, dataset, out)
    out.raise_errors()
    assert chosen is not None
    index, entry = chosen
    parsed = _dataset(entry, ("dataset", index) if index is not None else ("dataset",), out)
    out.raise_errors()
    assert parsed is not None
    _check_references(parsed, out)
    out.raise_errors()
    return parsed, out.warnings


def _datasets(data: object, out: _Problems) -> list[tuple[int | None, dict[str, Any]]]:
    if not isinstance(data, dict):
        out.error(
            (),
            "a Fides dataset file is a mapping with a `dataset:` list (each entry with "
            f"fides_key and collections), but the file holds {describe(data)}",
        )
        return []
    if "dataset" not in data:
        if "lawful" in data or "tables" in data:
            hint = (
                "this looks like a lawful annotation already: check it with `lawful dataset check`"
            )
        elif "collections" in data:
            hint = "put the dataset in a list under `dataset:` (dataset: [{fides_key: ..., collections: ...}])"
        else:
            hint = "a Fides dataset file starts with `dataset:` (a list of datasets)"
        out.error((), f"no `dataset:` key; {hint}")
        return []
    raw = data["dataset"]
    if isinstance(raw, dict):
        return [(None, raw)]
    if not isinstance(raw, list) or not raw:
        out.error(
            ("dataset",),
            f"`dataset:` is a list of datasets (fides_key, collections), but it holds {describe(raw)}",
        )
        return []
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            out.error(
                ("dataset", i),
                f"a dataset is a mapping (fides_key, collections), not {describe(entry)}",
            )
        else:
            items.append((i, entry))
    return items


def _choose(
    datasets: list[tuple[int | None, dict[str, Any]]], wanted: str | None, out: _Problems
) -> tuple[int | None, dict[str, Any]] | None:
    keys = [str(entry.get("fides_key")) for _, entry in datasets]
    if wanted is not None:
        for item, key in zip(datasets, keys, strict=True):
            if key == wanted:
                return item
        guess = did_you_mean(wanted, keys)
        hint = f"did you mean '{guess}'?" if guess else f"the file has: {', '.join(keys)}"
        out.error(("dataset",), f"no dataset with fides_key '{wanted}'; {hint}")
        return None
    if len(datasets) > 1:
        out.error(
            ("dataset",),
            f"the file holds {len(datasets)} datasets ({', '.join(keys)}); a lawful annotation "
            "describes one database: choose one with --fides-key KEY and convert the "
            "others to files of their own",
        )
        return None
    return datasets[0]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _meta(entry: dict[str, Any], path: Path, out: _Problems) -> tuple[dict[str, Any], Path]:
    """`fides_meta` (or the older `fidesops_meta`) of a dataset, collection or field."""
    for key in ("fides_meta", "fidesops_meta"):
        if key in entry and entry[key] is not None:
            meta = entry[key]
            if not isinstance(meta, dict):
                out.error((*path, key), f"{key} is a mapping, not {describe(meta)}")
                return {}, (*path, key)
            return meta, (*path, key)
    return {}, (*path, "fides_meta")


def _dataset(entry: dict[str, Any], path: Path, out: _Problems) -> FidesDataset | None:
    key = entry.get("fides_key")
    if not isinstance(key, str) or not key.strip():
        out.error(path, "the dataset has no fides_key: give it one (e.g. fides_key: app_db)")
        key = "fides_dataset"
    elif "<" in key:
        out.error(
            (*path, "fides_key"),
            f"'{key}' is a template of a Fides SaaS connector's dataset: it describes an API, "
            "not a database lawful can reach; convert the datasets of your own databases",
        )
    meta, meta_path = _meta(entry, path, out)
    schema = None
    namespace = meta.get("namespace")
    if isinstance(namespace, dict):
        schema = _text(namespace.get("schema"))
        if schema is not None and not _IDENT.match(schema):
            out.error(
                (*meta_path, "namespace", "schema"),
                f"'{schema}' is not a schema name lawful can use (letters, digits, '_')",
            )
    raw = entry.get("collections")
    if not isinstance(raw, list) or not raw:
        out.error(
            (*path, "collections") if "collections" in entry else path,
            "the dataset has no collections: list its tables under collections "
            "(each with a name and fields)",
        )
        return None
    collections: list[FidesCollection] = []
    skipped: set[str] = set()
    seen: dict[str, Path] = {}
    for i, item in enumerate(raw):
        collection = _collection(item, (*path, "collections", i), out)
        if collection is None:
            continue
        if collection.name in seen:
            out.error(
                (*collection.path, "name"),
                f"collection '{collection.name}' is written twice; merge the two",
            )
            continue
        seen[collection.name] = collection.path
        if collection.skip:
            skipped.add(collection.name)
        else:
            collections.append(collection)
    return FidesDataset(
        path=path,
        key=key,
        name=_text(entry.get("name")),
        description=_text(entry.get("description")),
        schema=schema,
        collections=collections,
        skipped=skipped,
    )


def _collection(item: object, path: Path, out: _Problems) -> FidesCollection | None:
    if not isinstance(item, dict):
        out.error(path, f"a collection is a mapping (name, fields), not {describe(item)}")
        return None
    name = item.get("name")
    if not isinstance(name, str) or not name:
        out.error(path, "the collection has no name: give the table's name (name: customer)")
        return None
    if not _IDENT.match(name):
        out.error(
            (*path, "name"),
            f"'{name}' is not a table name lawful can annotate: letters, digits, '_' or '$', "
            "not starting with a digit",
        )
        return None
    meta, meta_path = _meta(item, path, out)
    if meta.get("skip_processing") is True:
        out.warn(
            (*meta_path, "skip_processing"),
            f"collection '{name}' has skip_processing: Fides leaves it out of every request, "
            "so it is left out here too (annotate it by hand to include it)",
        )
        return FidesCollection(path, name, None, [], skip=True)
    delete = False
    override = meta.get("masking_strategy_override")
    if isinstance(override, dict):
        strategy = override.get("strategy")
        if strategy == "delete":
            delete = True
        else:
            out.warn(
                (*meta_path, "masking_strategy_override"),
                f"collection '{name}': the collection-level masking strategy "
                f"{strategy!r} is not one lawful knows (delete is); the fields are masked instead",
            )
    raw = item.get("fields")
    if not isinstance(raw, list) or not raw:
        out.error(
            (*path, "fields") if "fields" in item else (*path, "name"),
            f"collection '{name}' has no fields: list its columns under fields (each with a "
            "name and data_categories), or leave the collection out",
        )
        return None
    fields: list[FidesField] = []
    seen: set[str] = set()
    for i, raw_field in enumerate(raw):
        parsed = _field(raw_field, (*path, "fields", i), name, out)
        if parsed is None:
            continue
        if parsed.name in seen:
            out.error(
                (*parsed.path, "name"),
                f"field '{name}.{parsed.name}' is written twice; keep one",
            )
            continue
        seen.add(parsed.name)
        fields.append(parsed)
    return FidesCollection(
        path=path,
        name=name,
        description=_text(item.get("description")),
        fields=fields,
        delete=delete,
    )


def _field(raw: object, path: Path, collection: str, out: _Problems) -> FidesField | None:
    if not isinstance(raw, dict):
        out.error(path, f"a field is a mapping (name, data_categories), not {describe(raw)}")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        out.error(path, f"a field of '{collection}' has no name: give the column's name")
        return None
    where = f"{collection}.{name}"
    if raw.get("fields"):
        inner = [str(f.get("name")) for f in raw["fields"] if isinstance(f, dict) and f.get("name")]
        listed = ", ".join(f"{where}.{n}" for n in inner[:4]) or "its subfields"
        if len(inner) > 4:
            listed += f" and {len(inner) - 4} more"
        out.error(
            (*path, "name"),
            f"'{where}' has nested fields ({listed}): lawful annotates whole columns of SQL "
            "tables, not the keys inside a document or JSON value; give the column "
            "data_categories of its own (erasure then masks the whole value), or leave it out",
        )
        return None
    if not _IDENT.match(name):
        out.error(
            (*path, "name"),
            f"'{name}' is not a column name lawful can annotate: letters, digits, '_' or '$', "
            "not starting with a digit",
        )
        return None
    categories: list[str] = []
    raw_categories = raw.get("data_categories")
    if raw_categories is not None:
        if isinstance(raw_categories, str):
            raw_categories = [raw_categories]
        if not isinstance(raw_categories, list):
            out.error(
                (*path, "data_categories"),
                f"data_categories is a list of category keys, not {describe(raw_categories)}",
            )
        else:
            for i, category in enumerate(raw_categories):
                if not isinstance(category, str) or not _CATEGORY.match(category):
                    out.error(
                        (*path, "data_categories", i),
                        f"{describe(category)} is not a data category key: use fideslang's "
                        "dotted keys, e.g. user.contact.email",
                    )
                else:
                    categories.append(category)
    meta, meta_path = _meta(raw, path, out)
    parsed = FidesField(
        path=path,
        name=name,
        categories=categories,
        description=_text(raw.get("description")),
        primary_key=meta.get("primary_key") is True,
        read_only=meta.get("read_only") is True,
    )
    identity = meta.get("identity")
    if identity is not None:
        if isinstance(identity, str) and identity.strip():
            parsed.identity = identity.strip()
        else:
            out.error(
                (*meta_path, "identity"),
                f"identity names the kind of identity (email, phone_number, ...), not {describe(identity)}",
            )
    if meta.get("custom_request_field"):
        out.warn(
            (*meta_path, "custom_request_field"),
            f"'{where}' is filled from a custom request field in Fides; lawful has no such "
            "input, so it is annotated as a plain column",
        )
    override = meta.get("masking_strategy_override", raw.get("masking_strategy_override"))
    if override is not None:
        if isinstance(override, dict) and isinstance(override.get("strategy"), str):
            parsed.strategy = override["strategy"]
            config = override.get("configuration")
            parsed.configuration = config if isinstance(config, dict) else {}
        else:
            out.error(
                (*meta_path, "masking_strategy_override"),
                "masking_strategy_override is a mapping with a strategy (null_rewrite, "
                "string_rewrite, hash, random_string_rewrite, ...)",
            )
    refs = meta.get("references")
    if refs is not None:
        if not isinstance(refs, list):
            out.error(
                (*meta_path, "references"),
                f"references is a list of {{dataset, field, direction}}, not {describe(refs)}",
            )
        else:
            for i, ref in enumerate(refs):
                parsed_ref = _reference(ref, (*meta_path, "references", i), where, out)
                if parsed_ref is not None:
                    parsed.references.append(parsed_ref)
    return parsed


def _reference(raw: object, path: Path, where: str, out: _Problems) -> FidesReference | None:
    if not isinstance(raw, dict):
        out.error(
            path, f"a reference is a mapping (dataset, field, direction), not {describe(raw)}"
        )
        return None
    target = raw.get("field")
    if not isinstance(target, str) or "." not in target:
        out.error(
            (*path, "field") if "field" in raw else path,
            f"the reference of '{where}' names the field it references as collection.field "
            f"(e.g. customer.id), not {describe(target)}",
        )
        return None
    collection, _, column = target.partition(".")
    if "." in column:
        out.error(
            (*path, "field"),
            f"the reference of '{where}' points at a nested field ({target}); lawful links "
            "whole columns: reference a top-level field",
        )
        return None
    direction = raw.get("direction")
    if direction not in DIRECTIONS:
        if direction is None:
            message = (
                f"the reference of '{where}' to {target} has no direction; Fides then walks it "
                "both ways, but ownership goes one way: write direction: from (this "
                f"collection's rows are reached from {collection}'s) or to ({collection}'s rows "
                "are reached from this collection's)"
            )
        else:
            guess = did_you_mean(str(direction), DIRECTIONS)
            hint = (
                f"did you mean '{guess}'?"
                if guess
                else "write from (this collection's rows are reached from the referenced "
                "rows) or to (the referenced rows are reached from this collection's)"
            )
            message = f"'{direction}' is not a reference direction; {hint}"
        out.error((*path, "direction") if "direction" in raw else path, message)
        return None
    dataset = raw.get("dataset")
    return FidesReference(
        path=path,
        dataset=dataset if isinstance(dataset, str) else "",
        collection=collection,
        field=column,
        direction=str(direction),
    )


def _check_references(parsed: FidesDataset, out: _Problems) -> None:
    """References name collections and fields of this dataset; others are skipped."""
    fields = {c.name: {f.name for f in c.fields} for c in parsed.collections}
    for collection in parsed.collections:
        for f in collection.fields:
            kept = []
            for ref in f.references:
                where = f"{collection.name}.{f.name}"
                if ref.dataset and ref.dataset != parsed.key:
                    out.warn(
                        (*ref.path, "dataset"),
                        f"'{where}' references {ref.collection}.{ref.field} in another dataset "
                        f"({ref.dataset}); one annotation describes one database, so the link "
                        "is skipped: the rows it reached are found only by their own identities",
                    )
                    continue
                if ref.collection in parsed.skipped:
                    out.warn(
                        (*ref.path, "field"),
                        f"'{where}' references {ref.collection}.{ref.field}, a collection left "
                        "out (skip_processing): the link is skipped too",
                    )
                    continue
                if ref.collection not in fields:
                    guess = did_you_mean(ref.collection, fields)
                    hint = (
                        f"did you mean '{guess}'?"
                        if guess
                        else "add that collection, or remove the reference"
                    )
                    out.error(
                        (*ref.path, "field"),
                        f"'{where}' references collection '{ref.collection}', which the "
                        f"dataset does not have; {hint}",
                    )
                    continue
                if ref.field not in fields[ref.collection]:
                    guess = did_you_mean(ref.field, fields[ref.collection])
                    hint = (
                        f"did you mean '{guess}'?"
                        if guess
                        else f"add the field to {ref.collection}, or fix the reference"
                    )
                    out.error(
                        (*ref.path, "field"),
                        f"'{where}' references {ref.collection}.{ref.field}, but collection "
                        f"'{ref.collection}' has no field '{ref.field}'; {hint}",
                    )
                    continue
                kept.append(ref)
            f.references = kept


# --- the live schema ------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveColumn:
    name: str
    type_name: str
    nullable: bool
    family: str | None  # text, number, time, bool, or None (anything else)
    length: int | None
    time_kind: str | None  # date, datetime, datetime_tz, mysql_timestamp
    unique: bool = False


@dataclass(frozen=True)
class LiveTable:
    name: str
    columns: dict[str, LiveColumn]
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class LiveSchema:
    """What the conversion reads of the database: tables, columns, keys. `error` if unread."""

    tables: dict[str, LiveTable] = field(default_factory=dict)
    error: str | None = None
    where: str = ""


def read_live_schema(url: str, schema: str | None, names: list[str]) -> LiveSchema:
    """The columns and keys of the named tables; an unreachable database gives `error`."""
    try:
        parsed = parse_url(url)
    except ConnectError as exc:
        return LiveSchema(error=str(exc))
    where = parsed.render_as_string(hide_password=True)
    path = parsed.database or ""
    sqlite = parsed.get_backend_name() == "sqlite" and path not in ("", ":memory:")
    if sqlite and not FsPath(path).exists():  # connecting would create an empty database
        return LiveSchema(error=f"no SQLite database at {path}", where=where)
    try:
        engine = create_engine(parsed)
    except ConnectError as exc:
        return LiveSchema(error=str(exc), where=where)
    try:
        with engine.connect() as conn:
            return _reflect(conn, schema, names, where)
    except DBAPIError as exc:
        return LiveSchema(error=f"cannot read the database at {where}: {first_line(exc)}")
    finally:
        engine.dispose()


def _reflect(conn: sa.Connection, schema: str | None, names: list[str], where: str) -> LiveSchema:
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names(schema=schema)) | set(
        inspector.get_view_names(schema=schema)
    )
    present = [n for n in names if n in existing]
    metadata = sa.MetaData(schema=schema)
    metadata.reflect(conn, only=present, resolve_fks=False)
    tables = {}
    for name in present:
        table = metadata.tables[f"{schema}.{name}" if schema else name]
        unique: list[tuple[str, ...]] = []
        with contextlib.suppress(NotImplementedError):  # a dialect without them
            unique += [
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(name, schema)
            ]
        unique += [
            tuple(ix["column_names"])
            for ix in inspector.get_indexes(name, schema=schema)
            if ix.get("unique") and all(ix["column_names"])
        ]
        primary = tuple(c.name for c in table.primary_key.columns)
        single = {u[0] for u in unique if len(u) == 1}
        if len(primary) == 1:
            single.add(primary[0])
        columns = {
            c.name: _live_column(c, conn.dialect, unique=c.name in single) for c in table.columns
        }
        tables[name] = LiveTable(name, columns, primary, tuple(u for u in unique if u))
    return LiveSchema(tables=tables, where=where)


def _live_column(column: sa.Column[Any], dialect: sa.Dialect, *, unique: bool) -> LiveColumn:
    mysql = dialect.name in ("mysql", "mariadb")
    try:
        type_name = str(column.type.compile(dialect=dialect))
    except Exception:  # a type the dialect can't spell back: its generic name will do
        type_name = str(column.type)
    try:
        python_type: type | None = column.type.python_type
    except NotImplementedError:
        python_type = None
    family: str | None = None
    time_kind = None
    if python_type is bool:
        family = "bool"
    elif python_type is not None and (
        issubclass(python_type, int | float) or python_type.__name__ == "Decimal"
    ):
        family = "number"
    elif python_type is not None and issubclass(python_type, str):
        family = "text"
    elif python_type is not None and issubclass(python_type, dt.datetime):
        family = "time"
        if mysql and type(column.type).__name__.upper() == "TIMESTAMP":
            time_kind = "mysql_timestamp"
        elif getattr(column.type, "timezone", False):
            time_kind = "datetime_tz"
        else:
            time_kind = "datetime"
    elif python_type is not None and issubclass(python_type, dt.date):
        family, time_kind = "time", "date"
    return LiveColumn(
        name=column.name,
        type_name=type_name,
        nullable=bool(column.nullable),
        family=family,
        length=getattr(column.type, "length", None),
        time_kind=time_kind,
        unique=unique,
    )


# --- the conversion -------------------------------------------------------------------------


@dataclass
class Conversion:
    """A Fides dataset as a lawful annotation: its text, a one-line summary, the warnings."""

    dataset: str
    text: str
    summary: str
    warnings: list[Problem]


@dataclass
class _Link:
    table: str
    on: dict[str, str]
    note: str
    path: Path


@dataclass
class _Action:
    """A column's erasure action: null, hash or fixed (value)."""

    kind: str
    value: Any = None

    def yaml(self) -> str:
        if self.kind == "fixed":
            return f"{{fixed: {_scalar(self.value)}}}"
        return self.kind


NULL = _Action("null")
HASH = _Action("hash")


@dataclass
class _Column:
    name: str
    category: str | None
    erase: _Action | None = None
    notes: list[str] = field(default_factory=list)
    description: str | None = None


@dataclass
class _Table:
    name: str
    description: str | None
    notes: list[str] = field(default_factory=list)
    primary_key: list[str] | None = None
    key_note: str | None = None
    identities: list[tuple[str, str, str]] = field(default_factory=list)  # column, kind, fides
    owners: list[_Link] = field(default_factory=list)
    erase: str = "anonymize"
    erase_note: str = ""
    columns: list[_Column] = field(default_factory=list)


def convert_fides(
    data: object,
    *,
    url: str | None = None,
    url_env: str | None = None,
    dataset: str | None = None,
    live: LiveSchema | None = None,
    source: str | None = None,
) -> Conversion:
    """The lawful annotation of the Fides dataset in `data` (parsed YAML).

    Pure: the live schema, when there is one, is passed in (`read_live_schema`).
    Raises DatasetError (key paths, no positions) on a Fides file that can't be converted.
    """
    parsed, warnings = parse_fides(data, dataset=dataset)
    return convert_parsed(parsed, warnings, url=url, url_env=url_env, live=live, source=source)


def convert_parsed(
    parsed: FidesDataset,
    warnings: list[Problem],
    *,
    url: str | None = None,
    url_env: str | None = None,
    live: LiveSchema | None = None,
    source: str | None = None,
) -> Conversion:
    out = _Problems()
    out.items.extend(warnings)
    _check_connection(url, url_env, out)
    out.raise_errors()
    taxonomy = load_taxonomy()
    collections = {c.name: c for c in parsed.collections}
    schema = live if live is not None and live.error is None else None

    links: dict[str, list[_Link]] = {name: [] for name in collections}
    for c in parsed.collections:
        for f in c.fields:
            for ref in f.references:
                arrow = (
                    f"{c.name}.{f.name} references {ref.collection}.{ref.field}, {ref.direction}"
                )
                if ref.direction == "from":
                    link = _Link(ref.collection, {f.name: ref.field}, f"Fides: {arrow}", ref.path)
                    owner = c.name
                else:
                    link = _Link(c.name, {ref.field: f.name}, f"Fides: {arrow}", ref.path)
                    owner = ref.collection
                same = [x for x in links[owner] if (x.table, x.on) == (link.table, link.on)]
                if same:
                    same[0].note += f"; {arrow}"
                else:
                    links[owner].append(link)
    linking: dict[str, set[str]] = {name: set() for name in collections}
    for name, table_links in links.items():
        for link in table_links:
            linking[name].update(link.on)
            linking[link.table].update(link.on.values())

    tables = []
    for c in parsed.collections:
        live_table = schema.tables.get(c.name) if schema is not None else None
        if schema is not None and live_table is None:
            out.warn(
                (*c.path, "name"),
                f"the database ({schema.where}) has no table '{c.name}'; check the name, "
                "the schema and the connection",
            )
        tables.append(_table(c, links[c.name], linking[c.name], live_table, taxonomy, out))
    out.raise_errors()

    name = _dataset_name(parsed.key)
    env = url_env or (None if url else f"{name.upper().replace('-', '_')}_DATABASE_URL")
    text = _render(parsed, name, tables, url, env, url_env is not None, live, source, out)
    stats = _stats(tables)
    count = len(out.warnings)
    origin = "" if name == parsed.key else f" (Fides {parsed.key})"
    summary = (
        f"dataset {name}{origin}: {stats['tables']} tables, {stats['links']} "
        f"links, {stats['identities']} identity columns, {stats['erased']} columns erased"
        + (f"; {count} warning{'s' if count != 1 else ''} (see the file's header)" if count else "")
        + ("; fitted to the live schema" if schema is not None else "")
    )
    try:
        load_dataset_text(text, file=f"<converted {parsed.key}>")
    except DatasetError as exc:  # pragma: no cover - a bug of the conversion, said plainly
        raise DatasetError(
            [
                Problem(
                    f"the converted annotation does not load ({p}); please report this",
                    path=parsed.path,
                )
                for p in exc.errors
            ]
        ) from None
    return Conversion(dataset=name, text=text, summary=summary, warnings=out.warnings)


def _check_connection(url: str | None, url_env: str | None, out: _Problems) -> None:
    if url is not None and url_env is not None:
        out.error((), "give the database as url or as url_env, not both")
    if url is not None:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            out.error((), "malformed database URL: write it like postgresql://user@host:5432/db")
            return
        if parsed.password:
            out.error(
                (),
                "the URL has a password, which does not belong in a dataset file: put the "
                "whole URL in an environment variable and pass its name as url_env",
            )
    if url_env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", url_env):
        out.error((), f"'{url_env}' is not an environment variable name (e.g. SHOP_DATABASE_URL)")


def _dataset_name(key: str) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "_", key.lower()).strip("_-")
    name = re.sub(r"^[^a-z]+", "", name)[:80]
    return name or "fides"


def _pick_category(
    categories: list[str], taxonomy: Any
) -> tuple[str | None, list[str], str | None]:
    """The category kept, the others, and a note when an unknown one was generalised."""
    if not categories:
        return None, [], None
    ranked = sorted(
        enumerate(categories),
        key=lambda item: (is_personal(item[1]), item[1].count("."), -item[0]),
        reverse=True,
    )
    chosen = ranked[0][1]
    others = [c for c in categories if c != chosen]
    if taxonomy.is_category(chosen):
        return chosen, others, None
    parts = chosen.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        ancestor = ".".join(parts[:cut])
        if taxonomy.is_category(ancestor):
            return (
                ancestor,
                others,
                f"'{chosen}' is not a fideslang category lawful knows; written as its nearest "
                f"known ancestor '{ancestor}' (declare '{chosen}' under the policy's categories "
                "to keep it)",
            )
    return None, others, f"'{chosen}' is not a fideslang category lawful knows"


def _is_id(category: str | None) -> bool:
    """Whether a key or link column's category is an identifier (kept) rather than content."""
    return category is None or not is_personal(category) or category.startswith("user.unique_id")


def _live_key(live: LiveTable) -> tuple[list[str], str | None]:
    """The columns identifying a row: the primary key, else a unique index, else all."""
    if live.primary_key:
        return list(live.primary_key), None
    for unique in live.unique:
        if all(not live.columns[c].nullable for c in unique if c in live.columns):
            note = "no primary key in the database: a unique index of NOT NULL columns"
            return list(unique), note
    return (
        list(live.columns),
        "no primary key or unique index in the database: all the columns together identify "
        "a row (add a key to the table if rows can repeat)",
    )


def _table(
    c: FidesCollection,
    owners: list[_Link],
    linking: set[str],
    live: LiveTable | None,
    taxonomy: Any,
    out: _Problems,
) -> _Table:
    table = _Table(c.name, c.description, owners=owners)
    declared = [f.name for f in c.fields if f.primary_key]
    if declared:
        table.primary_key = declared
        table.key_note = "Fides primary_key"
        key = declared
    elif live is not None:
        key, note = _live_key(live)
        if note is not None:
            table.primary_key, table.key_note = key, note
    else:
        key = []
    for f in c.fields:
        if f.identity is not None:
            kind = IDENTITY_KINDS.get(f.identity, "account")
            table.identities.append((f.name, kind, f.identity))
    if not table.identities and not owners:
        out.error(
            (*c.path, "name"),
            f"no path leads to collection '{c.name}': none of its fields is an identity and "
            "no reference reaches it (Fides refuses such a dataset too); give a field "
            "fides_meta.identity, reference it from a reached collection, or leave it out",
        )
    if c.delete:
        table.erase = "delete"
        table.erase_note = "Fides: masking_strategy_override delete (the rows are deleted)"
    else:
        table.erase_note = "Fides masks the personal fields and keeps the rows"

    fields = {f.name: f for f in c.fields}
    personal_key = [
        k
        for k in key
        if k in fields and not _is_id(_pick_category(fields[k].categories, taxonomy)[0])
    ]
    if personal_key and table.erase == "anonymize":
        table.erase = "delete"
        listed = ", ".join(
            f"{k} ({_pick_category(fields[k].categories, taxonomy)[0]})" for k in personal_key
        )
        table.erase_note = "the key holds personal data, so the rows are deleted"
        table.notes.append(
            f"The key ({', '.join(key)}) holds personal data: {listed}. A key can't be masked "
            "(erasure changes rows by their key), so erasure deletes the rows."
            + ("" if declared else " Fides, without a primary_key here, leaves them as they are.")
        )
        out.warn(
            (*c.path, "name"),
            f"the key of '{c.name}' ({', '.join(key)}) holds personal data ({listed}): erasure "
            "deletes its rows instead of masking them",
        )
    if table.identities and owners:
        table.notes.append(
            "Rows here are found by identity and through owners: a row that another "
            "subject's row also reaches is kept for them at erasure; mark a link that only "
            "lets someone see the rows with role: accessor."
        )

    for f in c.fields:
        column = _column(f, c, table, key, linking, live, taxonomy, out)
        if column is not None:
            table.columns.append(column)
    return table


def _column(
    f: FidesField,
    c: FidesCollection,
    table: _Table,
    key: list[str],
    linking: set[str],
    live: LiveTable | None,
    taxonomy: Any,
    out: _Problems,
) -> _Column | None:
    where = f"{c.name}.{f.name}"
    category, others, unknown = _pick_category(f.categories, taxonomy)
    if unknown is not None:
        if category is None:
            out.error((*f.path, "data_categories"), f"{where}: {unknown}; use a fideslang key")
            return None
        out.warn((*f.path, "data_categories"), f"{where}: {unknown}")
    if category is None:
        return None  # nothing personal, and nothing lawful needs to know about the column
    column = _Column(f.name, category, description=f.description)
    if others:
        column.notes.append(f"also {', '.join(others)}")
    if unknown is not None:
        column.notes.append("generalised from an unknown category (see the header)")
    live_column = live.columns.get(f.name) if live is not None else None
    if live is not None and live_column is None:
        out.warn(
            (*f.path, "name"),
            f"table '{c.name}' in the database has no column '{f.name}'",
        )
    identity_kind = next((kind for col, kind, _ in table.identities if col == f.name), None)
    if identity_kind is not None and not is_personal(category) and table.erase != "delete":
        column.notes.append("an identity, but not personal by its category: erasure leaves it")
        out.warn(
            (*f.path, "data_categories"),
            f"{where} holds an identity ({f.identity}) but its category {category} says it is "
            "not personal, so erasure leaves it, as Fides does; give it a user.* category to "
            "erase it",
        )
    if table.erase != "anonymize" or not is_personal(category):
        if f.strategy and is_personal(category) and table.erase == "delete":
            column.notes.append(f"Fides override {f.strategy}: moot, the rows are deleted")
        return column
    if f.name in key:
        column.notes.append("key: kept, the rows are changed by it")
        return column
    if f.name in linking and _is_id(category):
        column.notes.append("links rows: kept so they stay linked")
        return column
    if f.read_only:
        column.notes.append("read_only in Fides: never masked")
        return column
    action, note = _override(f, where, out)
    if note:
        column.notes.append(note)
    if f.name in linking:
        column.notes.append(
            "links rows but holds personal data, so it is erased too (the erased rows are "
            "unlinked; write erase: hash to keep them linked by a pseudonym)"
        )
    if live_column is not None:
        action, fit = _fit(action, live_column)
        if fit is not None:
            column.notes.append(fit.note)
            if fit.unresolved:
                out.warn((*f.path, "name"), f"{where}: {fit.note}")
    column.erase = action
    return column


def _override(f: FidesField, where: str, out: _Problems) -> tuple[_Action, str | None]:
    strategy, config = f.strategy, f.configuration
    if strategy is None or strategy == "null_rewrite":
        return NULL, None
    if strategy == "string_rewrite":
        value = config.get("rewrite_value")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            out.warn(
                f.path,
                f"{where}: string_rewrite without a rewrite_value; set to NULL instead",
            )
            return NULL, "Fides string_rewrite without a value: null"
        text = str(value)
        suffix = (config.get("format_preservation") or {}).get("suffix")
        if isinstance(suffix, str):
            text += suffix
        return _Action("fixed", text), "Fides string_rewrite"
    if strategy in ("hash", "hmac"):
        return HASH, f"Fides {strategy}: lawful's keyed hash (HMAC-SHA256)"
    if strategy == "random_string_rewrite":
        return HASH, (
            "Fides random_string_rewrite: a keyed hash instead, as irreversible but the "
            "same on every run, so a second erasure changes nothing"
        )
    out.warn(
        f.path,
        f"{where}: lawful has no masking strategy like Fides' {strategy}; the column is set "
        "to NULL instead",
    )
    return NULL, f"Fides {strategy}: no such mask in lawful, null instead"


@dataclass
class _Fit:
    note: str
    unresolved: bool = False


def _fit(action: _Action, col: LiveColumn) -> tuple[_Action, _Fit | None]:
    """`action` fitted to the live column: what erasure can actually write there."""
    why = ""
    if action.kind == "hash":
        if col.family == "text" and (col.length is None or col.length >= HASH_MIN_LENGTH):
            return action, None
        why = f"a hash does not fit {col.type_name}; "
    elif action.kind == "fixed":
        value = action.value
        if col.family == "text":
            if col.length is not None and len(str(value)) > col.length:
                cut = str(value)[: col.length]
                return _Action("fixed", cut), _Fit(
                    f"the rewrite value is cut to the column's {col.length} characters"
                )
            return action, None
        why = f"the rewrite value {value!r} does not fit {col.type_name}; "
    if col.nullable:
        return NULL, (_Fit(f"{why}set to NULL instead") if why else None)
    return _not_null(col, why)


def _not_null(col: LiveColumn, why: str) -> tuple[_Action, _Fit]:
    keep = "; if the law keeps the value, write erase: keep with a reason and rule"
    head = f"{why}{col.type_name} NOT NULL in the database (Fides' null_rewrite would fail here)"
    if col.family == "text":
        if col.unique and (col.length is None or col.length >= HASH_MIN_LENGTH):
            return HASH, _Fit(f"{head}: a keyed hash, distinct like the values it replaces")
        value = NEUTRAL_TEXT[: col.length] if col.length else NEUTRAL_TEXT
        return _Action("fixed", value), _Fit(f"{head}: a fixed value instead{keep}")
    if col.family == "number":
        return _Action("fixed", 0), _Fit(f"{head}: 0 instead{keep}")
    if col.family == "time" and col.time_kind in EPOCH:
        return _Action("fixed", EPOCH[col.time_kind]), _Fit(f"{head}: a fixed date instead{keep}")
    return NULL, _Fit(
        f"{head}: no neutral value for this type, so it stays null and `lawful dataset "
        "check` refuses it; choose {fixed: ...}, erase: keep with a reason, or delete the rows",
        unresolved=True,
    )


def _stats(tables: list[_Table]) -> dict[str, int]:
    return {
        "tables": len(tables),
        "links": sum(len(t.owners) for t in tables),
        "identities": sum(len(t.identities) for t in tables),
        "erased": sum(1 for t in tables for c in t.columns if c.erase is not None)
        + sum(
            1 for t in tables if t.erase == "delete" for c in t.columns if is_personal(c.category)
        ),
    }


# --- writing the annotation -----------------------------------------------------------------

_RESERVED = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _key(name: str) -> str:
    return json.dumps(name) if name.lower() in _RESERVED else name


def _comment(text: str) -> str:
    return f"  # {text}" if text else ""


def _wrap(text: str, indent: str, width: int = 92) -> list[str]:
    """`text` as comment lines; a bullet's further lines hang under its first word."""
    words, lines, line = text.split(), [], ""
    hang = "  " if text.startswith("- ") else ""
    for word in words:
        lead = f"{indent}# {hang if lines else ''}"
        if line and len(lead) + len(line) + 1 + len(word) > width:
            lines.append(f"{lead}{line}")
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(f"{indent}# {hang if lines else ''}{line}")
    return lines


_HOW = (
    "How Fides' meaning carries over: collections are tables; fields with data_categories "
    "are columns, with the most specific personal category (others noted beside them); "
    "fides_meta.identity fields are identities, compared exactly as Fides does and not "
    "searched for in turn; a reference with direction `from` on C.f to D.g makes C's rows "
    "D's (C.owners: {table: D, on: {f: g}}), `to` makes D's rows C's. Fides erases by "
    "masking fields, never by deleting rows: tables are erase: anonymize and each personal "
    "column is set NULL (or masked as its masking_strategy_override says), except the keys "
    "and the link columns holding ids, kept so the rows stay linked. Unlike Fides, lawful keeps a row that "
    "another subject owns too (an address shared by two customers) for them, and only "
    "releases the erasing subject from it."
)


def _render(
    parsed: FidesDataset,
    name: str,
    tables: list[_Table],
    url: str | None,
    env: str | None,
    env_given: bool,
    live: LiveSchema | None,
    source: str | None,
    out: _Problems,
) -> str:
    lines = [
        f"# lawful dataset annotation of the Fides dataset {parsed.key}"
        + (f" ({FsPath(source).name})" if source else ""),
        "# converted by `lawful dataset import-fides`; review it, then run",
        "# `lawful dataset check THIS_FILE` against the database.",
        "#",
        *_wrap(_HOW, ""),
    ]
    if live is None:
        lines += [
            "#",
            *_wrap(
                "The database was not read: primary keys come from Fides or the database, and "
                "a column set to NULL at erasure may be NOT NULL there; `lawful dataset check` "
                "reports both (or convert again with --url, or --url-env naming a variable "
                "that is set, to fit the annotation to the database).",
                "",
            ),
        ]
    elif live.error is not None:
        lines += ["#", *_wrap(f"The database could not be read ({live.error}).", "")]
        out.warn(
            (),
            f"{live.error}; converted without the live schema (missing keys and NOT NULL "
            "columns are left to `lawful dataset check`)",
        )
    else:
        lines += ["#", *_wrap(f"Fitted to the live schema of {live.where}.", "")]
    if out.warnings:
        lines += ["#", "# Review:"]
        for problem in sort_problems(out.warnings):
            lines += _wrap(f"- {problem.message}", "")
    lines += ["", "lawful: 1", f"dataset: {name}"]
    if name != parsed.key:
        lines[-1] += _comment(f"Fides fides_key: {parsed.key}")
    description = parsed.description or parsed.name
    if description:
        lines.append(f"description: {_scalar(description)}")
    lines.append("connection:")
    if url is not None:
        lines.append(f"  url: {_scalar(url)}")
    else:
        note = (
            "the environment variable holding the database URL (with its password)"
            if env_given
            else "set it to the database URL, e.g. postgresql://user:password@host/db"
        )
        lines.append(f"  url_env: {env}{_comment(note)}")
    if parsed.schema:
        lines.append(f"  schema: {parsed.schema}{_comment('Fides namespace.schema')}")
    lines += ["", "tables:"]
    for table in tables:
        lines += _render_table(table)
    return "\n".join(lines).rstrip("\n") + "\n"


def _render_table(table: _Table) -> list[str]:
    lines = [f"  {_key(table.name)}:"]
    if table.description:
        lines.append(f"    description: {_scalar(table.description)}")
    for note in table.notes:
        lines += _wrap(note, "    ")
    if table.primary_key is not None:
        keys = ", ".join(_key(k) for k in table.primary_key)
        note = table.key_note or ""
        if len(note) > 60:
            lines += _wrap(note, "    ")
            note = ""
        lines.append(f"    primary_key: [{keys}]{_comment(note)}")
    if table.identities:
        lines.append("    identities:")
        for column, kind, fides in table.identities:
            lines.append(
                f"      {_key(column)}: {{kind: {kind}, match: exact, expands: false}}"
                + _comment(f"Fides identity: {fides}")
            )
    if table.owners:
        lines.append("    owners:")
        for link in table.owners:
            on = ", ".join(f"{_key(a)}: {_key(b)}" for a, b in link.on.items())
            lines.append(
                f"      - {{table: {_key(link.table)}, on: {{{on}}}}}{_comment(link.note)}"
            )
    lines.append(f"    erase: {table.erase}{_comment(table.erase_note)}")
    if table.columns:
        lines.append("    columns:")
        for column in table.columns:
            note = "; ".join(column.notes)
            if len(note) > 60:
                lines += _wrap(note, "      ")
                note = ""
            lines.append(f"      {_key(column.name)}: {_render_column(column)}{_comment(note)}")
    lines.append("")
    return lines


def _render_column(column: _Column) -> str:
    parts = []
    if column.erase is None and column.description is None:
        body = str(column.category)
    else:
        parts.append(f"category: {column.category}")
        if column.erase is not None:
            parts.append(f"erase: {column.erase.yaml()}")
        if column.description is not None:
            parts.append(f"description: {_scalar(column.description)}")
        body = "{" + ", ".join(parts) + "}"
    return body


# --- from a file ----------------------------------------------------------------------------


def read_fides_file(
    path: str | FsPath,
    *,
    url: str | None = None,
    url_env: str | None = None,
    dataset: str | None = None,
) -> Conversion:
    """Convert the Fides dataset file at `path`; the database is read when it can be.

    Raises DatasetError with each problem's file, line and column.
    """
    name = str(path)
    try:
        doc = parse_yaml(read_bytes(path), name)
    except YamlProblem as exc:
        raise DatasetError([_about_fides(exc.problem)]) from None
    try:
        parsed, warnings = parse_fides(doc.data, dataset=dataset)
    except DatasetError as exc:
        raise DatasetError(_placed(exc.problems, doc)) from None
    live = None
    target = url if url is not None else (os.environ.get(url_env) if url_env else None)
    if target:
        live = read_live_schema(target, parsed.schema, [c.name for c in parsed.collections])
    try:
        conversion = convert_parsed(
            parsed, warnings, url=url, url_env=url_env, live=live, source=name
        )
    except DatasetError as exc:
        raise DatasetError(_placed(exc.problems, doc)) from None
    conversion.warnings = _placed(conversion.warnings, doc)
    return conversion


def convert_fides_file(
    path: str | FsPath,
    *,
    url: str | None = None,
    url_env: str | None = None,
    dataset: str | None = None,
) -> tuple[str, str]:
    """The lawful annotation (YAML text, with comments) of a Fides dataset file, and a summary."""
    conversion = read_fides_file(path, url=url, url_env=url_env, dataset=dataset)
    return conversion.text, conversion.summary


def _placed(problems: list[Problem] | tuple[Problem, ...], doc: YamlDocument) -> list[Problem]:
    return sort_problems([place_problem(p, doc) for p in problems])


def _about_fides(problem: Problem) -> Problem:
    message = (
        problem.message.replace(
            "write a policy (`lawful init` makes a starter)",
            "it should hold a Fides dataset (dataset: [{fides_key: ..., collections: ...}])",
        )
        .replace(", or create one with `lawful init`", "")
        .replace("a policy is at most", "a dataset file is at most")
    )
    return Problem(
        message,
        path=problem.path,
        file=problem.file,
        line=problem.line,
        column=problem.column,
        severity=problem.severity,
    )
