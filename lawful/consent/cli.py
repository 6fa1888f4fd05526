"""`lawful consent give|withdraw|show|receipt` and `lawful decide`.

A subject is named by an identity: `email:alice@example.com`, `phone:+3725551234`,
`account:42`, `device:…`, `customer:…` (a bare address or +number works too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from lawful.consent import ConsentError, Decision, DecisionLogging, Signals, UnknownName
from lawful.engine import Engine
from lawful.options import JsonOption, KeyringOption, PolicyOption, StoreOption, open_engine
from lawful.options import print_json as _print
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.policy.jurisdictions import UnknownJurisdictionError
from lawful.policy.vocabulary import unknown
from lawful.store import StoreError
from lawful.subjects import IdentityError, KeyringError, KeyringMissing, SubjectError

consent_app = typer.Typer(help="Record and show a subject's consent.", no_args_is_help=True)

SubjectArg = Annotated[
    str, typer.Argument(help="The subject's identity, e.g. email:alice@example.com")
]
PurposeArg = Annotated[str, typer.Argument(help="A purpose of the policy")]
ChannelOption = Annotated[
    str | None, typer.Option(help="One marketing channel of the purpose, e.g. email")
]
ListOption = Annotated[str | None, typer.Option("--list", help="One marketing list of the purpose")]


@contextmanager
def _engine(
    policy: Path | None,
    store: str | None,
    keyring: Path | None,
    decision_logging: DecisionLogging | None = None,
) -> Iterator[Engine]:
    """The engine, with every user error turned into `error: …`.

    Bad input (an unknown purpose, channel or jurisdiction, an identity without its
    kind, a missing keyring file) exits 2; a store or keyring that can't be used (the
    wrong keyring for this store, an unreachable database) exits 1.
    """
    engine = open_engine(policy, store, keyring=keyring, decision_logging=decision_logging)
    try:
        yield engine
    except (
        ConsentError,
        UnknownName,
        UnknownJurisdictionError,
        IdentityError,
        SubjectError,
        KeyringMissing,
    ) as exc:
        _usage(str(exc))
    except (KeyringError, StoreError) as exc:
        _refuse(str(exc))
    finally:
        engine.close()


def _reason(decision: Decision) -> str:
    # Reasons of allowed decisions start "allowed: …"; the verdict is printed once.
    return decision.reason.removeprefix("allowed: ")


def _known_name(value: str | None, noun: str, names: Iterable[str]) -> None:
    """A channel or list the policy never mentions is a typo: bad usage, not a refusal."""
    options = sorted(set(names))
    if value is not None and value not in options:
        _usage(unknown(value, noun, options))


def _record_dict(record: Any) -> dict[str, Any]:
    return {
        "record": record.ref,
        "subject": record.subject_ref,
        "topic": str(record.topic),
        "key": record.key,
        "scope": record.scope or None,
        "state": str(record.state),
        "method": record.method,
        "at": record.at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "policy_version": record.policy_version,
    }


@consent_app.command("give")
def give(
    subject: SubjectArg,
    purpose: PurposeArg,
    channel: ChannelOption = None,
    list_name: ListOption = None,
    method: Annotated[
        str,
        typer.Option(help="How it was collected: form, checkbox, banner, import, api, written…"),
    ] = "api",
    notice: Annotated[
        Path | None, typer.Option(help="The notice text shown (its hash is kept as evidence)")
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="The language of the notice, e.g. en")
    ] = None,
    parent: Annotated[
        str | None, typer.Option(help="A parent's identity, consenting for a child")
    ] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record consent given to a purpose (or one channel or list of it)."""
    notice_text = None
    if notice is not None:
        try:
            notice_text = notice.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _usage(f"--notice {notice}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
    with _engine(policy, store, keyring) as engine:
        record = engine.consent.give(
            subject,
            purpose,
            channel=channel,
            list_name=list_name,
            method=method,
            notice_text=notice_text,
            language=language,
            parent=parent,
        )
    if as_json:
        _print(_record_dict(record))
    else:
        until = f", valid until {record.expires_at:%Y-%m-%d}" if record.expires_at else ""
        typer.echo(f"consent {record.state} to {purpose}{until} (record {record.ref})")


@consent_app.command("withdraw")
def withdraw(
    subject: SubjectArg,
    purpose: PurposeArg,
    channel: ChannelOption = None,
    list_name: ListOption = None,
    method: Annotated[str, typer.Option(help="How it was withdrawn")] = "api",
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record consent withdrawn; the history is kept."""
    with _engine(policy, store, keyring) as engine:
        record = engine.consent.withdraw(
            subject, purpose, channel=channel, list_name=list_name, method=method
        )
    if as_json:
        _print(_record_dict(record))
    else:
        typer.echo(f"consent withdrawn from {purpose} (record {record.ref})")


@consent_app.command("show")
def show(
    subject: SubjectArg,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """A subject's current choices, what each purpose may do now, and the history."""
    # Showing what each purpose may do is not a use of the data: no decision events.
    with _engine(policy, store, keyring, DecisionLogging(mode="off")) as engine:
        history = engine.consent.history(subject)
        decisions = [engine.decide(subject, p) for p in engine.policy.purposes]
    if as_json:
        _print(
            {
                "known": bool(history),
                "decisions": [d.to_dict() for d in decisions],
                "history": [_record_dict(r) for r in history],
            }
        )
        return
    if not history:
        typer.echo("no choices recorded for this subject")
    typer.echo("purposes:")
    for d in decisions:
        mark = "✓" if d.allowed else "✗"
        typer.echo(f"  {mark} {d.purpose}: {_reason(d)}")
    if history:
        typer.echo("history:")
        for r in history:
            scope = f" [{r.scope}]" if r.scope else ""
            typer.echo(
                f"  {r.at:%Y-%m-%d %H:%M:%S}  {r.topic} {r.key}{scope}: {r.state} via {r.method}  ({r.ref})"
            )


@consent_app.command("receipt")
def receipt(
    record: Annotated[str, typer.Argument(help="The record's id, as `consent give` printed it")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
) -> None:
    """Print the ISO/IEC TS 27560 consent record (JSON) of one ledger record."""
    with _engine(policy, store, keyring) as engine:
        _print(engine.consent.receipt(record))


def decide(
    subject: SubjectArg,
    purpose: PurposeArg,
    channel: ChannelOption = None,
    list_name: ListOption = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="The subject's jurisdiction, e.g. eu, us-ca")
    ] = None,
    recipient: Annotated[str | None, typer.Option(help="A recipient the data would go to")] = None,
    gpc: Annotated[
        bool, typer.Option("--gpc", help="The request carried Global Privacy Control")
    ] = False,
    dnt: Annotated[bool, typer.Option("--dnt", help="The request carried Do Not Track")] = False,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """May PURPOSE use SUBJECT's data now? Exit 0 if allowed, 1 if refused."""
    # An operator's question is always worth its audit event (not the service's sample).
    with _engine(policy, store, keyring, DecisionLogging(mode="all")) as engine:
        purposes = engine.policy.purposes.values()
        _known_name(
            channel,
            "a marketing channel of the policy",
            (str(c) for p in purposes for c in p.channels),
        )
        _known_name(list_name, "a marketing list of the policy", engine.policy.marketing.lists)
        decision = engine.decide(
            subject,
            purpose,
            channel=channel,
            list_name=list_name,
            jurisdiction=jurisdiction,
            recipient=recipient,
            signals=Signals(gpc=gpc, dnt=dnt),
        )
    if as_json:
        _print(decision.to_dict())
    else:
        typer.echo(
            f"{'allowed' if decision.allowed else 'refused'}: {_reason(decision)} [{decision.rule}]"
        )
    if not decision.allowed:
        raise typer.Exit(1)
