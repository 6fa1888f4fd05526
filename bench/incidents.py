"""How fast lawful computes the people a breach affects (issue 6, point 5).

An incident touching two tables of the sample shop (`payments`, two owner hops from the
customers, and `login_events`, one hop): `Incidents.open` walks from every row of both
up to the customers' identities, normalises and keyed-hashes one identity per customer
and stores them in `incident_subjects` (COPY on PostgreSQL), with the incident and its
audit event, in one transaction. The baseline, in the same run on the same data: the
hand-written SQL a person would write for the same answer,

    SELECT DISTINCT c.email FROM payments p JOIN orders o ON p.order_id = o.id
      JOIN customers c ON o.customer_id = c.id
    UNION SELECT c.email FROM login_events l JOIN customers c ON l.customer_id = c.id

fetched to the client. The issue sets no target: the figures are printed with their
ratio. The two answers are compared (the baseline's emails, keyed-hashed, must be the
stored hashes).

A fresh PostgreSQL database (`CREATE DATABASE bench_incidents_...`) holds the shop and
lawful's store, dropped at the end unless --keep.

    python bench/incidents.py                     # 1,000,000 customers
    python bench/incidents.py --customers 100000  # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.shop.generate import generate  # noqa: E402
from lawful.datasets import Datasets  # noqa: E402
from lawful.incidents import Incidents  # noqa: E402
from lawful.incidents.tables import incident_subjects  # noqa: E402
from lawful.policy import load_policy  # noqa: E402
from lawful.store import open_store  # noqa: E402
from lawful.subjects import Keyring  # noqa: E402

ADMIN = os.environ.get("LAWFUL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BASELINE = (
    "SELECT DISTINCT c.email FROM payments p JOIN orders o ON p.order_id = o.id "
    "JOIN customers c ON o.customer_id = c.id "
    "UNION SELECT c.email FROM login_events l JOIN customers c ON l.customer_id = c.id"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"bench_incidents_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        started = time.perf_counter()
        generate(url, args.customers, seed=0)
        print(
            f"shop of {args.customers:,} customers generated in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        os.environ["SHOP_DATABASE_URL"] = url
        policy = load_policy(ROOT / "examples" / "shop" / "policy.yaml").policy
        keyring = Keyring.generate()
        store = open_store(url)
        datasets = Datasets.load(
            [ROOT / "examples" / "shop" / "dataset.yaml"], policy=policy, keyring=keyring
        )
        register = Incidents(store, policy, keyring, datasets)
        datasets.graph("shop")  # reflect once, outside the timing

        # the baseline first, then lawful, then the baseline again: the better of two
        baseline = []
        engine = sa.create_engine(url, poolclass=sa.NullPool)

        def hand_written() -> list[str]:
            t = time.perf_counter()
            with engine.connect() as conn:
                emails = [e for (e,) in conn.exec_driver_sql(BASELINE)]
            baseline.append(time.perf_counter() - t)
            return emails

        emails = hand_written()
        t = time.perf_counter()
        incident = register.open(
            datetime.now(UTC),
            "bench: payments and sign-ins exposed",
            tables=["shop.payments", "shop.login_events"],
        )
        lawful = time.perf_counter() - t
        hand_written()

        with store.engine.connect() as conn:
            stored = set(conn.execute(sa.select(incident_subjects.c.identity_hash)).scalars())
        same = stored == set(keyring.hash_many([f"email:{e}" for e in emails]))
        best = min(baseline)
        figures = {
            "customers": args.customers,
            "subjects": incident.subjects_count,
            "records": incident.records_count,
            "lawful_seconds": round(lawful, 3),
            "lawful_subjects_per_second": round(incident.subjects_count / lawful),
            "baseline_seconds": round(best, 3),
            "baseline_subjects_per_second": round(len(emails) / best),
            "ratio_lawful_to_baseline_time": round(lawful / best, 2),
            "same_answer": same,
        }
        engine.dispose()
        datasets.close()
        store.close()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"affected subjects of an incident on 2 tables ({figures['records']:,} rows), "
            f"{args.customers:,} customers, PostgreSQL:\n"
            f"  lawful (walk, hash, store): {figures['lawful_seconds']:.2f} s, "
            f"{figures['subjects']:,} subjects, {figures['lawful_subjects_per_second']:,} subjects/s\n"
            f"  hand-written SELECT DISTINCT of the emails: {figures['baseline_seconds']:.2f} s, "
            f"{figures['baseline_subjects_per_second']:,} subjects/s\n"
            f"  lawful takes {figures['ratio_lawful_to_baseline_time']}x the baseline's time; "
            f"same people: {'yes' if same else 'NO'}"
        )
    if not figures["same_answer"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
