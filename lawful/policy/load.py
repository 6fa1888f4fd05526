"""Load a policy file: read YAML, validate the shape, check cross-references and the law.

A bad policy is rejected whole, with every problem at once, each with file, line,
column, key path, what is wrong and how to fix it. Nothing here raises anything but
`PolicyError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path as FsPath
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from lawful.policy.checks import Names, check_policy
from lawful.policy.model import Policy
from lawful.policy.problems import Path, PolicyError, Problem, sort_problems
from lawful.policy.vocabulary import describe, did_you_mean
from lawful.policy.yamlfile import YamlDocument, YamlProblem, parse_yaml, read_bytes


@dataclass(frozen=True)
class LoadedPolicy:
    """A valid policy with where it came from and what `check` warned about."""

    policy: Policy
    text: str
    file: str
    content_hash: str
    warnings: tuple[Problem, ...] = ()


def load_policy(path: str | FsPath) -> LoadedPolicy:
    """Load and fully check the policy file at `path`; raise PolicyError on any error."""
    name = str(path)
    try:
        raw = read_bytes(path)
        doc = parse_yaml(raw, name)
    except YamlProblem as exc:
        raise PolicyError([exc.problem]) from None
    return _load(doc)


def load_policy_text(text: str, file: str = "<policy>") -> LoadedPolicy:
    """Like `load_policy`, for text already in memory (an API body, a stored version)."""
    try:
        doc = parse_yaml(text, file)
    except YamlProblem as exc:
        raise PolicyError([exc.problem]) from None
    return _load(doc)


def starter_policy() -> str:
    """The commented starter policy `lawful init` writes (it passes `lawful check`)."""
    return resources.files("lawful.policy").joinpath("data/starter.yaml").read_text("utf-8")


def content_hash(policy: Policy) -> str:
    """A hash of what the policy says, not how it is written: comments and key order don't count."""
    canonical = json.dumps(
        policy.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _load(doc: YamlDocument) -> LoadedPolicy:
    data = doc.data
    if not isinstance(data, dict):
        raise PolicyError(
            [
                Problem(
                    f"a policy is a mapping of sections (lawful:, controller:, purposes:, ...), "
                    f"but the file holds {describe(data)}",
                    file=doc.file,
                    line=1,
                    column=1,
                )
            ]
        )
    problems: list[Problem] = []
    policy: Policy | None = None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, doc, Policy))
    partial = policy if policy is not None else _partial_policy(data)
    for problem in check_policy(partial, Names.from_raw(data)):
        problems.append(place_problem(problem, doc))
    problems = dedupe_problems(sort_problems(problems))
    if any(p.severity == "error" for p in problems):
        raise PolicyError(problems)
    assert policy is not None
    return LoadedPolicy(
        policy=policy,
        text=doc.text,
        file=doc.file,
        content_hash=content_hash(policy),
        warnings=tuple(problems),
    )


def dedupe_problems(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for p in problems:
        key = (p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _points_at_key(doc: YamlDocument, path: Path) -> bool:
    """A problem about a whole mapping points at its key line, not at its first child."""
    value: Any = doc.data
    for part in path:
        if (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and part < len(value)
        ):
            value = value[part]
        else:
            return False
    return isinstance(value, dict) and path in doc.keys


def place_problem(problem: Problem, doc: YamlDocument) -> Problem:
    """`problem` with the file, line and column where its key path is written."""
    pos = doc.position(problem.path, key=_points_at_key(doc, problem.path))
    return Problem(
        problem.message,
        path=problem.path,
        file=doc.file,
        line=pos.line if pos else None,
        column=pos.column if pos else None,
        severity=problem.severity,
    )


# --- pydantic errors in the policy author's words ---------------------------------------

_EXPECTED = {
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "list_type": "expected a list",
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "date_type": "expected a date like 2025-02-19",
    "date_parsing": "expected a date like 2025-02-19",
    "date_from_datetime_parsing": "expected a date like 2025-02-19",
    "date_from_datetime_inexact": "expected a date like 2025-02-19, without a time",
}


def validation_problems(
    exc: ValidationError, doc: YamlDocument, root: type[BaseModel]
) -> list[Problem]:
    """pydantic's errors for a document validated as `root`, in the author's words."""
    return [_translate(err, doc, root) for err in exc.errors(include_url=False)]


def _translate(err: Any, doc: YamlDocument, root: type[BaseModel]) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("<")))
    kind = err["type"]
    value = err.get("input")
    at_key = False
    if loc and loc[-1] == "[key]":
        loc, at_key = loc[:-1], True
    if kind == "missing":
        field, parent = loc[-1], loc[:-1]
        hint = _description(root, parent, str(field))
        message = f"missing required key '{field}'" + (f": {hint}" if hint else "")
        pos = doc.position(parent, key=True)
        return _at(message, loc, doc, pos)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        guess = did_you_mean(str(loc[-1]), allowed) if allowed else None
        message = f"unknown key '{loc[-1]}'"
        if guess:
            message += f"; did you mean '{guess}'?"
        elif allowed:
            message += f"; allowed here: {', '.join(allowed)}"
        return _at(message, loc, doc, doc.position(loc, key=True))
    if kind in _EXPECTED:
        message = f"{_EXPECTED[kind]}, got {describe(value)}"
        if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
            message += f"; put it in quotes: '{value}'"
    elif kind in ("greater_than_equal", "greater_than"):
        message = f"{describe(value)} is too small: it must be at least {err['ctx'].get('ge', err['ctx'].get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        message = f"{describe(value)} is too large: it must be at most {err['ctx'].get('le', err['ctx'].get('lt'))}"
    else:
        message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return _at(message, loc, doc, doc.position(loc, key=at_key or _points_at_key(doc, loc)))


def _at(message: str, loc: Path, doc: YamlDocument, pos: Any) -> Problem:
    return Problem(
        message,
        path=loc,
        file=doc.file,
        line=pos.line if pos else None,
        column=pos.column if pos else None,
    )


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional; from a union keep the model arm (or the first arm)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            arms = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in arms if _is_model(_unwrap(a))]
            tp = models[0] if models else arms[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _type_at(root: type[BaseModel], loc: Path) -> Any:
    """The declared type at a key path of a document, or None when it can't be followed."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if _is_model(tp):
            field = _field(tp, str(part))
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
    return _unwrap(tp)


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _allowed_keys(root: type[BaseModel], loc: Path) -> list[str]:
    tp = _type_at(root, loc)
    if not _is_model(tp):
        return []
    return [info.alias or name for name, info in tp.model_fields.items()]


def _description(root: type[BaseModel], loc: Path, key: str) -> str | None:
    tp = _type_at(root, loc)
    if not _is_model(tp):
        return None
    field = _field(tp, key)
    return field.description if field else None


# --- partial policy for cross-checks when the shape has errors --------------------------


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    info = Policy.model_fields[name]
    tp = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(tp)


def _partial_policy(data: dict[str, Any]) -> Policy:
    """The sections (and named entries) that validate on their own, for cross-checks.

    A section with errors falls back to its default; an entry of a named section
    (a purpose, a recipient) with errors is left out. `Names` still knows every name
    written, so nothing is reported as undeclared just because it has errors of its own.
    """
    values: dict[str, Any] = {}
    for name, info in Policy.model_fields.items():
        key = info.alias or name
        if key not in data:
            values[name] = (
                None if info.is_required() else info.get_default(call_default_factory=True)
            )
            continue
        raw = data[key]
        adapter = _adapter(name)
        if typing.get_origin(_unwrap(info.annotation)) is dict and isinstance(raw, dict):
            kept: dict[str, Any] = {}
            for entry_key, entry in raw.items():
                with contextlib.suppress(ValidationError):
                    kept.update(adapter.validate_python({entry_key: entry}))
            values[name] = kept
            continue
        try:
            values[name] = adapter.validate_python(raw)
        except ValidationError:
            values[name] = (
                None if info.is_required() else info.get_default(call_default_factory=True)
            )
    return Policy.model_construct(**values)
