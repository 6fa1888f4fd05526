"""`lawful notice`, `lawful ropa`, `lawful audit-policy` and `lawful policy publish`.

The first three are top-level commands: `notice_app` holds them for tests, and the
`lawful` command registers each function by name (`app.command("notice")(notice)`);
`policy_publish` goes under `lawful policy publish`. Output goes to stdout, or to the
file named by `--output`. Exit codes: 0 done, 1 findings with an error (audit-policy)
or a file that does not load, 2 bad usage.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from lawful.datasets.load import DatasetError, LoadedDataset, load_dataset
from lawful.engine import policy_path, store_url
from lawful.notice.catalog import UnknownLanguage
from lawful.notice.document import NoticeError
from lawful.notice.lint import DEFAULT_LAST_REQUESTS, LintReport
from lawful.notice.service import Notices
from lawful.options import JsonOption, PolicyOption, StoreOption
from lawful.options import print_json as _print
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.policy import LoadedPolicy
from lawful.store import Store, StoreError, open_store

notice_app = typer.Typer(
    help="The policy as a document: notice, records of processing, consistency check.",
    no_args_is_help=True,
)


class NoticeFormat(StrEnum):
    md = "md"
    html = "html"


class RopaFormat(StrEnum):
    json = "json"
    csv = "csv"
    html = "html"


OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
]
DatasetOption = Annotated[
    list[Path] | None,
    typer.Option("--dataset", "-d", help="A dataset annotation file (repeat for several)."),
]
LangOption = Annotated[str, typer.Option("--lang", help="Language of the fixed text: en, zh.")]


def _policy(policy: Path | None) -> LoadedPolicy:
    from lawful.cli import _existing, _load_or_exit

    return _load_or_exit(_existing(policy_path(policy)))


def _datasets(paths: list[Path] | None) -> list[LoadedDataset]:
    """Dataset files loaded on their own: checking them against the policy is our job."""
    loaded, problems = [], []
    for path in paths or []:
        if not path.exists():
            _usage(f"{path}: no such dataset file (draft one with `lawful scan DB_URL -o {path}`)")
        try:
            loaded.append(load_dataset(path))
        except DatasetError as exc:
            problems.extend(exc.problems)
    if problems:
        typer.echo(f"✗ {len(problems)} problem(s) in the dataset files:", err=True)
        for problem in problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1)
    return loaded


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _refuse(f"cannot write {output}: {exc.strerror}")
    typer.echo(f"wrote {output}", err=True)


@notice_app.command("notice")
def notice(
    policy: PolicyOption = None,
    format: Annotated[
        NoticeFormat, typer.Option("--format", "-f", help="md or html.")
    ] = NoticeFormat.md,
    jurisdiction: Annotated[
        str | None,
        typer.Option(help="Only for readers under this law (eu, uk, us-ca, cn, ...); default all."),
    ] = None,
    lang: LangOption = "en",
    output: OutputOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render the privacy notice from the policy (Markdown or accessible, printable HTML)."""
    loaded = _policy(policy)
    notices = Notices(loaded.policy)
    try:
        doc = notices.document(jurisdiction=jurisdiction, lang=lang)
    except (NoticeError, UnknownLanguage) as exc:
        _usage(str(exc))
    if as_json:
        _print(doc.to_dict())
        return
    _write(notices.render(doc, format.value), output)
    if doc.missing:
        typer.echo(
            f"note: {len(doc.missing)} text(s) have no '{doc.lang}' translation and are shown in English",
            err=True,
        )


@notice_app.command("ropa")
def ropa(
    policy: PolicyOption = None,
    format: Annotated[
        RopaFormat, typer.Option("--format", "-f", help="json, csv or html.")
    ] = RopaFormat.json,
    dataset: DatasetOption = None,
    output: OutputOption = None,
) -> None:
    """Records of processing activities (GDPR Art. 30(1) and 30(2)), one per purpose."""
    loaded = _policy(policy)
    sets = _datasets(dataset)
    _write(Notices(loaded.policy, datasets=sets).ropa(format.value), output)


def _store_for_audit(store: str | None) -> Store | None:
    """The store when one is named (--store, $LAWFUL_STORE) or ./lawful.db exists."""
    if store is None and not os.environ.get("LAWFUL_STORE") and not Path("lawful.db").exists():
        return None
    try:
        return open_store(store_url(store))
    except StoreError as exc:
        _refuse(str(exc))


def _show(report: LintReport) -> None:
    for finding in report.findings:
        typer.echo(f"{finding.severity.upper():7} {finding.check}  {finding.place}")
        typer.echo(f"        {finding.message}")
        if finding.fix:
            typer.echo(f"        fix: {finding.fix}")
    skipped = [
        c
        for c in ("categories", "retention", "consent", "disclosures", "deadlines")
        if c not in report.checked
    ]
    typer.echo(
        f"\n{len(report.errors)} error(s), {len(report.warnings)} warning(s), "
        f"{len(report.findings) - len(report.errors) - len(report.warnings)} note(s)"
        + (f"; not checked (no dataset or store given): {', '.join(skipped)}" if skipped else "")
    )


@notice_app.command("audit-policy")
def audit_policy_cmd(
    policy: PolicyOption = None,
    dataset: DatasetOption = None,
    store: StoreOption = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not read the datasets' databases.")
    ] = False,
    last: Annotated[
        int, typer.Option("--last", min=1, help="How many recent requests to check deadlines of.")
    ] = DEFAULT_LAST_REQUESTS,
    as_json: JsonOption = False,
) -> None:
    """Check that the policy's promises match the data and the records; exit 1 on an error."""
    loaded = _policy(policy)
    sets = _datasets(dataset)
    opened = _store_for_audit(store)
    try:
        report = Notices(loaded.policy, store=opened, datasets=sets).audit(
            live=not offline, last_requests=last
        )
    finally:
        if opened is not None:
            opened.close()
    if as_json:
        _print(report.to_dict())
    else:
        _show(report)
    if not report.ok:
        raise typer.Exit(1)


def policy_publish(
    policy: PolicyOption = None,
    store: StoreOption = None,
    format: Annotated[
        NoticeFormat, typer.Option("--format", "-f", help="Notice of change as md or html.")
    ] = NoticeFormat.md,
    lang: LangOption = "en",
    output: OutputOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record the policy as a new version; print the notice of change and consents to renew."""
    loaded = _policy(policy)
    try:
        from lawful.notice.catalog import check_language

        check_language(lang)
    except UnknownLanguage as exc:
        _usage(str(exc))
    try:
        opened = open_store(store_url(store))
    except StoreError as exc:
        _refuse(str(exc))
    with opened:
        publication = Notices(loaded.policy, store=opened).publish(loaded)
    if as_json:
        data = publication.to_dict()
        data["notice"] = publication.notice(format.value, lang) if publication.created else None
        _print(data)
        return
    key = loaded.policy.key
    if not publication.created:
        typer.echo(
            f"{key}: unchanged, still version {publication.version.number}; nothing to announce"
        )
        return
    material = " (material changes)" if publication.material else ""
    typer.echo(f"{key}: recorded version {publication.version.number}{material}", err=True)
    for renewal in publication.renewals:
        typer.echo(
            f"  consent to renew: {renewal.purpose} ({renewal.subjects} subject(s) hold it)",
            err=True,
        )
    for purpose in publication.collect:
        typer.echo(f"  consent to collect (new): {purpose}", err=True)
    _write(publication.notice(format.value, lang), output)
