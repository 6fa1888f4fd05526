"""How fast a retention sweep deletes expired rows, next to hand-written SQL (issue 6).

One table of sign-ins (`login_events`: id, customer_id, ip, user_agent, at; the sample
shop's shape, its primary key and customer index) holds --rows rows, of which --expired
are older than the `security` rule's 12 months (the oldest ids, as in an append-only
log, with their times spread over the two years before). The database is built once
(`INSERT ... SELECT generate_series`), then copied for each side of each round
(`CREATE DATABASE ... TEMPLATE`), so both sides delete from identical tables:

* lawful: `Retention.sweep(rules=["security"])` on the sample shop's policy and an
  annotation of the table (`retention: [{rule: security, from: at}]`), in batches of
  about --batch rows (200,000 unless told), each its own transaction, writing its audit
  event at the end;
* hand-written: `DELETE FROM login_events WHERE at < cutoff`, one statement in one
  transaction: the fastest set-based form (and the one no sweep can use, since it holds
  its locks and its WAL until the end and can't be interrupted without losing it all).

Each side starts after a CHECKPOINT, on a copy nobody else reads; rounds alternate
which side goes first; the medians are compared. Both sides must leave the same rows.
Target (issue 6): lawful's rows/s at least 0.8 of the hand-written DELETE's.

    python bench/sweep.py                               # 5,000,000 rows, 1,000,000 expired
    python bench/sweep.py --rows 500000 --expired 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lawful.datasets import Datasets  # noqa: E402
from lawful.policy import load_policy  # noqa: E402
from lawful.policy.durations import Duration  # noqa: E402
from lawful.retention import Retention, cutoff  # noqa: E402
from lawful.store import open_store  # noqa: E402
from lawful.subjects import Keyring  # noqa: E402

ADMIN = os.environ.get("LAWFUL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
POLICY = ROOT / "examples" / "shop" / "policy.yaml"
CUSTOMERS = 10_000

ANNOTATION = """
lawful: 1
dataset: bench
connection: {url_env: BENCH_SWEEP_URL}
tables:
  customers:
    identities: {email: {kind: email, match: exact}}
    columns:
      email: user.contact.email
    retention: [{rule: customer_records, from: last_login_at}]
  login_events:
    owners: [{table: customers, on: {customer_id: id}}]
    columns:
      ip: user.device.ip_address
      user_agent: user.device
      at: system.operations
    retention: [{rule: security, from: at}]
"""


def log(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def url_of(name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


@contextmanager
def admin() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        yield conn


def build(name: str, rows: int, expired: int, now: dt.datetime) -> None:
    """The template database: customers, and `rows` sign-ins, the first `expired` expired."""
    with admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(url_of(name), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE customers (id BIGINT PRIMARY KEY, email VARCHAR(254) NOT NULL UNIQUE, "
            "last_login_at TIMESTAMPTZ)"
        )
        conn.execute(
            "INSERT INTO customers SELECT i, 'customer-' || i || '@example.com', %s "
            "FROM generate_series(1, %s) i",
            (now, CUSTOMERS),
        )
        conn.execute(
            "CREATE TABLE login_events (id BIGSERIAL PRIMARY KEY, customer_id BIGINT NOT NULL, "
            "ip VARCHAR(45) NOT NULL, user_agent VARCHAR(300), at TIMESTAMPTZ NOT NULL)"
        )
        # Expired: 13 to 36 months old; the rest within the last 11 months.
        conn.execute(
            "INSERT INTO login_events (id, customer_id, ip, user_agent, at) "
            "SELECT i, 1 + i %% %s, "
            "(i %% 223 + 1) || '.' || (i %% 251) || '.' || (i %% 241) || '.' || (i %% 239 + 1), "
            "'Mozilla/5.0 (X11; Linux x86_64) Firefox/' || (100 + i %% 30), "
            "%s - CASE WHEN i <= %s THEN (400 + (i::bigint * 7919) %% 690) "
            "ELSE (i::bigint * 7919) %% 330 END * INTERVAL '1 day' "
            "FROM generate_series(1, %s) i",
            (CUSTOMERS, now, expired, rows),
        )
        conn.execute("CREATE INDEX ix_login_events_customer_id ON login_events (customer_id)")
        conn.execute("VACUUM ANALYZE")


def copy(template: str, name: str) -> None:
    with admin() as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")


def drop(name: str) -> None:
    with admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def checkpoint(name: str) -> None:
    with psycopg.connect(url_of(name), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def fingerprint(name: str) -> tuple[int, int]:
    with psycopg.connect(url_of(name)) as conn:
        row = conn.execute("SELECT COUNT(*), COALESCE(SUM(id), 0) FROM login_events").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def run_hand(name: str, now: dt.datetime) -> tuple[int, float]:
    limit = cutoff(Duration(months=12), now)
    checkpoint(name)
    with psycopg.connect(url_of(name)) as conn:
        start = time.perf_counter()
        with conn.transaction():
            deleted = conn.execute("DELETE FROM login_events WHERE at < %s", (limit,)).rowcount
        return deleted, time.perf_counter() - start


def run_lawful(name: str, now: dt.datetime, batch: int, folder: Path) -> tuple[int, float]:
    os.environ["BENCH_SWEEP_URL"] = _sqlalchemy_url(name)
    annotation = folder / f"{name}.yaml"
    annotation.write_text(ANNOTATION, encoding="utf-8")
    policy = load_policy(POLICY).policy
    keyring = Keyring.generate()
    store = open_store(f"sqlite:///{folder / (name + '.db')}")
    datasets = Datasets.load([annotation], policy=policy, keyring=keyring)
    try:
        retention = Retention(store, policy, keyring, datasets, batch=batch, clock=lambda: now)
        retention.targets()  # reflect the schema before the clock starts, as a worker would have
        checkpoint(name)
        start = time.perf_counter()
        report = retention.sweep(rules=["security"])
        elapsed = time.perf_counter() - start
        assert not report.failed, report.to_dict()
        return report.rule("security").rows, elapsed
    finally:
        datasets.close()
        store.close()


def _sqlalchemy_url(name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host", "127.0.0.1")
    port = info.get("port", "5432")
    return f"postgresql+psycopg://{user}{password}@{host}:{port}/{name}"


def render(report: dict[str, Any]) -> str:
    rows = report["rows"]
    lines = [
        f"sweep: delete {report['expired']:,} expired of {rows:,} rows on PostgreSQL "
        f"({report['rounds']} round(s), batches of about {report['batch']:,} rows)",
        "",
        f"{'':<34}{'median s':>10}{'rows/s':>14}",
        f"{'lawful sweep (batched)':<34}{report['lawful_s']:>10.2f}{report['lawful_rps']:>14,.0f}",
        f"{'hand-written DELETE (one stmt)':<34}{report['hand_s']:>10.2f}{report['hand_rps']:>14,.0f}",
        "",
        f"ratio lawful / hand-written: {report['ratio']:.2f} (target >= 0.8: "
        f"{'met' if report['ratio'] >= 0.8 else 'NOT met'})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=200_000, help="rows per batch (about)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 0 < args.expired <= args.rows:
        parser.error("--expired must be between 1 and --rows")
    now = dt.datetime.now(dt.UTC)
    tag = secrets.token_hex(4)
    template = f"bench_sweep_{tag}"
    made = [template]
    lawful_times, hand_times = [], []
    try:
        log(f"building {args.rows:,} rows ({args.expired:,} expired)")
        build(template, args.rows, args.expired, now)
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(args.rounds):
                sides = ["lawful", "hand"] if n % 2 == 0 else ["hand", "lawful"]
                results: dict[str, tuple[int, float]] = {}
                for side in sides:
                    name = f"{template}_{side}_{n}"
                    copy(template, name)
                    made.append(name)
                    log(f"round {n + 1}: {side}")
                    if side == "lawful":
                        results[side] = run_lawful(name, now, args.batch, Path(tmp))
                    else:
                        results[side] = run_hand(name, now)
                a, b = f"{template}_lawful_{n}", f"{template}_hand_{n}"
                assert results["lawful"][0] == results["hand"][0] == args.expired, results
                assert fingerprint(a) == fingerprint(b), "the two sides left different rows"
                drop(a)
                drop(b)
                lawful_times.append(results["lawful"][1])
                hand_times.append(results["hand"][1])
    finally:
        for name in made:
            drop(name)
    lawful_s, hand_s = statistics.median(lawful_times), statistics.median(hand_times)
    report = {
        "rows": args.rows,
        "expired": args.expired,
        "batch": args.batch,
        "rounds": args.rounds,
        "lawful_s": lawful_s,
        "hand_s": hand_s,
        "lawful_rps": args.expired / lawful_s,
        "hand_rps": args.expired / hand_s,
        "ratio": hand_s / lawful_s,
    }
    print(json.dumps(report, indent=2) if args.json else render(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
