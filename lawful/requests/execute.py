"""What each kind of request does, as the steps of its job, and how a request closes.

Each step is safe to run again: a worker that dies after a step's effect committed but
before the step was recorded leaves it to the next worker, which finds nothing left to
do (an erasure changes nothing the second time; a choice already recorded is not
recorded twice). The request closes only once every step is done, in one transaction
with its receipt and the receipt's audit event.

| kind | steps |
| --- | --- |
| confirm | datasets:find |
| access, portability | package (and package:send, to another controller) |
| erasure, account_closure | dataset:KEY:plan and dataset:KEY:erase (each dataset), records:close, recipients:notify (with a disclosure log), proof |
| rectification | dataset:rectify, recipients:notify (with a disclosure log) |
| restriction | records:restrict |
| objection | records:object |
| withdraw_consent | records:withdraw |
| opt_out_sale | records:opt_out |
| restrict_recipients | records:restrict_recipients |
| explain_decision, information | answer |
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit import NewEvent, append
from lawful.audit.log import lock_head
from lawful.policy.vocabulary import RequestKind
from lawful.requests import art15, package
from lawful.requests.jobs import Claim, InStore, Outcome, RunResult
from lawful.requests.jobs import Step as JobStep
from lawful.requests.states import RequestState
from lawful.requests.tables import request_packages, requests
from lawful.subjects import Identity, registry

if TYPE_CHECKING:
    from lawful.requests.service import Requests

S = RequestState
K = RequestKind
Step = tuple[str, Callable[[], "dict[str, Any] | Outcome"]]
MARKETING = "*marketing"


class ProofFailed(RuntimeError):
    """After an erasure, the subject's data is still there (the step is retried)."""


# --- parameters, checked at intake ----------------------------------------------------------


def check_params(reqs: Requests, kind: RequestKind, params: dict[str, Any]) -> dict[str, Any]:
    """The kind's parameters, checked against the policy; errors say what to send."""
    from lawful.requests.service import RequestError

    policy = reqs.policy
    allowed = {
        K.rectification: {"changes"},
        K.objection: {"purposes", "marketing"},
        K.withdraw_consent: {"purposes"},
        K.restrict_recipients: {"recipients"},
        K.explain_decision: {"purpose"},
        K.portability: {"send_to"},
    }.get(kind, set())
    unknown = sorted(set(params) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "none"
        raise RequestError(
            f"a {kind.value} request takes no parameter {', '.join(unknown)} (it takes: {expected})"
        )
    if kind is K.rectification:
        changes = params.get("changes")
        if not isinstance(changes, dict) or not changes:
            raise RequestError(
                "a rectification names what to correct: changes = {'table.column': new value}"
            )
        if reqs.datasets is None:
            raise RequestError("no datasets are configured: there is nothing to rectify")
        from lawful.datasets.access import RectifyError, validate_changes

        try:  # every field named and every value checked before the request is taken
            for key, named in reqs.datasets._split_changes(changes).items():
                validate_changes(reqs.datasets.graph(key), named)
        except RectifyError as exc:
            raise RequestError(f"rectification: {exc}") from None
    if kind is K.objection:
        purposes = _names(params.get("purposes"), "purposes")
        for name in purposes:
            purpose = policy.purposes.get(name)
            if purpose is None:
                raise RequestError(_unknown(name, "purpose", policy.purposes))
            marketing = purpose.use.startswith("marketing")
            if "legitimate_interests" not in purpose.bases() and not marketing:
                raise RequestError(
                    f"purpose {name} does not rest on legitimate interests: withdraw consent "
                    "instead (a withdraw_consent request)"
                )
        if not purposes and not params.get("marketing"):
            raise RequestError(
                "an objection names the purposes objected to (purposes=[...]) or marketing=true"
            )
    if kind is K.portability and params.get("send_to") is not None:
        check_endpoint(params["send_to"])
    if kind is K.withdraw_consent:
        for name in _names(params.get("purposes"), "purposes"):
            purpose = policy.purposes.get(name)
            if purpose is None:
                raise RequestError(_unknown(name, "purpose", policy.purposes))
            if "consent" not in purpose.bases():
                raise RequestError(f"purpose {name} does not rest on consent: nothing to withdraw")
    if kind is K.restrict_recipients:
        names = _names(params.get("recipients"), "recipients")
        if not names:
            raise RequestError("name the third parties to restrict: recipients=[...]")
        for name in names:
            if name not in policy.recipients:
                raise RequestError(_unknown(name, "recipient", policy.recipients))
    if kind is K.explain_decision and params.get("purpose") is not None:
        name = params["purpose"]
        purpose = policy.purposes.get(name)
        if purpose is None or purpose.automated is None:
            automated = [n for n, p in policy.purposes.items() if p.automated is not None]
            raise RequestError(
                f"{name!r} is not a purpose with automated decisions "
                f"(those are: {', '.join(automated) or 'none'})"
            )
    return params


def _names(value: Any, what: str) -> list[str]:
    from lawful.requests.service import RequestError

    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"{what} is a list of names")
    return value


def _unknown(name: str, what: str, known: Any) -> str:
    return f"the policy has no {what} {name!r} (it has: {', '.join(sorted(known)) or 'none'})"


# --- running a claimed job ------------------------------------------------------------------


def execute(reqs: Requests, claim: Claim) -> RunResult | None:
    """Run the request's remaining steps; the last one closes it with its receipt."""
    with reqs.store.engine.connect() as conn:
        row = conn.execute(_REQUEST, {"p_id": claim.request_id}).one()
    if S(row.state) is not S.in_progress:
        # Denied meanwhile (a person may refuse a queued request): nothing more to do.
        reqs.jobs.give_up(claim, f"request {row.state}")
        return None
    who = reqs._contact(row)
    steps = [(name, _plain(fn)) for name, fn in plan(reqs, row, who)]
    steps.append(
        ("close", InStore(lambda conn, done: close(reqs, conn, row, done), with_steps=True))
    )
    return reqs.jobs.run(claim, steps)


_REQUEST = sa.select(requests).where(requests.c.id == sa.bindparam("p_id"))


def _plain(
    fn: Callable[[], dict[str, Any] | Outcome],
) -> Callable[[Connection | None], dict[str, Any] | Outcome]:
    """A step against another database or through lawful's own API: run outside the
    transaction that records it, so it must be idempotent (see lawful.requests.jobs)."""
    return lambda _conn: fn()


def plan(reqs: Requests, row: Any, who: Identity) -> list[Step]:
    kind = K(row.kind)
    params = reqs.params(row)
    datasets = reqs.datasets
    consent = reqs.consent

    def subject() -> Any:
        return consent.subject(who, create=True)

    if kind is K.confirm:
        return [("datasets:find", lambda: _confirm(reqs, who))]
    if kind in (K.access, K.portability):
        steps = [("package", lambda: _package(reqs, row, who))]
        if params.get("send_to"):
            steps.append(("package:send", lambda: _send(reqs, row, params["send_to"])))
        return steps
    if kind in (K.erasure, K.account_closure):
        steps: list[Step] = []
        for key in datasets.loaded if datasets is not None else ():
            # The plan first (a dry run): what will go and what stays, and why. Once the
            # subject's identities are erased they find nothing more, so the rows kept
            # under a rule are known, for the receipt, only from before.
            steps.append((f"dataset:{key}:plan", lambda key=key: _erase(reqs, who, key, True)))
            steps.append((f"dataset:{key}:erase", lambda key=key: _erase(reqs, who, key)))
        steps.append(("records:close", lambda: _close_records(reqs, who)))
        if reqs.disclosures is not None:
            steps.append(("recipients:notify", lambda: _notify(reqs, who, "erasure", row.ref)))
        steps.append(("proof", lambda: _proof(reqs, who)))
        return steps
    if kind is K.rectification:
        steps = [("dataset:rectify", lambda: _rectify(reqs, who, params["changes"]))]
        if reqs.disclosures is not None:
            steps.append(
                ("recipients:notify", lambda: _notify(reqs, who, "rectification", row.ref))
            )
        return steps
    if kind is K.restriction:
        return [
            (
                "records:restrict",
                lambda: _choose(reqs, who, "restriction", "*", lambda s: consent.restrict(s)),
            )
        ]
    if kind is K.objection:
        purposes = list(params.get("purposes") or [])
        if params.get("marketing"):
            purposes.append(MARKETING)

        def objections() -> dict[str, Any]:
            done = {}
            for name in purposes:
                purpose = None if name == MARKETING else name
                done[name] = _choose_one(
                    reqs, subject(), "objection", name, lambda s, p=purpose: consent.object(s, p)
                )
            return {"objected": done}

        return [("records:object", objections)]
    if kind is K.withdraw_consent:
        names = params.get("purposes") or [
            n for n, p in reqs.policy.purposes.items() if "consent" in p.bases()
        ]

        def withdrawals() -> dict[str, Any]:
            # Every consent to these purposes: purpose-wide, per channel and per list.
            done = dict.fromkeys(names, "not given")
            state = consent.state(who)
            for (topic, key, scope), choice in sorted(state.choices.items()):
                if topic != "consent" or key not in done or choice.state not in GIVEN:
                    continue
                consent.withdraw(subject(), key, method="api", **_scoped(scope))
                done[key] = "withdrawn"
            return {"purposes": done}

        return [("records:withdraw", withdrawals)]
    if kind is K.opt_out_sale:

        def opt_outs() -> dict[str, Any]:
            s = subject()
            return {
                what: _choose_one(reqs, s, "opt_out", what, lambda s, w=what: consent.opt_out(s, w))
                for what in ("sale", "share")
            }

        return [("records:opt_out", opt_outs)]
    if kind is K.restrict_recipients:

        def restrictions() -> dict[str, Any]:
            s = subject()
            return {
                name: _choose_one(
                    reqs,
                    s,
                    "recipient",
                    name,
                    lambda s, n=name: consent.restrict_recipient(s, n),
                )
                for name in params["recipients"]
            }

        return [("records:restrict_recipients", restrictions)]
    return [("answer", lambda: _answer(reqs, kind, params))]


def _confirm(reqs: Requests, who: Identity) -> dict[str, Any]:
    rows = {}
    if reqs.datasets is not None:
        for key, found in reqs.datasets.find([who]).items():
            rows[key] = found.total
    known = _known(reqs, who) is not None
    return {"holds_data": known or any(rows.values()), "rows": rows, "records": known}


def _package(reqs: Requests, row: Any, who: Identity) -> Outcome:
    accessed = reqs.datasets.access([who]) if reqs.datasets is not None else []
    categories = {c for d in accessed for t in d.tables for c in t.columns.values()}
    records: dict[str, list[dict[str, Any]]] = {"consent": [], "requests": []}
    with reqs.store.engine.connect() as conn:
        subject = registry.find(conn, reqs.consent.context, who)
        mine = conn.execute(
            sa.select(requests.c.ref, requests.c.kind, requests.c.state, requests.c.received_at)
            .where(
                requests.c.controller_id == reqs.controller_id,
                requests.c.identity_hash == row.identity_hash,
            )
            .order_by(requests.c.received_at)
        ).all()
    if subject is not None:
        records["consent"] = [_record(r) for r in reqs.consent.history(subject)]
    records["requests"] = [
        {"ref": r.ref, "kind": r.kind, "state": r.state, "received_at": r.received_at.isoformat()}
        for r in mine
    ]
    disclosed = (
        [d.to_dict() for d in reqs.disclosures.disclosures_of(who)]
        if reqs.disclosures is not None
        else []
    )
    records["disclosures"] = disclosed
    information = reqs.art15.information(
        categories, jurisdiction=row.jurisdiction, disclosures=disclosed
    )
    contents = package.PackageContents(
        controller=reqs.policy.controller.name,
        request_ref=row.ref,
        kind=row.kind,
        generated_at=reqs.clock(),
        datasets=accessed,
        records=records,
        information=information,
    )
    data = package.build_package(contents)
    now = reqs.clock()

    def store(conn: Connection) -> dict[str, Any]:
        link = package.store_package(
            conn,
            reqs.keyring,
            request_id=row.id,
            request_ref=row.ref,
            data=data,
            now=now,
            window=reqs.package_window,
        )
        # Not the link itself: it opens the package to whoever holds it, so it is only
        # in the person's message (made again from the ref and expiry when closing).
        return {"expires_at": link.expires_at.isoformat()}

    # Sealed and stored in the transaction that records the step: once, with its record.
    result = {
        "datasets": len(accessed),
        "rows": sum(len(t.rows) for d in accessed for t in d.tables),
        "categories": sorted(categories),
        "bytes": len(data),
    }
    return Outcome(result, store)


def check_endpoint(url: Any) -> str:
    """Another controller's endpoint for a portability request: HTTPS (plain HTTP only to
    this machine, for tests and local relays)."""
    from lawful.requests.service import RequestError

    parts = urlsplit(url) if isinstance(url, str) else None
    local = parts is not None and parts.hostname in ("localhost", "127.0.0.1", "::1")
    if (
        parts is None
        or not parts.hostname
        or not (parts.scheme == "https" or (parts.scheme == "http" and local))
    ):
        raise RequestError(
            "send_to is the https:// URL of the controller to send the data to "
            "(e.g. https://new-provider.example/dsr/import)"
        )
    return url


def _send(reqs: Requests, row: Any, url: str) -> dict[str, Any]:
    """POST the package's data.json to the other controller, once per request.

    The request's ref goes as the Idempotency-Key: a step run again after a crash sends
    the same key, so a receiver that honours it stores the data once.
    """
    with reqs.store.engine.connect() as conn:
        made = conn.execute(
            sa.select(request_packages.c.expires_at).where(request_packages.c.request_id == row.id)
        ).scalar_one()
    token = package.link_token(reqs.keyring, row.ref, made)
    data = reqs.store.write(
        lambda conn: package.open_package(conn, reqs.keyring, token, reqs.clock())
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        body = zf.read("data.json")
    sent = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": row.ref},
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        raise SendFailed(f"the receiving controller answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SendFailed(
            f"the receiving controller could not be reached ({type(exc).__name__})"
        ) from None
    return {"sent_to": urlsplit(url).hostname, "status": status, "bytes": len(body)}


class SendFailed(RuntimeError):
    """The other controller did not take the data; the step is retried later."""


def _known(reqs: Requests, who: Identity) -> Any:
    """The subject lawful knows by `who`, or None. A plain read: `consent.subject` is the
    write path (it can create the subject), so it takes the audit chain's head lock,
    which every request's submit and close also wait for."""
    with reqs.store.engine.connect() as conn:
        return registry.find(conn, reqs.consent.context, who)


def _record(record: Any) -> dict[str, Any]:
    return {
        "ref": record.ref,
        "topic": str(record.topic),
        "key": record.key,
        "scope": record.scope,
        "state": str(record.state),
        "method": record.method,
        "at": record.at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "policy_version": record.policy_version,
    }


def _erase(reqs: Requests, who: Identity, key: str, dry_run: bool = False) -> dict[str, Any]:
    assert reqs.datasets is not None
    (report,) = reqs.datasets.erase([who], only=[key], dry_run=dry_run)
    out = report.to_dict()
    out.pop("dry_run", None)
    return out


GIVEN = ("given", "renewed")  # a consent in force


def _scoped(scope: str) -> dict[str, str | None]:
    """A ledger scope as `Consent.withdraw`'s arguments: '' (the whole purpose), a channel,
    or 'list:NAME'."""
    if scope.startswith("list:"):
        return {"channel": None, "list_name": scope[5:]}
    return {"channel": scope or None, "list_name": None}


def _kept(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows and columns the erasure plans kept, each with its reasons (rules)."""
    kept = []
    for name, result in outcome.items():
        if not (name.startswith("dataset:") and name.endswith(":plan")) or not result:
            continue
        for table in result.get("tables", []):
            if table.get("kept") or table.get("kept_columns"):
                kept.append(
                    {
                        "dataset": result["dataset"],
                        "table": table["table"],
                        "rows": table.get("kept", 0),
                        "columns": table.get("kept_columns", {}),
                        "reasons": [
                            *table.get("reasons", []),
                            *(f"{c}: {why}" for c, why in table.get("kept_columns", {}).items()),
                        ],
                    }
                )
    return kept


def _close_records(reqs: Requests, who: Identity) -> dict[str, Any]:
    """lawful's own records: every consent withdrawn, marketing and sale stopped.

    The ledger itself stays: it is the proof of what the person chose (kept under the
    controller's legal obligation to demonstrate consent, GDPR Art. 7(1)).
    """
    consent = reqs.consent
    subject = _known(reqs, who)
    if subject is None:
        return {"subject": "unknown: no records"}
    state = consent.state(subject)
    withdrawn = []
    for (topic, key, scope), choice in state.choices.items():
        if topic == "consent" and choice.state in GIVEN:
            consent.withdraw(subject, key, method="api", **_scoped(scope))
            withdrawn.append(key)
    stopped = {
        what: _choose_one(reqs, subject, "opt_out", what, lambda s, w=what: consent.opt_out(s, w))
        for what in ("sale", "share")
    }
    return {"withdrawn": sorted(withdrawn), "opt_out": stopped, "ledger": "kept as proof"}


def _proof(reqs: Requests, who: Identity) -> dict[str, Any]:
    """Look again: whatever the subject's identities still find must be rows the erasure
    leaves on purpose (kept under a rule, shared with others), never something to erase."""
    if reqs.datasets is None:
        return {"datasets": 0}
    found = 0
    for report in reqs.datasets.erase([who], dry_run=True):
        if report.changed:
            raise ProofFailed(
                f"dataset {report.dataset}: {report.changed} values of the subject are still "
                "there after the erasure"
            )
        found += report.found
    return {"left_to_erase": 0, "still_found": found}


def _notify(reqs: Requests, who: Identity, change: Any, ref: str) -> dict[str, Any]:
    """Tell the recipients that received the subject's data (GDPR Art. 19); calling again
    for the same request adds no notice, so a rerun after a crash changes nothing."""
    assert reqs.disclosures is not None
    notices = reqs.disclosures.notify_recipients(who, change, ref)
    return {"recipients": sorted({n.recipient for n in notices})}


def _rectify(reqs: Requests, who: Identity, changes: dict[str, Any]) -> dict[str, Any]:
    assert reqs.datasets is not None
    reports = reqs.datasets.rectify([who], changes)
    return {"datasets": [r.to_dict() for r in reports]}


def _choose(
    reqs: Requests, who: Identity, topic: str, key: str, record: Callable[[Any], Any]
) -> dict[str, Any]:
    subject = reqs.consent.subject(who, create=True)
    return {key: _choose_one(reqs, subject, topic, key, record)}


def _choose_one(
    reqs: Requests, subject: Any, topic: str, key: str, record: Callable[[Any], Any]
) -> str:
    """Record the choice unless it is already the subject's current one (a rerun)."""
    current = reqs.consent.state(subject).get(topic, key, "")
    if current is not None and current.state == "withdrawn":
        return "already"
    record(subject)
    return "recorded"


def _answer(reqs: Requests, kind: RequestKind, params: dict[str, Any]) -> dict[str, Any]:
    policy = reqs.policy
    if kind is K.explain_decision:
        wanted = params.get("purpose")
        out = {}
        for name, purpose in policy.purposes.items():
            automated = purpose.automated
            if automated is None or (wanted and name != wanted):
                continue
            out[name] = {
                "logic": automated.logic,
                "significant": automated.significant,
                "human_review": automated.human_review,
                "contest": "ask for a person to review the decision: reply to this request",
            }
        return {"automated_decisions": out or "none: no decision about you is made automatically"}
    return {"information": art15.art15_information(policy, [])}


# --- closing -------------------------------------------------------------------------------


def close(reqs: Requests, conn: Connection, row: Any, done: list[JobStep]) -> dict[str, Any]:
    """Close the request after its last step: state, outcome, receipt, events and messages,
    in the transaction that records the step (exactly once). `row` is the request as the
    job found it, `done` its steps as recorded (this one last)."""
    from lawful.requests.service import receipt_hash

    now = reqs.clock()
    ref = row.ref
    steps = [s for s in done if s.name != "close"]
    outcome = {s.name: s.result for s in steps}
    kept = _kept(outcome)
    final = S.partially_completed if kept else S.completed
    receipt = {
        "request": ref,
        "controller": reqs.key,
        "kind": row.kind,
        "received_at": row.received_at.isoformat(),
        "verified_at": row.verified_at.isoformat() if row.verified_at else None,
        "verified_by": row.verified_by,
        "due_at": row.due_at.isoformat(),
        "completed_at": now.isoformat(),
        "state": final.value,
        "policy_version": row.policy_version,
        # Who acted, when not the person: an agent or a parent (their proof is in the
        # request's record, hashed).
        "on_behalf": (row.on_behalf or {}).get("role"),
        # The fee paid for an excessive request: its ground, amount, when asked and paid.
        "fee": row.fee,
        "steps": [
            {
                "name": s.name,
                "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                "result": s.result,
            }
            for s in steps
        ],
        "kept": kept,
    }
    receipt["signature"] = reqs.sign(receipt)
    digest = receipt_hash({k: v for k, v in receipt.items() if k != "signature"})
    contact = reqs._contact(row)
    made = outcome.get("package") or {}
    if made.get("expires_at"):
        # The link is the message that the request is done: one message, not two.
        expires = datetime.fromisoformat(made["expires_at"])
        token = package.link_token(reqs.keyring, ref, expires)
        tell: tuple[str, dict[str, Any]] = (
            "package_ready",
            {"link": reqs.link(token), "expires": expires},
        )
    elif kept:
        reasons = [r for item in kept for r in item["reasons"]] or ["kept under the law"]
        tell = ("partially_completed", {"kept": reasons})
    else:
        tell = ("completed", {})

    # Everything above is worked out first: the audit chain's head, locked from here to
    # the commit, is held for as short a time as can be (every request's close takes it).
    lock_head(conn, reqs.controller_id)
    values = {"outcome": outcome, "receipt": receipt}
    moved = reqs._move(
        conn,
        row.id,
        S.in_progress,
        final,
        now,
        values=values,
        must=False,
        unchanged_since=row.updated_at,
    )
    if not moved:
        # Changed since the job read it: denied or withdrawn (that move told the person;
        # nothing more to say), or extended (the receipt is made again from it as it is).
        fresh = reqs._row(conn, ref, lock=True)
        if S(fresh.state) is not S.in_progress:
            return {"state": fresh.state}
        return close(reqs, conn, fresh, done)
    append(
        conn,
        reqs.controller_id,
        reqs.key,
        [
            reqs._event(ref, row.identity_hash, S.in_progress, final),
            NewEvent(
                "request.receipt",
                subject=row.identity_hash,
                data={"ref": ref, "receipt_sha256": digest},
            ),
        ],
    )
    reqs._tell(conn, row.id, ref, row.kind, contact, tell[0], **tell[1])
    return {"state": final.value, "receipt_sha256": digest}
