"""`lawful sweep` and `lawful hold add|list|release`.

Sweeps run against the datasets named with `--dataset FILE` (repeatable; default:
datasets/*.yaml when there are any) and lawful's own records. Wired into `lawful` as
`app.command("sweep")(sweep)` and `app.add_typer(hold_app, name="hold")`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from lawful.options import (
    DatasetOption,
    JsonOption,
    KeyringOption,
    PolicyOption,
    StoreOption,
    dataset_files,
    open_engine,
)
from lawful.options import print_json as _print
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.retention.holds import HoldView, RetentionError
from lawful.retention.service import Retention, SweepReport
from lawful.retention.sweep import DEFAULT_BATCH
from lawful.store import StoreError
from lawful.subjects import Identity, IdentityError, KeyringError, KeyringMissing

hold_app = typer.Typer(help="Legal holds: what retention sweeps leave alone.", no_args_is_help=True)

ByOption = Annotated[
    str | None, typer.Option("--by", help="Who does it: an operator id (default: $USER)")
]


@contextmanager
def _retention(
    policy: Path | None,
    store: str | None,
    keyring: Path | None,
    datasets: list[Path] | None,
    batch: int = DEFAULT_BATCH,
) -> Iterator[Retention]:
    """The retention service, with every user error turned into `error: …`.

    Bad input (an unknown rule, table or reason, a missing file) exits 2; a store, a
    database or a keyring that can't be used exits 1.
    """
    from lawful.datasets import DatasetError
    from lawful.datasets.service import ConnectError

    if batch < 1:
        _usage(f"--batch must be 1 or more, not {batch}")
    engine = open_engine(policy, store, keyring=keyring, datasets=dataset_files(datasets))
    try:
        yield Retention(engine.store, engine.policy, engine.keyring, engine.datasets, batch=batch)
    except (RetentionError, IdentityError, KeyringMissing) as exc:
        _usage(str(exc))
    except (KeyringError, StoreError, ConnectError) as exc:
        _refuse(str(exc))
    except DatasetError as exc:
        _refuse("\n".join(str(p) for p in exc.problems))
    finally:
        engine.close()


def _show_report(report: SweepReport) -> None:
    verb = "would go" if report.dry_run else "went"
    title = "dry run" if report.dry_run else "sweep"
    typer.echo(f"{title} {report.run} at {report.at:%Y-%m-%d %H:%M} UTC")
    for rule in report.rules:
        typer.echo(
            f"rule {rule.rule} (keep {rule.keep}, then {rule.then}): {rule.rows} rows {verb}"
        )
        for t in rule.tables:
            where = f"{t.dataset}.{t.table}" if t.dataset else t.table
            parts = [f"{t.rows} {t.action}"]
            if t.held:
                parts.append(f"{t.held} held")
            if t.skipped:
                parts.append(f"{t.skipped} still referenced")
            if report.dry_run and t.oldest is not None:
                oldest = t.oldest.isoformat() if hasattr(t.oldest, "isoformat") else t.oldest
                parts.append(f"oldest {oldest}")
            if t.error:
                parts.append(f"FAILED: {t.error}")
            typer.echo(
                f"  {where} (from {t.clock}, before {t.cutoff:%Y-%m-%d}): {', '.join(parts)}"
            )


def sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would go, per rule; change nothing")
    ] = False,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Only this rule; repeatable")
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", help="Rows per batch (each batch one transaction)")
    ] = DEFAULT_BATCH,
    dataset: DatasetOption = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete or anonymize what the policy's retention rules say has expired."""
    with _retention(policy, store, keyring, dataset, batch) as retention:
        report = retention.sweep(dry_run=dry_run, rules=rule)
    if as_json:
        _print(report.to_dict())
    else:
        _show_report(report)
    if report.failed:
        raise typer.Exit(1)


def _identity(email: str | None, phone: str | None, identity: str | None) -> Identity | None:
    given = [v for v in (email, phone, identity) if v is not None]
    if len(given) > 1:
        _usage("name the subject once: --email, --phone or --identity")
    try:
        if email is not None:
            return Identity.of("email", email)
        if phone is not None:
            return Identity.of("phone", phone)
        if identity is not None:
            return Identity.parse(identity)
    except IdentityError as exc:
        _usage(str(exc))
    return None


def _show_hold(hold: HoldView) -> None:
    state = "active" if hold.active else f"released {hold.released_at:%Y-%m-%d}"
    case = f", case {hold.case}" if hold.case else ""
    typer.echo(f"hold {hold.ref}: {hold.reason}{case}; {hold.scope}; {state}")
    typer.echo(f"  placed {hold.created_at:%Y-%m-%d %H:%M} UTC by {hold.created_by}")


@hold_app.command("add")
def add(
    reason: Annotated[
        str,
        typer.Option(help="dispute, legal_claim, legal_hold, legal_obligation or investigation"),
    ],
    email: Annotated[str | None, typer.Option(help="The subject's email")] = None,
    phone: Annotated[str | None, typer.Option(help="The subject's phone number")] = None,
    identity: Annotated[
        str | None, typer.Option(help="The subject as KIND:VALUE, e.g. account:42")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="Only this table (table or dataset.table)")
    ] = None,
    case: Annotated[str | None, typer.Option(help="The case reference (no names)")] = None,
    by: ByOption = None,
    dataset: DatasetOption = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Place a legal hold on a subject, a table, or a subject's rows in one table."""
    person = _identity(email, phone, identity)
    with _retention(policy, store, keyring, dataset) as retention:
        hold = retention.hold(
            reason=reason, by=by or _operator(), identity=person, table=table, case=case
        )
    _print(hold.to_dict()) if as_json else _show_hold(hold)


@hold_app.command("list")
def list_holds(
    released: Annotated[bool, typer.Option("--all", help="Released holds too")] = False,
    dataset: DatasetOption = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """The legal holds (active ones unless --all)."""
    with _retention(policy, store, keyring, dataset) as retention:
        holds = retention.holds(released=released)
    if as_json:
        _print([h.to_dict() for h in holds])
        return
    if not holds:
        typer.echo("no holds" if released else "no active holds")
    for hold in holds:
        _show_hold(hold)


@hold_app.command("release")
def release(
    ref: Annotated[str, typer.Argument(help="The hold's id (from hold add or hold list)")],
    by: ByOption = None,
    dataset: DatasetOption = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Release a legal hold: the next sweep applies the rules to what it held."""
    with _retention(policy, store, keyring, dataset) as retention:
        hold = retention.release(ref, by=by or _operator())
    _print(hold.to_dict()) if as_json else _show_hold(hold)


def _operator() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "cli"
