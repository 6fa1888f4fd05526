"""`lawful children report [--json] [--raise-erasure]`: children found in the datasets.

The datasets are named with `--dataset FILE` (repeatable; default: datasets/*.yaml).
With `--raise-erasure`, an erasure request is raised for each child the policy deletes
on discovery; messages go to the sender the environment configures, as for
`lawful request`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from lawful.children.report import ChildrenReport
from lawful.children.service import Children, ChildrenError, RaisedErasure
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

children_app = typer.Typer(
    help="Children: subjects under the age the policy or the law sets.", no_args_is_help=True
)


def _echo(report: ChildrenReport, raised: list[RaisedErasure] | None) -> None:
    typer.echo(f"children found on {report.today.isoformat()}: {len(report.children)}")
    for table in report.tables:
        typer.echo(f"  {table.dataset}.{table.table}.{table.column}: {len(table.children)}")
        for c in table.children:
            consent = "parent consented" if c.parental_consent else "no parent's consent"
            typer.echo(
                f"    {c.identity_hash[:16]}  ref {c.subject_ref or '—'}  "
                f"{c.jurisdiction or 'jurisdiction unknown'}  under {c.age_limit} ({c.source})  "
                f"rule: {', '.join(c.rules)}  {consent}" + ("  → delete" if c.to_delete else "")
            )
    if raised is not None:
        new = [r for r in raised if r.raised]
        typer.echo(f"erasure requests raised: {len(new)}; already open: {len(raised) - len(new)}")
        for r in raised:
            typer.echo(
                f"  {r.identity_hash[:16]}  request {r.request_ref}"
                + ("" if r.raised else " (already open)")
            )


@children_app.command("report")
def report(
    raise_erasure: Annotated[
        bool,
        typer.Option(
            "--raise-erasure", help="Raise an erasure request for each child to delete on discovery"
        ),
    ] = False,
    today: Annotated[
        str | None, typer.Option(help="Count ages on this day, YYYY-MM-DD (default: today)")
    ] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    dataset: DatasetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the children in the datasets' birth-date columns, with the policy's rule."""
    from lawful.datasets import DatasetError
    from lawful.datasets.connect import ConnectError

    day = None
    if today is not None:
        try:
            day = date.fromisoformat(today)
        except ValueError:
            _usage(f"--today {today!r}: write the day as YYYY-MM-DD")
    files = dataset_files(dataset)
    if not files:
        _usage("no dataset annotation: pass --dataset FILE (or keep them in datasets/*.yaml)")
    engine = open_engine(policy, store, keyring=keyring, datasets=files, messages=True)
    try:
        children = Children(
            engine.store,
            engine.policy,
            engine.keyring,
            engine.datasets,
            engine.requests if raise_erasure else None,
        )
        found = children.report(today=day)
        raised = children.raise_erasures(found) if raise_erasure else None
    except (ChildrenError, KeyringMissing) as exc:
        _usage(str(exc))
    except (KeyringError, StoreError, ConnectError) as exc:
        _refuse(str(exc))
    except DatasetError as exc:
        _refuse("; ".join(str(p) for p in exc.problems))
    finally:
        engine.close()
    if as_json:
        out = found.to_dict()
        if raised is not None:
            out["raised"] = [r.__dict__ for r in raised]
        _print(out)
        return
    _echo(found, raised)
