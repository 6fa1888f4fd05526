"""`lawful request submit|verify|run|show|list|approve|extend|clarify|clarified|charge|fee-paid|deny|withdraw|receipt`.

Requests run against the datasets named with `--dataset FILE` (repeatable; default:
datasets/*.yaml when there are any). Messages to people (codes, outcomes) go to the
sender configured by the environment: $LAWFUL_SMTP_URL, else files in $LAWFUL_MAIL_DIR,
else nowhere but the store's queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from lawful.engine import Engine
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
from lawful.requests.deadlines import DeadlineError, parse_window
from lawful.requests.refusals import RefusalError
from lawful.requests.service import RequestError, RequestView
from lawful.requests.verify import OnBehalf, OnBehalfError
from lawful.store import StoreError
from lawful.subjects import Identity, IdentityError, KeyringError, KeyringMissing

request_app = typer.Typer(
    help="Data-subject requests: submit, verify, run, follow.", no_args_is_help=True
)

RefArg = Annotated[str, typer.Argument(help="The request's reference (from submit or list)")]


@contextmanager
def _engine(
    policy: Path | None, store: str | None, keyring: Path | None, datasets: list[Path] | None
) -> Iterator[Engine]:
    from lawful.datasets import DatasetError
    from lawful.datasets.service import ConnectError

    engine = open_engine(
        policy, store, keyring=keyring, datasets=dataset_files(datasets), messages=True
    )
    try:
        yield engine
    except (
        RequestError,
        IdentityError,
        DeadlineError,
        RefusalError,
        OnBehalfError,  # e.g. an agent under a policy that accepts none
        KeyringMissing,
    ) as exc:
        _usage(str(exc))
    except (KeyringError, StoreError, ConnectError) as exc:
        _refuse(str(exc))
    except DatasetError as exc:
        _refuse("; ".join(str(p) for p in exc.problems))
    finally:
        engine.close()


def _show(view: RequestView, as_json: bool) -> None:
    if as_json:
        _print(view.to_dict())
        return
    typer.echo(f"request {view.ref}: {view.kind}, {view.state}")
    typer.echo(f"  {view.status}")
    typer.echo(
        f"  received {view.received_at:%Y-%m-%d %H:%M} UTC, due {view.due_at:%Y-%m-%d}"
        + (" (extended)" if view.extended else "")
        + (" — OVERDUE" if view.overdue else "")
    )
    if view.fee:
        paid = f", paid {view.fee['paid_at'][:10]}" if view.fee.get("paid_at") else ""
        amount = view.fee.get("amount") or "amount not asked yet"
        typer.echo(f"  fee ({view.fee['ground']}): {amount}{paid}")
    if view.refusal:
        typer.echo(f"  refused ({view.refusal['rule']}): {view.refusal['text']}")
    for step in view.steps:
        typer.echo(f"  step {step['seq']} {step['name']}: {step['state']}")


def _on_behalf(
    role: str | None, actor: str | None, proof: str | None, document: Path | None
) -> OnBehalf | None:
    """The `--on-behalf`, `--actor`, `--proof` and `--document` options as an OnBehalf
    (None when none is given); anything wrong or missing exits 2 and says what."""
    given = {"--on-behalf": role, "--actor": actor, "--proof": proof}
    missing = [name for name, value in given.items() if value is None]
    if len(missing) == len(given):
        if document is not None:
            _usage(
                "--document is the proof of someone acting for the person: "
                "give it with --on-behalf, --actor and --proof"
            )
        return None
    if missing:
        _usage(
            "a request made for someone else needs --on-behalf (agent or parent), --actor "
            f"and --proof together: {' and '.join(missing)} missing"
        )
    assert role is not None and actor is not None and proof is not None
    try:
        who = Identity.parse(actor)
    except IdentityError as exc:
        _usage(f"--actor: {exc}")  # the message never repeats the identity
    digest = None
    if document is not None:
        try:
            digest = OnBehalf.document_hash(document.read_bytes())
        except FileNotFoundError:
            _usage(f"--document {document}: no such file")
        except OSError as exc:
            _usage(f"--document {document}: cannot be read ({exc.strerror or exc})")
    try:
        return OnBehalf(role, who, proof, digest)  # type: ignore[arg-type]  # OnBehalf checks it
    except OnBehalfError as exc:
        _usage(str(exc))


@request_app.command("submit")
def submit(
    kind: Annotated[
        str, typer.Argument(help="access, erasure, rectification, ... (the policy's kinds)")
    ],
    email: Annotated[str | None, typer.Option(help="The person's email")] = None,
    phone: Annotated[str | None, typer.Option(help="The person's phone number")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="eu, uk, us-ca, cn, ...")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="A parameter NAME=JSON, e.g. purposes='[\"analytics\"]'; repeatable"),
    ] = None,
    assertion: Annotated[
        str | None, typer.Option(help="A signed-in assertion from your app")
    ] = None,
    on_behalf: Annotated[
        str | None,
        typer.Option(
            "--on-behalf",
            metavar="ROLE",
            help="Someone asks for the person: agent (an authorised agent) or parent",
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            metavar="IDENTITY",
            help="Who asks for the person, e.g. email:agent@firm.example (stored as a keyed hash)",
        ),
    ] = None,
    proof: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help="What they showed, e.g. 'signed permission', 'birth certificate'",
        ),
    ] = None,
    document: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="The document they showed: only its SHA-256 is recorded",
        ),
    ] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    dataset: DatasetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take a request; a code goes to the email or phone given unless an assertion vouches.

    For a request made by an authorised agent or a parent, give --on-behalf, --actor and
    --proof (and --document): the person is still verified, as for their own request."""
    if bool(email) == bool(phone):
        _usage("name the person with exactly one of --email or --phone")
    acting = _on_behalf(on_behalf, actor, proof, document)
    identity = f"email:{email}" if email else f"phone:{phone}"
    params: dict[str, Any] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            _usage(f"--param {item!r}: write NAME=VALUE (VALUE as JSON, or plain text)")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    with _engine(policy, store, keyring, dataset) as engine:
        intake = engine.requests.submit(
            kind,
            identity,
            jurisdiction=jurisdiction,
            params=params,
            channel="cli",
            assertion=assertion,
            on_behalf=acting,
        )
        if as_json:
            _print({k: getattr(intake, k) for k in intake.__dataclass_fields__})
            return
        typer.echo(f"request {intake.ref}: {intake.state}")
        typer.echo(f"  {intake.status}")
        typer.echo(f"  due {intake.due_at:%Y-%m-%d}")
        if intake.code_sent_to:
            typer.echo(
                f"  a code was sent by {intake.code_sent_to}: lawful request verify {intake.ref} CODE"
            )


@request_app.command("verify")
def verify_(
    ref: RefArg,
    code: Annotated[str, typer.Argument(help="The code the person received")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    dataset: DatasetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the person's code; a right one lets the request go on."""
    with _engine(policy, store, keyring, dataset) as engine:
        _show(engine.requests.verify(ref, code), as_json)


@request_app.command("run")
def run(
    limit: Annotated[int | None, typer.Option(help="Run at most this many requests")] = None,
    lease: Annotated[
        float,
        typer.Option(
            help="Seconds a request stays this worker's without news from it; "
            "after that another worker takes it over"
        ),
    ] = 30.0,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    dataset: DatasetOption = None,
) -> None:
    """Carry out the requests waiting to run (verified, approved where needed)."""
    if lease <= 0:
        _usage(f"--lease {lease}: give the seconds a worker holds a request, e.g. 30")
    with _engine(policy, store, keyring, dataset) as engine:
        engine.requests.jobs.lease = timedelta(seconds=lease)
        done = engine.requests.run_pending(limit=limit)
        typer.echo(f"ran {done} request{'s' if done != 1 else ''}")


@request_app.command("show")
def show(
    ref: RefArg,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """A request's state, deadline, steps and outcome."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.show(ref), as_json)


@request_app.command("list")
def list_(
    due_within: Annotated[str | None, typer.Option(help="Due within, e.g. 3d, 12h, 2w")] = None,
    overdue: Annotated[bool, typer.Option(help="Only overdue requests")] = False,
    state: Annotated[str | None, typer.Option(help="Only requests in this state")] = None,
    closed: Annotated[bool, typer.Option(help="Include closed requests")] = False,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open requests by due date, soonest first."""
    window = None
    if due_within is not None:
        try:
            window = parse_window(due_within)
        except DeadlineError as exc:
            _usage(f"--due-within: {exc}")
    if state is not None:
        from lawful.requests.states import RequestState

        if state not in RequestState.__members__:
            _usage(f"--state {state!r}: use one of {', '.join(RequestState.__members__)}")
    with _engine(policy, store, keyring, []) as engine:
        views = engine.requests.list(
            due_within=window, overdue=overdue, state=state, open_only=not closed
        )
        if as_json:
            _print([v.to_dict() for v in views])
            return
        if not views:
            typer.echo("no requests")
        for v in views:
            flag = " OVERDUE" if v.overdue else ""
            typer.echo(f"{v.ref}  {v.kind:<20} {v.state:<22} due {v.due_at:%Y-%m-%d}{flag}")


@request_app.command("approve")
def approve(
    ref: RefArg,
    by: Annotated[str, typer.Option(help="Who approves")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let a request that needs a person's approval run."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.approve(ref, by=by), as_json)


@request_app.command("extend")
def extend(
    ref: RefArg,
    reason: Annotated[str, typer.Option(help="Why more time is needed (told to the person)")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Extend the deadline as far as the law allows, once."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.extend(ref, reason), as_json)


@request_app.command("clarify")
def clarify(
    ref: RefArg,
    question: Annotated[str, typer.Option(help="What the person must tell you (sent to them)")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the person for more before going on; under UK law the clock stops until they reply."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.ask_clarification(ref, question), as_json)


@request_app.command("clarified")
def clarified(
    ref: RefArg,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """The person replied: the request goes on where it was, its deadline moved by the pause."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.clarified(ref), as_json)


@request_app.command("charge")
def charge(
    ref: RefArg,
    amount: Annotated[str, typer.Option(help="The fee with its currency, e.g. 'EUR 25'")],
    ground: Annotated[
        str | None,
        typer.Option(
            help="excessive or manifestly_unfounded (default: the one recorded, else excessive)"
        ),
    ] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the fee the policy allows for an excessive request instead of refusing it; the
    request waits for it (`fee-paid`) with its clock stopped, or is closed with
    `deny --rule fee_unpaid`."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.charge_fee(ref, amount=amount, ground=ground), as_json)


@request_app.command("fee-paid")
def fee_paid(
    ref: RefArg,
    by: Annotated[str, typer.Option(help="Who saw the payment")],
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """The fee was paid: the request goes on, its deadline moved by the days it waited."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.fee_paid(ref, by=by), as_json)


@request_app.command("deny")
def deny(
    ref: RefArg,
    rule: Annotated[
        str,
        typer.Option(help="The ground, one the policy lists (e.g. legal_claims), or fee_unpaid"),
    ],
    detail: Annotated[str | None, typer.Option(help="More for the person")] = None,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refuse a request on a ground the policy lists; the person is told."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.deny(ref, rule, detail=detail), as_json)


@request_app.command("withdraw")
def withdraw(
    ref: RefArg,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
    as_json: JsonOption = False,
) -> None:
    """The person withdraws their request."""
    with _engine(policy, store, keyring, []) as engine:
        _show(engine.requests.withdraw(ref), as_json)


@request_app.command("receipt")
def receipt(
    ref: RefArg,
    policy: PolicyOption = None,
    store: StoreOption = None,
    keyring: KeyringOption = None,
) -> None:
    """Print a completed request's signed receipt and check it against the audit log."""
    with _engine(policy, store, keyring, []) as engine:
        view = engine.requests.show(ref)
        if view.receipt is None:
            _usage(f"request {ref} has no receipt yet (it is {view.state})")
        _print(view.receipt)
        if not engine.requests.check_receipt(ref):
            _refuse(f"the receipt of request {ref} does not match its signature or the audit log")
        typer.echo("✓ signed, and chained in the audit log", err=True)
