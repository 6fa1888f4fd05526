"""`lawful disclose`, `lawful disclosures`, `lawful recipients`, `lawful transfer-check`.

The four are top-level commands: `disclosure_app` holds them for tests and for the
`lawful` command, which registers each function by name (`app.command("disclose")(disclose)`).
A subject is named by an identity: `email:alice@example.com`, `account:42`, ... Exit
codes: 0 allowed, 1 refused (the reason printed) or the store unusable, 2 bad usage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from lawful.consent import ConsentError, DecisionLogging, UnknownName
from lawful.disclosure.notify import NoticeConfigError
from lawful.disclosure.service import DisclosureError, Disclosures
from lawful.disclosure.transfers import TransferDecision
from lawful.options import JsonOption, KeyringOption, PolicyOption, StoreOption, open_engine
from lawful.options import print_json as _print
from lawful.options import refuse as _refuse
from lawful.options import usage as _usage
from lawful.policy.jurisdictions import UnknownJurisdictionError
from lawful.store import StoreError
from lawful.subjects import IdentityError, KeyringError, KeyringMissing, SubjectError

disclosure_app = typer.Typer(
    help="Disclosures to recipients and transfers abroad.", no_args_is_help=True
)

JurisdictionOption = Annotated[
    str | None, typer.Option(help="The subject's jurisdiction, e.g. eu, us-ca, cn")
]


@contextmanager
def _disclosures(
    policy: Path | None, store: str | None, keyring: Path | None
) -> Iterator[Disclosures]:
    """The disclosure capability of the engine, with user errors turned into `error: …`."""
    # Disclosures write their own events; the decisions under them need none.
    engine = open_engine(policy, store, keyring=keyring, decision_logging=DecisionLogging("off"))
    try:
        found = getattr(engine, "disclosures", None)
        yield (
            found
            if isinstance(found, Disclosures)
            else Disclosures(engine.store, engine.policy, engine.keyring, engine.consent)
        )
    except (
        DisclosureError,
        NoticeConfigError,
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


@disclosure_app.command("disclose")
def disclose(
    subject: Annotated[str, typer.Argument(help="The subject's identity, e.g. email:a@b.com")],
    to: Annotated[str, typer.Option("--to", help="The recipient, as the policy names it")],
    purpose: Annotated[str, typer.Option(help="The purpose the data is disclosed for")],
    category: Annotated[
        list[str], typer.Option(help="A data category disclosed (repeat for several)")
    ],
    jurisdiction: JurisdictionOption = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a disclosure and log it when allowed. Exit 1, with the reason, when refused."""
    with _disclosures(policy, store, keyring) as disclosures:
        decision = disclosures.disclose(subject, to, category, purpose, jurisdiction=jurisdiction)
    if as_json:
        _print(decision.to_dict())
    elif decision.allowed:
        typer.echo(f"allowed: {decision.reason} (disclosure {decision.ref})")
        if decision.deidentify:
            typer.echo("de-identify before sending: " + ", ".join(decision.categories))
    else:
        typer.echo(f"refused: {decision.reason} [{decision.rule}]")
    if not decision.allowed:
        raise typer.Exit(1)


@disclosure_app.command("disclosures")
def disclosures_(
    subject: Annotated[
        str, typer.Option("--subject", help="The subject's identity, e.g. email:a@b.com")
    ],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """The disclosures of a subject's data, oldest first (GDPR Art. 15(1)(c))."""
    with _disclosures(policy, store, keyring) as disclosures:
        found = disclosures.disclosures_of(subject)
    if as_json:
        _print([d.to_dict() for d in found])
        return
    if not found:
        typer.echo("no disclosures logged for this subject")
    for d in found:
        via = f" under {d.safeguard}" if d.safeguard else ""
        typer.echo(
            f"{d.at:%Y-%m-%d %H:%M:%S}  {d.recipient} ({d.country}{via}) for {d.purpose}: "
            f"{', '.join(d.categories)}  [{d.ref}]"
        )


@disclosure_app.command("recipients")
def recipients(
    jurisdiction: JurisdictionOption = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """The recipients registry: what each may receive, for what, and its transfer status."""
    with _disclosures(policy, store, keyring) as disclosures:
        rows = [
            (view, disclosures.check_transfer(key, jurisdiction=jurisdiction))
            for key, view in disclosures.recipients.items()
        ]
    if as_json:
        _print([{**view.to_dict(), "transfer": t.to_dict()} for view, t in rows])
        return
    for view, transfer in rows:
        flags = [f for f, on in (("sale", view.sale), ("share", view.share)) if on]
        extra = f" [{', '.join(flags)}]" if flags else ""
        typer.echo(f"{view.key} — {view.role} in {', '.join(view.countries)}{extra}")
        typer.echo(f"  transfer: {_status(transfer)}")
        for purpose, cats in view.purposes.items():
            typer.echo(f"  {purpose}: {', '.join(cats)}")


@disclosure_app.command("transfer-check")
def transfer_check(
    recipient: Annotated[str, typer.Argument(help="The recipient, as the policy names it")],
    jurisdiction: JurisdictionOption = None,
    subject: Annotated[
        str | None, typer.Option(help="Check for this subject (their law and consent)")
    ] = None,
    country: Annotated[
        str | None, typer.Option(help="One of the recipient's countries, for a list or '*'")
    ] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """May data go to RECIPIENT's country, and under what? Exit 1 when not."""
    with _disclosures(policy, store, keyring) as disclosures:
        transfer = disclosures.check_transfer(
            recipient, subject=subject, jurisdiction=jurisdiction, country=country
        )
    if as_json:
        _print(transfer.to_dict())
    else:
        typer.echo(_status(transfer))
        for leg in transfer.legs:
            mark = "✓" if leg.allowed else "✗"
            where = "anywhere" if leg.country == "*" else leg.country
            typer.echo(f"  {mark} {leg.jurisdiction} → {where}: {leg.reason}")
    if not transfer.allowed:
        raise typer.Exit(1)


def _status(transfer: TransferDecision) -> str:
    if transfer.allowed:
        via = f" ({', '.join(transfer.safeguards)})" if transfer.safeguards else ""
        deid = "; de-identify first" if transfer.deidentify else ""
        return f"allowed{via}: {transfer.reason}{deid}"
    if transfer.rule == "transfer.needs_subject_consent":
        return f"per subject: {transfer.reason}"
    return f"refused: {transfer.reason} [{transfer.rule}]"
