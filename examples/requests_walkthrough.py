"""Data-subject requests on the sample shop, from intake to receipt.

    python -m examples.requests_walkthrough     (from the repository root)

Builds the sample shop (examples/shop: 500 customers) and lawful's store in throwaway
SQLite files. A customer asks for a copy of their data, then for erasure: each request
is verified by the code mailed to them (read here from an in-memory mail sink), run as
a durable job against the shop's database, proved, and closed with a signed receipt
chained into the audit log.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path

import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.audit import AuditLog
from lawful.engine import Engine
from lawful.requests.messages import MemorySender
from lawful.subjects import Keyring

SHOP = Path(__file__).parent / "shop"
EMAIL = "customer-2@example.com"


def code_in(body: str) -> str:
    found = re.search(r"^\s+(\d{6})\s*$", body, re.M)
    assert found is not None, "no code in the message"
    return found[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        shop_url = f"sqlite:///{folder}/shop.db"
        counts = generate(shop_url, 500, seed=0)
        os.environ["SHOP_DATABASE_URL"] = shop_url
        print(f"The sample shop: {counts.customers:,} customers, {counts.total:,} rows in SQLite")
        sender = MemorySender()
        with Engine.open(
            SHOP / "policy.yaml",
            f"sqlite:///{folder}/lawful.db",
            keyring=Keyring.generate(),
            datasets=[SHOP / "dataset.yaml"],
            sender=sender,
        ) as engine:
            requests = engine.requests
            for kind in ("access", "erasure"):
                intake = requests.submit(kind, f"email:{EMAIL}", jurisdiction="eu")
                print(
                    f"\n{kind} request {intake.ref[:8]}…: {intake.state}, due {intake.due_at:%Y-%m-%d}"
                )
                code = code_in(sender.last(template="code").body)
                print(
                    f"  a code was mailed; the person types it: {requests.verify(intake.ref, code).state}"
                )
                start = time.perf_counter()
                requests.run_pending()
                took = (time.perf_counter() - start) * 1000
                view = requests.show(intake.ref)
                print(f"  run: {view.state} in {took:.0f} ms ({view.status})")
                for step in view.steps:
                    print(f"    step {step['seq']} {step['name']}: {step['state']}")
                if kind == "access":
                    link = sender.last(template="package_ready").body.split("token=")[1].split()[0]
                    with zipfile.ZipFile(io.BytesIO(requests.download(link))) as package:
                        data = json.loads(package.read("data.json"))
                        files = len(package.namelist())
                    rows = sum(len(t["rows"]) for d in data["datasets"] for t in d["tables"])
                    print(f"  package: {files} files, {rows} rows, downloaded by the signed link")
                else:
                    for kept in view.receipt["kept"] if view.receipt else []:
                        print(f"    kept {kept['table']}: {'; '.join(kept['reasons'])}")
                print(
                    f"  receipt signed and in the audit chain: {requests.check_receipt(intake.ref)}"
                )
            engine_shop = sa.create_engine(shop_url)
            with engine_shop.connect() as conn:
                left = conn.execute(
                    sa.text("SELECT COUNT(*) FROM customers WHERE email = :e"), {"e": EMAIL}
                ).scalar()
            engine_shop.dispose()
            print(f"\nrows with the customer's email left in the shop: {left}")
            verified = AuditLog(engine.store, engine.policy.key).verify()
            print(
                f"audit chain: {'intact' if verified.ok else 'BROKEN'} ({verified.checked} events)"
            )


if __name__ == "__main__":
    main()
