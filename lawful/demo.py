"""`lawful demo`: the whole system on the sample shop, in a throwaway folder, told as it goes.

It builds the sample shop's database (examples/shop, SQLite), loads a policy (the
Seestar Store's by default, or another with `--policy`), and then does what a company
does with lawful in a day: consent recorded and decisions made with their reasons, a
customer's access request and another's erasure request run from intake to signed
receipt, a retention sweep, and the audit chain verified. Nothing printed names a
person: subjects appear as request references and counts.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lawful.audit import AuditLog
from lawful.datasets import DatasetError, Datasets
from lawful.engine import Engine
from lawful.policy import load_policy
from lawful.requests.messages import MemorySender
from lawful.subjects import Keyring

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEFAULT_POLICY = EXAMPLES / "policies" / "seestar_store.yaml"
SHOP = EXAMPLES / "shop"


@dataclass
class DemoResult:
    """What the demo did, for tests and for `--json`."""

    policy: str
    customers: int
    rows: int
    decisions: dict[str, bool] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)  # kind -> final state
    package_rows: int = 0
    kept: list[str] = field(default_factory=list)
    swept: dict[str, int] = field(default_factory=dict)
    audit_events: int = 0
    audit_ok: bool = False
    mismatches: int = 0  # shop categories the policy does not declare


def run_demo(
    policy: Path = DEFAULT_POLICY,
    *,
    customers: int = 1_000,
    folder: Path | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo in `folder` (a temporary one by default)."""
    if folder is None:
        with tempfile.TemporaryDirectory() as temp:
            return run_demo(policy, customers=customers, folder=Path(temp), say=say)
    generate = _shop_generator()
    shop_url = f"sqlite:///{folder / 'shop.db'}"
    started = time.perf_counter()
    counts = generate(shop_url, customers, seed=0)
    os.environ["SHOP_DATABASE_URL"] = shop_url
    loaded = load_policy(policy)
    result = DemoResult(loaded.policy.controller.name, counts.customers, counts.total)
    say(
        f"The sample shop: {counts.customers:,} customers, {counts.total:,} rows in SQLite "
        f"({time.perf_counter() - started:.1f} s), under the policy of {result.policy}"
    )
    keyring = Keyring.generate()
    keyring.save(folder / "lawful.keys", overwrite=True)  # `--serve` opens the store again
    try:  # the shop's annotation checked against this policy: what it does not declare
        Datasets.load([SHOP / "dataset.yaml"], policy=loaded.policy, keyring=keyring).close()
    except DatasetError as exc:
        result.mismatches = len(exc.errors)
        say(
            f"  the shop's annotation uses {result.mismatches} categories or rules this "
            "policy does not declare (`lawful dataset check` lists them); run on anyway"
        )
    datasets = Datasets.load([SHOP / "dataset.yaml"], keyring=keyring)
    sender = MemorySender()
    with Engine.open(
        loaded,
        f"sqlite:///{folder / 'lawful.db'}",
        keyring=keyring,
        datasets=datasets,
        sender=sender,
    ) as engine:
        _consent(engine, result, say)
        _requests(engine, sender, result, say)
        _sweep(engine, result, say)
        verified = AuditLog(engine.store, engine.policy.key).verify()
        result.audit_events, result.audit_ok = verified.checked, verified.ok
        say(
            f"\nAudit chain: {'intact' if verified.ok else 'BROKEN'}, {verified.checked} "
            "events, each hashed with the one before (`lawful audit verify`)"
        )
    return result


def _shop_generator() -> Callable[..., Any]:
    """examples/shop/generate.py of the checkout lawful runs from."""
    if not (SHOP / "generate.py").exists():
        raise DemoError(
            f"the sample shop is not at {SHOP}: run `lawful demo` from a checkout of "
            "lawful's repository (pip install -e .), where examples/ lives"
        )
    root = str(EXAMPLES.parent)
    if root not in sys.path:
        sys.path.insert(0, root)  # examples/ is part of the repository, not the package
    from examples.shop.generate import generate

    return generate


class DemoError(RuntimeError):
    """The demo cannot run here (the sample shop is missing)."""


def _consent(engine: Engine, result: DemoResult, say: Callable[[str], None]) -> None:
    policy = engine.policy
    purpose = next((n for n, p in policy.purposes.items() if "consent" in p.bases()), None)
    say("\nConsent and decisions")
    if purpose is None:
        say("  this policy has no purpose resting on consent")
        return
    customer = "email:customer-1@example.com"
    before = engine.decide(customer, purpose)
    say(
        f"  {purpose}, before consent: {'allowed' if before.allowed else 'refused'} ({before.reason})"
    )
    method = (
        (policy.purposes[purpose].consent.via or ["api"])[0]
        if policy.purposes[purpose].consent
        else "api"
    )
    engine.consent.give(customer, purpose, method=str(method))
    after = engine.decide(customer, purpose)
    say(f"  {purpose}, after consent: {'allowed' if after.allowed else 'refused'} ({after.reason})")
    engine.consent.withdraw(customer, purpose)
    withdrawn = engine.decide(customer, purpose)
    say(f"  after withdrawal: {'allowed' if withdrawn.allowed else 'refused'} ({withdrawn.reason})")
    result.decisions = {
        "before": before.allowed,
        "after": after.allowed,
        "withdrawn": withdrawn.allowed,
    }


def _requests(
    engine: Engine, sender: MemorySender, result: DemoResult, say: Callable[[str], None]
) -> None:
    requests = engine.requests
    requests.intake_floor = 0.0  # the demo is its own only user
    jurisdiction = next(iter(engine.policy.jurisdictions))
    offered = {k.value for k in engine.policy.requests.kinds}
    for kind, email in (
        ("access", "customer-2@example.com"),
        ("erasure", "customer-3@example.com"),
    ):
        if kind not in offered:
            say(f"\n{kind}: not offered by this policy")
            continue
        intake = requests.submit(kind, f"email:{email}", jurisdiction=jurisdiction)
        say(
            f"\n{kind.capitalize()} request {intake.ref[:8]}…, due {intake.due_at:%Y-%m-%d} ({jurisdiction})"
        )
        if intake.code_sent_to:
            code = re.search(r"^\s+(\d{6})\s*$", sender.last(template="code").body, re.M)
            assert code is not None
            requests.verify(intake.ref, code[1])
            say("  verified by the code mailed to the customer")
        else:
            method = sorted(m.value for m in engine.policy.requests.verification)[0]
            requests.confirm_identity(intake.ref, method=method, by="demo")
            say(f"  verified by the privacy team ({method})")
        started = time.perf_counter()
        requests.run_pending()
        took = (time.perf_counter() - started) * 1000
        view = requests.show(intake.ref)
        result.requests[kind] = view.state
        say(f"  run as a durable job in {took:.0f} ms: {view.state}; {len(view.steps)} steps")
        if kind == "access":
            token = sender.last(template="package_ready").body.split("token=")[1].split()[0]
            with zipfile.ZipFile(io.BytesIO(requests.download(token))) as package:
                data = json.loads(package.read("data.json"))
                files = len(package.namelist())
            result.package_rows = sum(len(t["rows"]) for d in data["datasets"] for t in d["tables"])
            say(
                f"  the copy: {files} files (JSON, CSV, an HTML summary), {result.package_rows} "
                "rows, sealed at rest and fetched by a signed link"
            )
        else:
            for kept in (view.receipt or {}).get("kept", []):
                line = f"{kept['table']}: {'; '.join(kept['reasons'])}"
                result.kept.append(line)
                say(f"  kept {line}")
        say(f"  receipt signed and chained in the audit log: {requests.check_receipt(intake.ref)}")


def _sweep(engine: Engine, result: DemoResult, say: Callable[[str], None]) -> None:
    say("\nRetention sweep")
    retention = engine.retention
    if not retention.targets():
        say(
            "  no table of the shop is annotated with a rule of this policy (the annotation "
            "names the shop policy's rules): only lawful's own records are swept"
        )
    report = retention.sweep()
    for rule in report.rules:
        rows = sum(t.rows for t in rule.tables)
        result.swept[rule.rule] = rows
        done = {"delete": "deleted", "anonymize": "anonymized"}.get(rule.then, rule.then)
        say(
            f"  {rule.rule} (keep {rule.keep}): "
            + (f"{rows} rows {done}" if rows else "none expired")
        )


def serve_demo(
    folder: Path,
    policy: Path = DEFAULT_POLICY,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    say: Callable[[str], None] = print,
) -> None:
    """Serve what `run_demo` left in `folder`: the privacy center, the admin console and
    the API, with a worker running requests; messages to people go to folder/mail."""
    import uvicorn

    from lawful.api.app import create_app
    from lawful.api.cli import Worker
    from lawful.api.keys import ApiKeys
    from lawful.requests.messages import FileSender

    keyring = Keyring.from_json((folder / "lawful.keys").read_text())
    datasets = Datasets.load([SHOP / "dataset.yaml"], keyring=keyring)
    mail = folder / "mail"
    engine = Engine.open(
        load_policy(policy),
        f"sqlite:///{folder / 'lawful.db'}",
        keyring=keyring,
        datasets=datasets,
        sender=FileSender(mail),
    )
    try:
        keys = ApiKeys(engine.store, engine.policy.key, engine.policy.controller.name)
        _, token = keys.create("operator", name="demo")
        app = create_app(engine)
        worker = Worker(engine, 2.0)
        worker.start()
        base = f"http://{host}:{port}"
        say(f"\nServing {engine.policy.controller.name} (Ctrl-C to stop):")
        say(f"  privacy center   {base}/privacy/   (try customer-5@example.com)")
        say(f"  admin console    {base}/admin/     operator key: {token}")
        say(f"  API              {base}/docs")
        say(f"  messages sent to people are written to {mail}")
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        finally:
            worker.stop()
    finally:
        engine.close()
