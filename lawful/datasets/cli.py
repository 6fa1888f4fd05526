"""`lawful dataset check|import-fides`, `lawful scan` and `lawful data find|erase|rectify`.

Data commands take annotation files with `--dataset FILE` (repeatable; default:
datasets/*.yaml in the current directory) and work with the datasets alone; a policy
(`--policy`, or ./policy.yaml when it exists) adds its checks: categories declared,
data kept only under a retention rule. A subject is named with `--email`, `--phone`,
`--id` (an account id) or `--identity KIND:VALUE`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from lawful.datasets.access import DatasetAccess, RectifyError, plain
from lawful.datasets.connect import ConnectError
from lawful.datasets.erase import DatasetErasure, ErasureFailed, outcomes_lines
from lawful.datasets.load import DatasetError
from lawful.datasets.masks import MaskKeyMissing
from lawful.datasets.service import Datasets
from lawful.options import (
    DEFAULT_DATASETS,
    DatasetOption,
    JsonOption,
    KeyringOption,
    PolicyOption,
    dataset_files,
)
from lawful.options import print_json as _print
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.policy import Policy
from lawful.subjects import Identity, IdentityError, KeyringError, keyring_path, load_keyring

dataset_app = typer.Typer(help="Annotations of the company's own databases.", no_args_is_help=True)
data_app = typer.Typer(
    help="A subject's rows in the annotated databases: find, erase, rectify.", no_args_is_help=True
)

EmailOption = Annotated[
    list[str] | None, typer.Option("--email", help="The subject's email address")
]
PhoneOption = Annotated[
    list[str] | None,
    typer.Option("--phone", help="The subject's phone number, with its country code"),
]
IdOption = Annotated[list[str] | None, typer.Option("--id", help="The subject's account id")]
IdentityOption = Annotated[
    list[str] | None,
    typer.Option(
        "--identity", help="Any identity as KIND:VALUE (email, phone, account, device, customer)"
    ),
]


def _policy(option: Path | None) -> Policy | None:
    """The policy when named (or when ./policy.yaml exists); exits 1 if it does not load."""
    from lawful.cli import _existing, _load_or_exit
    from lawful.engine import policy_path

    if option is None and not os.environ.get("LAWFUL_POLICY"):
        default = policy_path(None)
        return _load_or_exit(default).policy if default.exists() else None
    return _load_or_exit(_existing(policy_path(option))).policy


def _dataset_files(options: list[Path] | None) -> list[Path]:
    found = dataset_files(options)
    if not found:
        _usage(
            f"no dataset files: pass --dataset FILE, or put them in {DEFAULT_DATASETS} "
            "(`lawful scan DB_URL -o datasets/app.yaml` drafts one)"
        )
    return found


def _print_problems(exc: DatasetError) -> None:
    errors = len(exc.errors)
    typer.echo(f"✗ {errors} error{'s' if errors != 1 else ''} in the dataset files", err=True)
    for problem in exc.problems:
        typer.echo(f"  {problem}", err=True)


@contextmanager
def _datasets(
    files: list[Path] | None, policy: Path | None, keyring: Path | None
) -> Iterator[Datasets]:
    """The datasets, with every user error turned into `error: …` and its exit code."""
    paths = _dataset_files(files)
    loaded_policy = _policy(policy)
    ring = None
    path = keyring_path(keyring)
    if keyring is not None or path.exists():
        try:
            ring = load_keyring(path)
        except KeyringError as exc:
            _usage(str(exc))
    try:
        datasets = Datasets.load(paths, policy=loaded_policy, keyring=ring)
    except DatasetError as exc:
        _print_problems(exc)
        raise typer.Exit(1) from None
    try:
        yield datasets
    except DatasetError as exc:
        _print_problems(exc)
        raise typer.Exit(1) from None
    except (ConnectError, ErasureFailed) as exc:
        _refuse(str(exc))
    except MaskKeyMissing as exc:
        _usage(str(exc))
    finally:
        datasets.close()


def _identities(
    emails: list[str] | None,
    phones: list[str] | None,
    ids: list[str] | None,
    others: list[str] | None,
) -> list[Identity]:
    out = []
    try:
        out += [Identity.of("email", e) for e in emails or []]
        out += [Identity.of("phone", p) for p in phones or []]
        out += [Identity.of("account", i) for i in ids or []]
        out += [Identity.parse(i) for i in others or []]
    except IdentityError as exc:
        _usage(str(exc))
    if not out:
        _usage("name the subject: --email, --phone, --id or --identity KIND:VALUE")
    return out


# --- lawful dataset ------------------------------------------------------------------------


@dataset_app.command("check")
def dataset_check(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help=f"Dataset annotation files (default: {DEFAULT_DATASETS})"),
    ] = None,
    policy: PolicyOption = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Check the files only, not against the databases.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check annotation files (and the live databases they describe); exit 1 on any error."""
    paths = _dataset_files(files)
    loaded_policy = _policy(policy)
    reports: list[dict[str, Any]] = []
    failed = False
    for path in paths:
        report: dict[str, Any] = {"file": str(path), "dataset": None, "problems": []}
        try:
            datasets = Datasets.load([path], policy=loaded_policy)
        except DatasetError as exc:
            report |= {"ok": False, "problems": [p.to_dict() for p in exc.problems]}
            failed = True
            reports.append(report)
            if not as_json:
                typer.echo(
                    f"✗ {path}: {len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''}"
                )
                for problem in exc.problems:
                    typer.echo(f"  {problem}")
            continue
        with datasets:
            (loaded,) = datasets.loaded.values()
            report["dataset"] = loaded.key
            problems = list(loaded.warnings)
            error: str | None = None
            if not offline:
                try:
                    problems += datasets.check()[loaded.key]
                except DatasetError as exc:
                    problems += exc.problems
                except ConnectError as exc:
                    error = str(exc)
        errors = [p for p in problems if p.severity == "error"]
        bad = bool(errors) or error is not None or (strict and bool(problems))
        failed |= bad
        report |= {
            "ok": not bad,
            "problems": [p.to_dict() for p in problems],
            "connection_error": error,
        }
        reports.append(report)
        if as_json:
            continue
        tables = len(loaded.dataset.tables)
        where = "file only" if offline else "file and database"
        mark = "✗" if bad else "✓"
        typer.echo(f"{mark} {path}: dataset {loaded.key}, {tables} tables ({where})")
        if error:
            typer.echo(f"  error: {error}")
        for problem in problems:
            typer.echo(f"  {problem}")
    if as_json:
        _print({"ok": not failed, "datasets": reports})
    if failed:
        raise typer.Exit(1)


# --- lawful data ----------------------------------------------------------------------------


@data_app.command("find")
def data_find(
    email: EmailOption = None,
    phone: PhoneOption = None,
    id_: IdOption = None,
    identity: IdentityOption = None,
    dataset: DatasetOption = None,
    policy: PolicyOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Rows shown per table (all with --json)")
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show what lawful would return to the subject: their rows, grouped by table."""
    ids = _identities(email, phone, id_, identity)
    with _datasets(dataset, policy, None) as datasets:
        reports = datasets.access(ids)
    if as_json:
        _print({"rows": sum(r.rows for r in reports), "datasets": [r.to_dict() for r in reports]})
        return
    for report in reports:
        _print_access(report, limit)


def _print_access(report: DatasetAccess, limit: int) -> None:
    if not report.rows:
        typer.echo(f"{report.dataset}: no rows of this subject")
        return
    typer.echo(
        f"{report.dataset}: {report.rows} rows of this subject in {len(report.tables)} tables"
    )
    for table in report.tables:
        about = f" — {table.description}" if table.description else ""
        typer.echo(f"  {table.table} ({len(table.rows)} rows){about}")
        for row in table.rows[:limit]:
            role = (
                "" if row["role"] == "owner" else f" ({row['role']}: theirs to see, not to erase)"
            )
            values = ", ".join(f"{c}={plain(v)!r}" for c, v in row["data"].items())
            typer.echo(f"    {values}{role}")
        if len(table.rows) > limit:
            typer.echo(f"    … and {len(table.rows) - limit} more (--limit N, or --json for all)")


@data_app.command("erase")
def data_erase(
    email: EmailOption = None,
    phone: PhoneOption = None,
    id_: IdOption = None,
    identity: IdentityOption = None,
    dataset: DatasetOption = None,
    policy: PolicyOption = None,
    keyring: KeyringOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would happen; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase the subject's rows as annotated: delete, anonymize, or keep with the rule."""
    ids = _identities(email, phone, id_, identity)
    with _datasets(dataset, policy, keyring) as datasets:
        reports = datasets.erase(ids, dry_run=dry_run)
    if as_json:
        _print({"dry_run": dry_run, "datasets": [r.to_dict() for r in reports]})
        return
    for report in reports:
        _print_erasure(report)


def _print_erasure(report: DatasetErasure) -> None:
    if not report.found:
        typer.echo(f"{report.dataset}: no rows of this subject (never held, or already erased)")
        return
    verb = "would change" if report.dry_run else "changed"
    if report.changed:
        typer.echo(
            f"{report.dataset}: {verb} {report.changed} of {report.found} rows"
            + (" (dry run)" if report.dry_run else "")
        )
    else:
        typer.echo(
            f"{report.dataset}: nothing to change: the rows found are already erased or kept"
        )
    for line in outcomes_lines(report.tables):
        typer.echo(f"  {line}")
    for table in report.tables:
        for reason in table.reasons:
            typer.echo(f"    {table.table}: {reason}")
        for column, why in table.kept_columns.items():
            typer.echo(f"    {table.table}.{column} kept: {why}")


@data_app.command("rectify")
def data_rectify(
    changes: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="A correction as table.column=value (dataset.table.column=value)"
        ),
    ] = None,
    email: EmailOption = None,
    phone: PhoneOption = None,
    id_: IdOption = None,
    identity: IdentityOption = None,
    dataset: DatasetOption = None,
    policy: PolicyOption = None,
    null: Annotated[
        list[str] | None, typer.Option("--null", help="Set table.column to NULL; repeatable")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Correct the subject's data; every change is validated before any is written."""
    ids = _identities(email, phone, id_, identity)
    if not changes and not null:
        _usage("say what to correct: --set table.column=value or --null table.column")
    values: dict[str, Any] = {}
    for change in changes or []:
        target, sep, value = change.partition("=")
        if not sep or not target.strip():
            _usage(
                f"--set takes table.column=value; got a value without '=' ({target.strip()[:40]!r})"
            )
        values[target.strip()] = value
    for target in null or []:
        values[target.strip()] = None
    with _datasets(dataset, policy, None) as datasets:
        try:
            reports = datasets.rectify(ids, values, dry_run=dry_run)
        except RectifyError as exc:
            _usage(str(exc))
    if as_json:
        _print({"dry_run": dry_run, "datasets": [r.to_dict() for r in reports]})
        return
    for report in reports:
        for table in report.tables:
            verb = "would update" if dry_run else "updated"
            line = f"{report.dataset}.{table.table}: {verb} {table.updated} rows ({', '.join(table.columns)})"
            if table.unchanged:
                line += f"; {table.unchanged} already had these values"
            if table.skipped_shared:
                line += f"; {table.skipped_shared} left: shared with other subjects, whose data would change too"
            typer.echo(line)


# --- drafting annotations: lawful scan, lawful dataset import-fides -----------------------


def _write_draft(text: str, output: Path | None, force: bool, what: str) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        _usage(f"{output} already exists; pass --force to overwrite it")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _refuse(f"cannot write {output}: {exc.strerror}")
    typer.echo(
        f"wrote {output} ({what}); review it, then run `lawful dataset check {output}`", err=True
    )


OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the annotation here (default: print it)"),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
UrlEnvOption = Annotated[
    str | None,
    typer.Option(
        "--url-env", help="Write the connection as this environment variable, not the URL"
    ),
]


def scan(
    url: Annotated[str, typer.Argument(help="The database URL, e.g. postgresql://user@host/db")],
    output: OutputOption = None,
    schema: Annotated[
        str | None, typer.Option("--schema", help="The schema to read (default: the default)")
    ] = None,
    url_env: UrlEnvOption = None,
    sample: Annotated[
        int, typer.Option("--sample", min=0, help="Rows read per table to recognise values")
    ] = 200,
    name: Annotated[
        str | None, typer.Option("--name", help="The dataset's name (default: the database's)")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Read a live schema and draft its annotation: identities, links, categories, actions."""
    from lawful.datasets.scan import scan_database

    try:
        text, summary = scan_database(url, schema=schema, url_env=url_env, sample=sample, name=name)
    except ConnectError as exc:
        _refuse(str(exc))
    _write_draft(text, output, force, summary)


@dataset_app.command("import-fides")
def import_fides(
    fides_file: Annotated[Path, typer.Argument(help="A Fides dataset YAML file")],
    output: OutputOption = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The database URL (without its password) to connect to"),
    ] = None,
    url_env: UrlEnvOption = None,
    fides_key: Annotated[
        str | None,
        typer.Option("--fides-key", help="The dataset to convert, when the file holds several"),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Convert a Fides dataset (collections, fields, data categories, references) to lawful's.

    With --url (or --url-env naming a variable that is set) the database is read to fit
    the annotation to it: missing keys, and masks for NOT NULL columns.
    """
    from lawful.datasets.fides import read_fides_file

    if not fides_file.exists():
        _usage(f"{fides_file}: no such file")
    if url is not None and url_env is not None:
        _usage("give the database as --url or --url-env, not both")
    try:
        conversion = read_fides_file(fides_file, url=url, url_env=url_env, dataset=fides_key)
    except DatasetError as exc:
        _print_problems(exc)
        raise typer.Exit(1) from None
    for warning in conversion.warnings:
        typer.echo(f"  {warning}", err=True)
    _write_draft(conversion.text, output, force, conversion.summary)
