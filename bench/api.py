"""Decisions per second over HTTP, as a ratio to the in-process rate measured in the same run.

The store holds `--subjects` people, half of whom consented to the newsletter. Then:

(a) in-process: `engine.decide(subject, "newsletter")` on random subjects for
    `--seconds`, warm cache (the rate an application embedding lawful gets);
(b) over HTTP: `lawful serve` (uvicorn, one process) on a free port, and `--clients`
    client processes, each one httpx.Client with keep-alive POSTing
    /api/v1/decisions one at a time for `--seconds`;
(c) over HTTP in batches: /api/v1/decisions/batch with `--batch` subjects a call.

Printed: decisions/s for each, and (b)/(a), (c)/(a).

    python bench/api.py                          # SQLite store, 10,000 subjects, 1 client
    python bench/api.py --clients 2 --seconds 10
    python bench/api.py --store postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lawful.api import ApiKeys
from lawful.consent import ChoiceInput, Status, Topic
from lawful.engine import Engine
from lawful.subjects import Keyring

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "shop" / "policy.yaml"


def people(n: int) -> list[str]:
    return [f"email:person{i}@bench.example" for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_process(engine: Engine, subjects: list[str], seconds: float) -> float:
    rng = random.Random(1)
    for s in subjects:  # warm the state cache, as a running service has it
        engine.decide(s, "newsletter")
    done = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(200):
            engine.decide(subjects[rng.randrange(len(subjects))], "newsletter")
        done += 200
    return done / seconds


def _client(
    url: str, token: str, subjects: list[str], seconds: float, batch: int, out: object
) -> None:
    """One client process: keep-alive, one call at a time; puts the decisions it got."""
    rng = random.Random(os.getpid())
    done = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if batch:
                chosen = [subjects[rng.randrange(len(subjects))] for _ in range(batch)]
                answer = c.post(
                    "/api/v1/decisions/batch", json={"subjects": chosen, "purpose": "newsletter"}
                )
                answer.raise_for_status()
                done += len(answer.json()["decisions"])
            else:
                subject = subjects[rng.randrange(len(subjects))]
                answer = c.post(
                    "/api/v1/decisions", json={"subject": subject, "purpose": "newsletter"}
                )
                answer.raise_for_status()
                done += 1
    out.put(done)  # type: ignore[attr-defined]


def over_http(
    url: str, token: str, subjects: list[str], seconds: float, clients: int, batch: int
) -> float:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [
        context.Process(target=_client, args=(url, token, subjects, seconds, batch, out))
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", help="Store URL (default: a fresh SQLite file)")
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="lawful-bench-api-"))
    store = args.store or f"sqlite:///{folder / 'lawful.db'}"
    keyring = folder / "lawful.keys"
    Keyring.generate().save(keyring)
    subjects = people(args.subjects)
    with Engine.open(POLICY, store, keyring=keyring) as engine:
        engine.consent.record_many(
            ChoiceInput(s, Topic.consent, "newsletter", Status.given) for s in subjects[::2]
        )
        _, token = ApiKeys(engine.store, engine.policy.key, engine.policy.controller.name).create(
            "service", name="bench"
        )
        local = in_process(engine, subjects, args.seconds)
    print(f"store: {store.split('://')[0]}, {args.subjects:,} subjects, {os.cpu_count()} CPUs")
    print(f"(a) in-process decide:            {local:>10,.0f} decisions/s")

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lawful.api",
            "serve",
            "--port",
            str(port),
            "--no-worker",
            "--policy",
            str(POLICY),
            "--store",
            store,
            "--keyring",
            str(keyring),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("lawful serve did not start") from None
                time.sleep(0.1)
        over_http(url, token, subjects, 1.0, 1, 0)  # warm the server's cache and connections
        single = over_http(url, token, subjects, args.seconds, args.clients, 0)
        batched = over_http(url, token, subjects, args.seconds, args.clients, args.batch)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    print(
        f"(b) HTTP, one per call, {args.clients} client(s): {single:>10,.0f} decisions/s"
        f"   ratio to (a): {single / local:.4f} (1/{local / single:,.0f})"
    )
    print(
        f"(c) HTTP, {args.batch} per call:             {batched:>10,.0f} decisions/s"
        f"   ratio to (a): {batched / local:.4f}"
    )


if __name__ == "__main__":
    main()
