"""Tamper evidence at scale: `verify` rate, inclusion and consistency proof times over a large PostgreSQL store.

    python3 dev.py bench verify [--events 1000000] [--streams 100000] [--database-url URL] [--keep]

Seeds `--events` stored events (`--streams` streams, versions in order, ~250-byte states) straight into a
throw-away schema's events table with COPY, appends them all to the transparency log (the projector loop's own
code, in batches of 10,000), signs a head, then prints: the log's build rate, the verify walk's rate (every
event read raw, its leaf and the root recomputed, compared with the logged leaves and the head), and the time of
an inclusion proof for one event and of a consistency proof (each with its connection checkout, p50/p99 over
random positions and sizes). Figures from one run; nothing asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infrastructure.bootstrap import bootstrap  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from infrastructure.transparency import verify_store  # noqa: E402

SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
LOG_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # a fixed Ed25519 key for tree heads nobody keeps
MASTER_KEY = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="  # a fixed master key for data keys nobody keeps
TOPIC = "medledger.appointment.AppointmentBooked.v1"


def seed(dsn: str, schema: str, table: str, events: int, streams: int) -> float:
    ids = [uuid4() for _ in range(streams)]
    filler = os.urandom(200).hex()[:200]
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        with cursor.copy(f'COPY "{schema}"."{table}" (originator_id, originator_version, topic, state) FROM STDIN') as copy:
            for n in range(events):
                version, stream = divmod(n, streams)
                state = f'{{"n":{n},"by":"bench","note":"{filler}"}}'.encode()
                copy.write_row((ids[stream], version + 1, TOPIC, state))
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    return f"p50 {statistics.median(samples):.2f} ms, p99 {samples[max(0, int(len(samples) * 0.99) - 1)]:.2f} ms"


def timed(action: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=1000, help="proofs timed of each kind")
    parser.add_argument("--database-url", default=os.environ.get("MEDLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schema afterwards")
    args = parser.parse_args()

    schema = f"bench_{uuid4().hex[:10]}"
    settings = Settings(
        database_url=args.database_url, database_schema=schema, jwt_secret=SECRET, log_signing_key=LOG_KEY, master_key=MASTER_KEY,
        password_hashing="fast", projector="external", pool_size=2,
    )
    print(f"Medledger verify benchmark: {args.events:,} events in {args.streams:,} streams, schema {schema}", flush=True)
    system = bootstrap(settings)
    try:
        log = system.transparency
        seconds = seed(args.database_url, schema, system.store.recorder.events_table_name, args.events, args.streams)
        print(f"seeded with COPY in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)", flush=True)

        started = time.perf_counter()
        end = system.store.max_position()
        while log.append(end, batch=10_000):
            pass
        seconds = time.perf_counter() - started
        head, _ = log.sign_head()
        print(f"transparency log built in {seconds:.1f} s ({head.tree_size / seconds:,.0f} events/s), head of {head.tree_size:,}", flush=True)

        started = time.perf_counter()
        report = verify_store(log.read_events, system.write_engine, log.public_key, [head])
        seconds = time.perf_counter() - started
        assert report.clean and report.events == args.events, report.finding
        print(f"verify: {report.events:,} events in {seconds:.1f} s = {report.events / seconds:,.0f} events/s (head checked)", flush=True)

        size = head.tree_size
        rng = random.Random(9162)

        def inclusion() -> None:
            with system.read_engine.connect() as conn:
                log.inclusion(conn, rng.randint(1, size), size)

        def consistency() -> None:
            first = rng.randint(1, size)
            with system.read_engine.connect() as conn:
                log.consistency(conn, first, rng.randint(first, size))

        timed(inclusion, 50)
        print(f"inclusion proof for one event in {size:,}: {percentiles(timed(inclusion, args.proofs))}", flush=True)
        print(f"consistency proof between two sizes:      {percentiles(timed(consistency, args.proofs))}", flush=True)
    finally:
        system.close()
        if not args.keep:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
