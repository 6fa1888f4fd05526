"""`lawful incident open|list|show|assess|event|notify|close`: the breach register.

The people affected are computed from the datasets named with `--dataset FILE`
(repeatable; default: datasets/*.yaml when there are any).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lawful.incidents.affected import IncidentError
from lawful.incidents.service import EVENT_KINDS, Incident, Incidents, parse_when
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
from lawful.store import StoreError
from lawful.subjects import KeyringError, KeyringMissing

incident_app = typer.Typer(
    help="Personal-data breaches: record, compute who is affected, notify, close.",
    no_args_is_help=True,
)

IdArg = Annotated[str, typer.Argument(help="The incident's number (from list) or ref")]


@contextmanager
def _incidents(
    policy: Path | None, store: str | None, keyring: Path | None, datasets: list[Path] | None
) -> Iterator[Incidents]:
    from lawful.datasets import DatasetError
    from lawful.datasets.connect import ConnectError

    engine = open_engine(policy, store, keyring=keyring, datasets=dataset_files(datasets))
    try:
        # The engine's register: its datasets, and the disclosure log for a breach at a
        # recipient (--system), as the API's incidents have.
        yield engine.incidents
    except (IncidentError, KeyringMissing) as exc:
        _usage(str(exc))
    except (KeyringError, StoreError, ConnectError) as exc:
        _refuse(str(exc))
    except DatasetError as exc:
        _refuse("; ".join(str(p) for p in exc.problems))
    finally:
        engine.close()


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"


def _show(incident: Incident, as_json: bool) -> None:
    now = datetime.now(UTC)
    if as_json:
        _print(incident.to_dict(now))
        return
    risk = {True: "high risk", False: "not high risk", None: "risk not assessed"}[
        incident.high_risk
    ]
    typer.echo(f"incident {incident.number} ({incident.ref}): {incident.state}, {risk}")
    typer.echo(f"  {incident.summary}")
    typer.echo(f"  discovered {_when(incident.discovered_at)}")
    if incident.tables:
        typer.echo(f"  tables: {', '.join(incident.tables)}")
    if incident.categories:
        typer.echo(f"  categories: {', '.join(incident.categories)}")
    if incident.systems:
        typer.echo(f"  systems: {', '.join(incident.systems)}")
    people = ", ".join(f"{j or 'unknown'} {n}" for j, n in incident.by_jurisdiction.items())
    typer.echo(
        f"  people affected: {incident.subjects_count}"
        + (f" ({people})" if people else "")
        + (f"; estimate {incident.people_estimate}" if incident.people_estimate is not None else "")
        + (f"; records {incident.records_count}" if incident.records_count is not None else "")
    )
    typer.echo("  deadlines:")
    for d in sorted(incident.deadlines, key=lambda d: d.sort_key(now)):
        typer.echo(f"    {_deadline_line(d, now, incident.state)}")
    if incident.events:
        typer.echo("  timeline:")
        for e in incident.events:
            typer.echo(f"    {_when(e.at)}  {e.kind}" + (f": {e.note}" if e.note else ""))


def _deadline_line(d: Any, now: datetime, state: str) -> str:
    if d.required is False:
        status = "not required"
    elif d.required is None:
        status = "required if the risk is high (assess it)"
    elif d.done_at:
        status = f"done {_when(d.done_at)}"
    elif d.overdue(now) and state != "closed":
        status = "OVERDUE"
    else:
        status = "open"
    due = f"due {_when(d.due_at)}" if d.due_at else "no fixed time"
    return f"{d.jurisdiction:<6} {d.audience:<9} {due:<26} {status:<14} ({d.basis})"


@incident_app.command("open")
def open_(
    summary: Annotated[str, typer.Option(help="What happened, without personal data")],
    table: Annotated[
        list[str] | None, typer.Option(help="An affected table, dataset.table; repeatable")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="An affected data category; repeatable")
    ] = None,
    system: Annotated[list[str] | None, typer.Option(help="An affected system; repeatable")] = None,
    high_risk: Annotated[
        bool | None,
        typer.Option("--high-risk/--not-high-risk", help="The risk to people, when assessed"),
    ] = None,
    discovered_at: Annotated[
        str | None, typer.Option(help="When it was discovered, ISO 8601 (default: now)")
    ] = None,
    people: Annotated[int | None, typer.Option(help="Your estimate of the people affected")] = None,
    jurisdiction: Annotated[
        list[str] | None,
        typer.Option(help="A law whose deadlines apply (default: the people's); repeatable"),
    ] = None,
    consequences: Annotated[
        str | None, typer.Option(help="The likely consequences, in plain words")
    ] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    dataset: DatasetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a breach; lawful computes the people affected and the deadlines."""
    try:
        when = parse_when(discovered_at) if discovered_at else datetime.now(UTC)
    except IncidentError as exc:
        _usage(f"--discovered-at: {exc}")
    with _incidents(policy, store, keyring, dataset) as register:
        incident = register.open(
            when,
            summary,
            tables=table or [],
            categories=category or [],
            systems=system or [],
            people_estimate=people,
            high_risk=high_risk,
            jurisdictions=jurisdiction,
            consequences=consequences,
        )
        _show(incident, as_json)


@incident_app.command("list")
def list_(
    open_only: Annotated[bool, typer.Option("--open", help="Only open incidents")] = False,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """The register: overdue first, then by the next deadline."""
    now = datetime.now(UTC)
    with _incidents(policy, store, keyring, []) as register:
        found = register.list(open_only=open_only, now=now)
        if as_json:
            _print([i.to_dict(now) for i in found])
            return
        if not found:
            typer.echo("no incidents")
        for i in found:
            flag = " OVERDUE" if i.overdue(now) else ""
            nxt = f"next due {_when(i.next_due())}" if i.next_due() else ""
            typer.echo(
                f"{i.number:>4}  {i.state:<6} discovered {_when(i.discovered_at)}  "
                f"{i.subjects_count} people  {nxt}{flag}  {i.summary[:60]}"
            )
            for d in sorted(i.deadlines, key=lambda d: d.sort_key(now)):
                if d.required is not False and i.state != "closed":
                    typer.echo(f"        {_deadline_line(d, now, i.state)}")


@incident_app.command("show")
def show(
    incident: IdArg,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """An incident: scope, people affected, deadlines, timeline."""
    with _incidents(policy, store, keyring, []) as register:
        _show(register.show(incident), as_json)


@incident_app.command("assess")
def assess(
    incident: IdArg,
    high_risk: Annotated[
        bool, typer.Option("--high-risk/--not-high-risk", help="Is the risk to people high?")
    ],
    note: Annotated[str | None, typer.Option(help="Why")] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record the risk assessment (under the GDPR, people are told when it is high)."""
    with _incidents(policy, store, keyring, []) as register:
        _show(register.assess(incident, high_risk, note), as_json)


@incident_app.command("event")
def event(
    incident: IdArg,
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(EVENT_KINDS)}")],
    note: Annotated[str | None, typer.Option(help="What happened, without personal data")] = None,
    at: Annotated[str | None, typer.Option(help="When, ISO 8601 (default: now)")] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an entry to the timeline (contained, measure, update, ...)."""
    try:
        when = parse_when(at) if at else None
    except IncidentError as exc:
        _usage(f"--at: {exc}")
    with _incidents(policy, store, keyring, []) as register:
        _show(register.add_event(incident, kind, note, at=when), as_json)


@incident_app.command("notify")
def notify(
    incident: IdArg,
    authority: Annotated[
        bool, typer.Option("--authority", help="The supervisory authority")
    ] = False,
    subjects: Annotated[bool, typer.Option("--subjects", help="The people affected")] = False,
    draft_only: Annotated[
        bool, typer.Option("--draft", help="Print the notice without marking it sent")
    ] = False,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Draft the notice and mark it given (print it, send it your way)."""
    if authority == subjects:
        _usage("choose one: --authority or --subjects")
    audience = "authority" if authority else "subjects"
    with _incidents(policy, store, keyring, []) as register:
        notice = (
            register.draft(incident, audience)
            if draft_only
            else register.notify(incident, audience)
        )
        if as_json:
            _print(
                {
                    "audience": notice.audience,
                    "subject": notice.subject,
                    "text": notice.text,
                    "sha256": notice.sha256,
                    "marked": not draft_only,
                }
            )
            return
        typer.echo(f"Subject: {notice.subject}\n")
        typer.echo(notice.text)
        if not draft_only:
            typer.echo(f"✓ marked: {audience} notified", err=True)


@incident_app.command("close")
def close(
    incident: IdArg,
    report: Annotated[Path, typer.Option(help="The closing report, a text file")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close the incident with its report."""
    if not report.is_file():
        _usage(f"--report {report}: no such file")
    try:
        text = report.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _usage(f"--report {report}: can't read it as UTF-8 text ({exc.__class__.__name__})")
    with _incidents(policy, store, keyring, []) as register:
        _show(register.close(incident, text), as_json)
