"""The `sweeps` resource: run or plan retention sweeps over HTTP (operator keys).

Also holds `add_route`, which registers a route on an app made by `create_app` with its
access rule, the way `create_app`'s own routes are registered: the add_* modules
(sweeps, banner, opendsr) use it so every route is in `app.state.access`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from lawful.api import models as m
from lawful.api.app import PREFIX, Access, _Limited, _NeedKey
from lawful.api.errors import ApiError
from lawful.api.keys import Scope
from lawful.engine import Engine
from lawful.retention import RetentionError


def add_route(
    app: FastAPI,
    method: str,
    path: str,
    scopes: Iterable[Scope] | None,
    *,
    limit: str | None = None,
    **kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route on `app` with its access rule: API keys of `scopes` (admin
    always), or anyone (`scopes` None) limited per client address by bucket `limit`."""
    allowed = None if scopes is None else frozenset({Scope.admin, *scopes})
    dependencies = []
    if allowed is not None:
        dependencies.append(Depends(_NeedKey(app.state.keys, allowed)))
    if limit is not None:
        dependencies.append(Depends(_Limited(app.state.limiter, limit)))
    app.state.access[(method, path)] = Access(allowed, limit)
    responses: dict[int | str, dict[str, Any]] = {
        400: {"model": m.ErrorOut, "description": "Bad input: the message says what to fix"},
        422: {"model": m.ErrorOut, "description": "The body or query is malformed"},
    }
    if allowed is not None:
        responses[401] = {"model": m.ErrorOut, "description": "No valid API key"}
        responses[403] = {"model": m.ErrorOut, "description": "The key's scope does not allow it"}
    if limit is not None:
        responses[429] = {"model": m.ErrorOut, "description": "Rate-limited: see Retry-After"}
    return app.api_route(
        path,
        methods=[method],
        dependencies=dependencies,
        responses={**responses, **kwargs.pop("responses", {})},
        **kwargs,
    )


class SweepIn(BaseModel):
    """A sweep to run: all rules or those named; `dry_run` only counts."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Count what would go without deleting anything")
    rules: list[str] | None = Field(
        None, description="Only these retention rules (default: every rule swept)", max_length=200
    )


class TableSweepOut(BaseModel):
    model_config = ConfigDict(extra="allow")


class RuleSweepOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    rule: str
    tables: list[TableSweepOut]


class SweepOut(BaseModel):
    """What a sweep did (or, dry, would do): per rule and table, the rows."""

    run: str
    at: str
    dry_run: bool
    rows: int
    rules: list[RuleSweepOut]


def add_sweeps(app: FastAPI, engine: Engine) -> None:
    """`POST /api/v1/sweeps` and `GET /api/v1/sweeps/plan` (operator keys)."""

    def rules_of(names: list[str] | None, field: str) -> list[str] | None:
        if names is None:
            return None
        cleaned = [n.strip() for n in names]
        if not all(cleaned):
            raise ApiError(400, "sweep.rule", "a rule name is empty: name a retention rule", field)
        return cleaned

    def run(dry_run: bool, rules: list[str] | None, field: str) -> dict[str, Any]:
        try:
            report = engine.retention.sweep(dry_run=dry_run, rules=rules)
        except RetentionError as exc:
            raise ApiError(400, "sweep.unknown_rule", str(exc), field) from None
        return report.to_dict()

    @add_route(
        app,
        "POST",
        f"{PREFIX}/sweeps",
        [Scope.operator],
        response_model=SweepOut,
        tags=["sweeps"],
        summary="Run a retention sweep now (or a dry run): delete or anonymize what expired",
    )
    def sweep(body: SweepIn) -> dict[str, Any]:
        """A real sweep writes one `retention.swept` audit event per rule, with the counts."""
        return run(body.dry_run, rules_of(body.rules, "rules"), "rules")

    @add_route(
        app,
        "GET",
        f"{PREFIX}/sweeps/plan",
        [Scope.operator, Scope.read],
        response_model=SweepOut,
        tags=["sweeps"],
        summary="What a sweep would do now: per rule and table, the rows and the oldest",
    )
    def plan(
        rule: Annotated[
            list[str] | None, Query(description="Only these rules (repeat: ?rule=a&rule=b)")
        ] = None,
    ) -> dict[str, Any]:
        return run(True, rules_of(rule, "rule"), "rule")
