"""The `lawful` command.

Conventions every command follows: the policy from `--policy FILE` (default
./policy.yaml, or $LAWFUL_POLICY), the store from `--store URL` (default
sqlite:///./lawful.db, or $LAWFUL_STORE), human-readable output by default and `--json`
for machines; exit 0 on success, 1 on a finding or refusal to act on, 2 on bad usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from lawful import __version__
from lawful.audit import AuditLog
from lawful.engine import Engine, policy_path, store_url
from lawful.options import JsonOption, KeyringOption, PolicyOption, StoreOption, open_engine
from lawful.options import print_json as _print_json
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.policy import LoadedPolicy, PolicyError, diff_policies, load_policy, starter_policy
from lawful.policy.summary import render_summary, summary
from lawful.store import StoreError, open_store

app = typer.Typer(
    help="lawful: a privacy policy turned into running code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(
    help="Policy versions and what changed between them.", no_args_is_help=True
)
store_app = typer.Typer(help="The engine's own database.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(store_app, name="store")
app.add_typer(audit_app, name="audit")


def _add_capabilities() -> None:
    # Imported here: the capability CLIs use this module's conventions (_open_engine, ...).
    from lawful.api.cli import keys_app, serve
    from lawful.children.cli import children_app
    from lawful.consent.cli import consent_app, decide
    from lawful.datasets.cli import data_app, dataset_app, scan
    from lawful.disclosure.cli import disclose, disclosures_, recipients, transfer_check
    from lawful.incidents.cli import incident_app
    from lawful.notice.cli import audit_policy_cmd, notice, policy_publish, ropa
    from lawful.requests.cli import request_app
    from lawful.retention.cli import hold_app, sweep
    from lawful.subjects.cli import keyring_app

    app.add_typer(consent_app, name="consent")
    app.add_typer(keyring_app, name="keyring")
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(data_app, name="data")
    app.add_typer(request_app, name="request")
    app.add_typer(incident_app, name="incident")
    app.add_typer(children_app, name="children")
    app.add_typer(hold_app, name="hold")
    app.command("sweep")(sweep)
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.command("notice")(notice)
    app.command("ropa")(ropa)
    app.command("audit-policy")(audit_policy_cmd)
    policy_app.command("publish")(policy_publish)
    app.command("decide")(decide)
    app.command("scan")(scan)
    app.command("disclose")(disclose)
    app.command("disclosures")(disclosures_)
    app.command("recipients")(recipients)
    app.command("transfer-check")(transfer_check)


def _existing(path: Path) -> Path:
    if not path.exists():
        _usage(f"{path}: no such file (create a policy with `lawful init {path}`)")
    return path


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lawful {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """lawful: a privacy policy turned into running code."""


@app.command()
def demo(
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", "-p", help="The policy to run under (default: the Seestar Store's)"
        ),
    ] = None,
    customers: Annotated[int, typer.Option(help="The sample shop's size")] = 1_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Then serve the privacy center, the admin console and the API"
        ),
    ] = False,
    folder: Annotated[
        Path | None,
        typer.Option(help="Keep the shop and the store here (default: a temporary folder)"),
    ] = None,
    host: Annotated[str, typer.Option(help="With --serve: the address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="With --serve: the port")] = 8000,
) -> None:
    """Run lawful on the sample shop: consent, an access and an erasure request, a
    retention sweep, the audit chain verified; told as it goes. With --serve, then
    serve it all on 127.0.0.1 and print the addresses."""
    import dataclasses

    from lawful.demo import DEFAULT_POLICY, DemoError, run_demo, serve_demo

    path = policy or DEFAULT_POLICY
    if not path.exists():
        _usage(f"{path}: no such policy file")
    if customers < 10:
        _usage(f"--customers {customers}: the demo needs at least 10 customers")
    _load_or_exit(path)  # a bad policy is reported as `lawful check` reports it
    if serve and folder is None:
        folder = Path("lawful-demo")
    if folder is not None:
        if folder.exists() and any(folder.iterdir()):
            _usage(f"{folder} is not empty: give an empty or new --folder for the demo")
        folder.mkdir(parents=True, exist_ok=True)
    try:
        result = run_demo(
            path,
            customers=customers,
            folder=folder,
            say=(lambda _: None) if as_json else typer.echo,
        )
    except DemoError as exc:
        _refuse(str(exc))
    if as_json:
        _print_json(dataclasses.asdict(result))
    if not result.audit_ok:
        raise typer.Exit(1)
    if serve and folder is not None:
        serve_demo(folder, path, host=host, port=port, say=typer.echo)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter policy.")] = Path(
        "policy.yaml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter policy to edit."""
    if path.exists() and not force:
        _usage(f"{path} already exists; pass --force to overwrite it")
    starter = starter_policy()
    try:
        path.write_text(starter, encoding="utf-8")
    except OSError as exc:
        _refuse(f"cannot write {path}: {exc.strerror}")
    typer.echo(f"wrote {path}; edit it, then run `lawful check {path}`")


@app.command()
def check(
    policies: Annotated[
        list[Path] | None,
        typer.Argument(help="Policy files [default: --policy, $LAWFUL_POLICY or ./policy.yaml]"),
    ] = None,
    policy: PolicyOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate policies and print a short summary of each; exit 1 on any error."""
    paths = list(policies or []) or [policy_path(policy)]
    for path in paths:
        _existing(path)
    failed = False
    reports = []
    for path in paths:
        report: dict[str, Any] = {"file": str(path)}
        try:
            loaded = load_policy(path)
        except PolicyError as exc:
            failed = True
            report |= {
                "ok": False,
                "summary": None,
                "problems": [p.to_dict() for p in exc.problems],
            }
            if not as_json:
                typer.echo(
                    f"✗ {path}: {len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''}"
                )
                for problem in exc.problems:
                    typer.echo(f"  {problem}")
        else:
            failed |= strict and bool(loaded.warnings)
            report |= {
                "ok": not (strict and loaded.warnings),
                "summary": summary(loaded.policy),
                "problems": [p.to_dict() for p in loaded.warnings],
            }
            if not as_json:
                typer.echo(f"✓ {path}")
                for line in render_summary(loaded.policy):
                    typer.echo(f"  {line}")
                for problem in loaded.warnings:
                    typer.echo(f"  {problem}")
        reports.append(report)
    if as_json:
        _print_json({"ok": not failed, "policies": reports})
    if failed:
        raise typer.Exit(1)


def _load_or_exit(path: Path) -> LoadedPolicy:
    try:
        return load_policy(_existing(path))
    except PolicyError as exc:
        typer.echo(f"✗ {path}: {len(exc.errors)} error(s)", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None


@policy_app.command("diff")
def policy_diff(
    old: Annotated[Path, typer.Argument(help="The earlier policy file.")],
    new: Annotated[Path, typer.Argument(help="The later policy file.")],
    as_json: JsonOption = False,
) -> None:
    """List what changed between two policy files and flag the material changes."""
    diff = diff_policies(_load_or_exit(old).policy, _load_or_exit(new).policy)
    if as_json:
        _print_json(diff.to_dict())
        return
    if not diff.changes:
        typer.echo("no changes in what the policy says")
        return
    for change in diff.changes:
        mark = "MATERIAL " if change.material else "         "
        why = f"  ({change.reason})" if change.material else ""
        typer.echo(f"{mark}{change.describe()}{why}")
    typer.echo(
        f"\n{len(diff.changes)} change(s), {len(diff.material)} material"
        + (f"; consent to renew: {', '.join(diff.renew_consent)}" if diff.renew_consent else "")
        + (
            f"; consent to collect: {', '.join(diff.collect_consent)}"
            if diff.collect_consent
            else ""
        )
    )


def _open_engine(policy: Path | None, store: str | None) -> Engine:
    return open_engine(policy, store)


@policy_app.command("load")
def policy_load(
    policy: PolicyOption = None, store: StoreOption = None, as_json: JsonOption = False
) -> None:
    """Record the policy in the store; a changed policy becomes a new version."""
    with _open_engine(policy, store) as engine:
        rec = engine.recorded
        if as_json:
            _print_json(
                {
                    "controller": engine.policy.key,
                    "version": rec.version.number,
                    "created": rec.created,
                    "material": rec.version.material,
                    "diff": rec.diff.to_dict() if rec.diff else None,
                }
            )
            return
        name = engine.policy.key
        if not rec.created:
            typer.echo(f"{name}: unchanged, still version {rec.version.number}")
            return
        typer.echo(f"{name}: recorded version {rec.version.number}")
        if rec.diff is not None:
            typer.echo(f"  {len(rec.diff.changes)} change(s), {len(rec.diff.material)} material")
            if rec.diff.renew_consent:
                typer.echo(f"  consent to renew: {', '.join(rec.diff.renew_consent)}")
            if rec.diff.collect_consent:
                typer.echo(f"  consent to collect: {', '.join(rec.diff.collect_consent)}")


@policy_app.command("versions")
def policy_versions(
    policy: PolicyOption = None, store: StoreOption = None, as_json: JsonOption = False
) -> None:
    """List the stored versions of the policy's controller (without recording this one)."""
    key = _load_or_exit(_existing(policy_path(policy))).policy.key
    try:
        opened = open_store(store_url(store))
    except StoreError as exc:
        _refuse(str(exc))
    with opened:
        versions = opened.policy_versions(key)
        if as_json:
            _print_json(
                [
                    {
                        "number": v.number,
                        "label": v.label,
                        "effective": v.effective_date,
                        "loaded_at": v.loaded_at,
                        "material": v.material,
                        "hash": v.content_hash,
                    }
                    for v in versions
                ]
            )
            return
        for v in versions:
            flags = " material" if v.material else ""
            typer.echo(
                f"{v.number:>3}  {v.loaded_at:%Y-%m-%d %H:%M}  {v.label or '-'}  "
                f"effective {v.effective_date or '-'}  {v.content_hash[:12]}{flags}"
            )


@store_app.command("upgrade")
def store_upgrade(store: StoreOption = None) -> None:
    """Create or migrate the store's tables to this lawful's version."""
    try:
        opened = open_store(store_url(store), upgrade=True)
    except StoreError as exc:
        _refuse(str(exc))
    typer.echo(f"{opened.url}: at revision {opened.current_revision()}")
    opened.close()


@store_app.command("status")
def store_status(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Show the store's revision and whether it needs an upgrade."""
    try:
        opened = open_store(store_url(store), upgrade=False)
    except StoreError as exc:
        _refuse(str(exc))
    current, head = opened.current_revision(), opened.head_revision()
    opened.close()
    if as_json:
        _print_json(
            {"url": opened.url, "revision": current, "head": head, "current": current == head}
        )
    else:
        state = (
            "up to date" if current == head else f"needs `lawful store upgrade` (head is {head})"
        )
        typer.echo(f"{opened.url}: revision {current or 'none'}, {state}")
    if current != head:
        raise typer.Exit(1)


def _audit_log(policy: Path | None, store: str | None) -> AuditLog:
    key = _load_or_exit(_existing(policy_path(policy))).policy.key
    try:
        return AuditLog(open_store(store_url(store)), key)
    except StoreError as exc:
        _refuse(str(exc))


@audit_app.command("verify")
def audit_verify(
    policy: PolicyOption = None, store: StoreOption = None, as_json: JsonOption = False
) -> None:
    """Recompute the controller's hash chain; exit 1 at the first broken link."""
    log = _audit_log(policy, store)
    with log.store:
        result = log.verify()
    if as_json:
        broken = (
            {"seq": result.broken.seq, "reason": result.broken.reason} if result.broken else None
        )
        _print_json(
            {
                "controller": result.controller,
                "ok": result.ok,
                "checked": result.checked,
                "head": result.head_seq,
                "broken": broken,
            }
        )
    elif result.ok:
        typer.echo(f"{result.controller}: audit chain intact, {result.checked} events verified")
    else:
        assert result.broken is not None
        typer.echo(
            f"{result.controller}: audit chain BROKEN at event {result.broken.seq}: {result.broken.reason} "
            f"({result.checked} events before it verified)"
        )
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    policy: PolicyOption = None,
    store: StoreOption = None,
    subject: Annotated[
        str | None,
        typer.Option(
            help="Only events of this subject: an identity (email:alice@example.com, a bare "
            "email or +phone number) or its audit pseudonym (64 hex digits)."
        ),
    ] = None,
    keyring: KeyringOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events, newest last.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the controller's audit events, oldest first."""
    import re

    from lawful.consent.ledger import merged_refs
    from lawful.subjects import (
        Identity,
        IdentityError,
        KeyringError,
        KeyringMissing,
        load_keyring,
        registry,
    )

    identity: Identity | None = None
    if subject is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", subject):
        try:
            identity = Identity.parse(subject)
        except IdentityError as exc:
            _usage(f"--subject: {exc}; or give the subject's audit pseudonym (64 hex digits)")
    log = _audit_log(policy, store)
    with log.store:
        if subject is None:
            events = log.events(last=limit)
        else:
            pseudonyms = [subject.lower()]
            if identity is not None:
                try:
                    ring = load_keyring(keyring)
                    # Read only: the connection's transaction is rolled back on exit, so
                    # looking up an identity records nothing (not even the keyring check).
                    with log.store.engine.connect() as conn:
                        controller_id = log._controller_id(conn)
                        found = None
                        if controller_id is not None:
                            ctx = registry.Context(controller_id, log.controller, ring)
                            registry.check_keyring(conn, ctx)
                            found = registry.find(conn, ctx, identity)
                        # The subject and the subjects merged into it; an unknown identity
                        # has no events, exactly like a known one with none.
                        refs = merged_refs(conn, found.id, found.ref).values() if found else ()
                        pseudonyms = [ring.subject_hash(ref) for ref in refs]
                except KeyringMissing as exc:
                    _usage(str(exc))
                except KeyringError as exc:
                    _refuse(str(exc))
            events = sorted(
                (e for p in pseudonyms for e in log.events(subject=p, last=limit)),
                key=lambda e: e.seq,
            )[-limit:]
    if as_json:
        _print_json([e.to_dict() for e in events])
        return
    if not events:
        typer.echo("no events" + (" for this subject" if subject is not None else ""))
    for e in events:
        who = f" subject {e.subject[:12]}…" if e.subject else ""
        details = json.dumps(e.data, ensure_ascii=False, sort_keys=True) if e.data else ""
        typer.echo(f"{e.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.kind}{who}  {details}")


_add_capabilities()


def main() -> None:
    app(prog_name="lawful")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
