"""A subject's rows in the sample shop's database, found and erased as annotated.

    python -m examples.datasets_walkthrough     (from the repository root)

Builds the sample shop (examples/shop: 1,000 customers) in a throwaway SQLite file,
checks its annotation (examples/shop/dataset.yaml) against the shop's policy and the live
schema, then finds a customer who shares an address with their household, erases them,
and erases them again: the second run changes nothing and says so.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from examples.shop.generate import generate
from lawful.datasets import Datasets
from lawful.datasets.erase import outcomes_lines
from lawful.policy import load_policy
from lawful.subjects import Keyring

SHOP = Path(__file__).parent / "shop"
CUSTOMER = "email:customer-1@example.com"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/shop.db"
        counts = generate(url, 1_000, seed=0)
        os.environ["SHOP_DATABASE_URL"] = url
        policy = load_policy(SHOP / "policy.yaml").policy
        print(f"The sample shop: {counts.customers:,} customers, {counts.total:,} rows in SQLite")
        with Datasets.load(
            [SHOP / "dataset.yaml"], policy=policy, keyring=Keyring.generate()
        ) as data:
            warnings = data.check()["shop"]
            print(
                f"  annotation checked against the policy and the schema: {len(warnings)} warnings"
            )

            start = time.perf_counter()
            found = data.find([CUSTOMER])["shop"]
            took = (time.perf_counter() - start) * 1000
            tables = {t.name: len(t.rows) for t in found.tables.values() if t.rows}
            print(
                f"  {CUSTOMER}: {found.total} rows in {len(tables)} tables, "
                f"{found.statements} queries, {took:.1f} ms"
            )
            print("   ", ", ".join(f"{name} {n}" for name, n in tables.items()))

            (erased,) = data.erase([CUSTOMER])
            print(f"  erased: {erased.changed} rows changed in one transaction")
            for line in outcomes_lines(erased.tables):
                print(f"    {line}")
            for table in erased.tables:
                for reason in table.reasons:
                    print(f"      {table.table}: {reason}")

            (again,) = data.erase(["account:1"])
            print(
                f"  erased again: {again.changed} rows changed "
                f"({sum(t.unchanged for t in again.tables)} unchanged, kept rows stay kept)"
            )


if __name__ == "__main__":
    main()
