"""How fast lawful answers "may purpose P use subject S's data?", and records consent.

Each figure is printed next to a baseline measured in the same run on the same data:

(a) `decide`, one at a time, in-process, warm state  vs  a plain dict lookup of
    precomputed answers (the floor for any in-process answer);
(b) `decide_many` over N subjects given by email  vs  one hand-written SQL query
    that reads the same consent rows (identities joined to consent state);
(c) consent writes with the audit chain on: `record_many` batches and single `give`
    calls, in records per second  vs  plain multi-row INSERTs of the same rows into a
    bare table through the same driver.

Targets (issue 3): (a) >= 200,000 decisions/s; (b) within 2x of the SQL baseline;
(c) >= 5,000 consent records/s on PostgreSQL.

    python bench/decide.py                       # SQLite and PostgreSQL, 100k subjects
    python bench/decide.py --backend sqlite --subjects 20000
"""

from __future__ import annotations

import argparse
import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from lawful.consent import ChoiceInput, DecisionLogging, Status, Topic
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.subjects import Keyring

POLICY = Path(__file__).resolve().parent.parent / "tests" / "consent" / "policy.yaml"
PG_ADMIN = os.environ.get("LAWFUL_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def timed(work: Callable[[], object], repeat: int = 3) -> float:
    """The best of `repeat` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def people(n: int) -> list[str]:
    return [f"email:person{i}@bench.example" for i in range(n)]


def run(url: str, label: str, n: int) -> None:
    print(f"\n== {label}: {n:,} subjects ==")
    keyring = Keyring.generate()
    policy = load_policy_text(POLICY.read_text(), str(POLICY))
    with Engine.open(
        policy, url, keyring=keyring, decision_logging=DecisionLogging(mode="off")
    ) as engine:
        consent = engine.consent
        consent.cache_ttl = 3600.0  # (a) measures warm state: nothing expires during the run
        everyone = people(n)

        # (c) consent writes: batches of 1,000 with the audit chain on.
        batch = 1000
        choices = [
            ChoiceInput(
                person, Topic.consent, "newsletter", Status.given if i % 4 else Status.withdrawn
            )
            for i, person in enumerate(everyone)
        ]
        start = time.perf_counter()
        for i in range(0, n, batch):
            consent.record_many(choices[i : i + batch])
        write_s = time.perf_counter() - start
        # The common write: choices of people already known (here: half withdraw).
        changes = [
            ChoiceInput(p, Topic.consent, "newsletter", Status.withdrawn) for p in everyone[::2]
        ]
        start = time.perf_counter()
        for i in range(0, len(changes), batch):
            consent.record_many(changes[i : i + batch])
        change_s = time.perf_counter() - start
        singles = people(n + 300)[n:]
        start = time.perf_counter()
        for person in singles:
            consent.give(person, "newsletter")
        single_s = time.perf_counter() - start
        raw_s = _raw_insert_baseline(engine, n, batch)
        raw_one_s = _raw_insert_baseline(engine, 300, 1) / 300
        print(
            f"(c) consent writes, record_many x{batch}: {n / write_s:>10,.0f} records/s"
            f"   raw INSERT baseline {n / raw_s:>10,.0f} rows/s   ratio {write_s / raw_s:.2f}x"
        )
        print(
            f"    consent writes, known subjects x{batch}: {len(changes) / change_s:>10,.0f} records/s"
            f"   ratio {change_s / len(changes) / (raw_s / n):.2f}x"
        )
        print(
            f"    consent writes, one give() per transaction: {len(singles) / single_s:>8,.0f} records/s"
            f"   raw one-row INSERT + commit {1 / raw_one_s:>8,.0f}/s"
        )
        assert [r.state for r in consent.history(everyone[2])] == [Status.given, Status.withdrawn]

        # (a) in-process decisions with warm state vs a dict of precomputed answers.
        warm = everyone[:10_000]
        answers = {(p, "newsletter"): consent.decide(p, "newsletter") for p in warm}
        calls = 500_000
        keys = [warm[i % len(warm)] for i in range(calls)]

        def lawful_decide() -> None:
            decide = consent.decide
            for p in keys:
                decide(p, "newsletter")

        def dict_lookup() -> None:
            get = answers.__getitem__
            for p in keys:
                get((p, "newsletter"))

        ours, base = timed(lawful_decide), timed(dict_lookup)
        print(
            f"(a) decide, in-process warm:     {calls / ours:>12,.0f} decisions/s"
            f"   dict baseline {calls / base:>12,.0f}/s   ratio {ours / base:.1f}x"
        )
        engine.consent.logging = DecisionLogging(mode="sample", rate=0.01)
        sampled = timed(lawful_decide)
        engine.consent.logging = DecisionLogging(mode="off")
        consent.flush()
        print(f"    with 1% of decisions audited: {calls / sampled:>10,.0f} decisions/s")

        # (b) decide_many over everyone vs one SQL query reading the same consent rows.
        def many() -> None:
            result = consent.decide_many(everyone, "newsletter")
            assert len(result) == n

        mark = "%s" if engine.store.engine.dialect.name == "postgresql" else "?"
        same_rows = (
            "SELECT i.hash, s.birth_date, s.jurisdiction, c.state, c.expires_at, c.policy_version "
            "FROM identities i JOIN subjects s ON s.id = i.subject_id "
            "LEFT JOIN consent_state c ON c.subject_id = s.id AND c.topic = 'consent' "
            f"AND c.key = 'newsletter' AND c.scope = '' WHERE i.controller_id = {mark}"
        )

        def sql_baseline() -> None:
            with engine.store.engine.connect() as conn:
                rows = conn.exec_driver_sql(same_rows, (consent.controller_id,)).all()
            assert len(rows) >= n

        hash_key = keyring.hash_key

        def sql_and_hashing() -> None:
            # What a hand-written job given the same emails must do: hash them, read once.
            digests = [
                hmac.digest(hash_key, f"email:{p[6:].lower()}".encode(), "sha256").hex()
                for p in everyone
            ]
            with engine.store.engine.connect() as conn:
                rows = conn.exec_driver_sql(same_rows, (consent.controller_id,)).all()
            by_hash = {row[0]: row for row in rows}
            assert sum(by_hash.get(d) is not None for d in digests) == n

        ours_many, base_many = timed(many), timed(sql_baseline)
        base_hashing = timed(sql_and_hashing)
        allowed = sum(d.allowed for d in consent.decide_many(everyone, "newsletter"))
        print(
            f"(b) decide_many over {n:,}:      {n / ours_many:>12,.0f} decisions/s"
            f"   SQL baseline {n / base_many:>12,.0f} rows/s   ratio {ours_many / base_many:.2f}x"
            f"   ({allowed:,} allowed)"
        )
        print(
            f"    vs the same query plus hashing the {n:,} emails: {n / base_hashing:>10,.0f}/s"
            f"   ratio {ours_many / base_hashing:.2f}x"
        )


def _raw_insert_baseline(engine: Engine, n: int, batch: int) -> float:
    """Multi-row INSERTs of n consent-like rows into a bare table, same driver."""
    table = sa.Table(
        f"bench_raw_{secrets.token_hex(4)}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.String(64)),
        sa.Column("purpose", sa.String(100)),
        sa.Column("state", sa.String(20)),
        sa.Column("at", sa.DateTime(timezone=True)),
    )
    table.create(engine.store.engine)
    try:
        now = sa.func.now()
        rows = [
            {"subject": f"{i:064x}", "purpose": "newsletter", "state": "given"} for i in range(n)
        ]
        start = time.perf_counter()
        for i in range(0, n, batch):
            with engine.store.engine.begin() as conn:
                conn.execute(sa.insert(table).values(at=now), rows[i : i + batch])
        return time.perf_counter() - start
    finally:
        table.drop(engine.store.engine)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--subjects", type=int, default=100_000)
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{folder}/bench.db", "SQLite", args.subjects)
    if args.backend in ("postgresql", "both"):
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"lawful_bench_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            run(
                admin.url.set(database=name).render_as_string(hide_password=False),
                "PostgreSQL",
                args.subjects,
            )
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.dispose()


if __name__ == "__main__":
    main()
