"""What sealing costs: encoding and decoding a patient's events with and without their data key, in one run.

    python3 dev.py bench encryption [--events 1000] [--rounds 5] [--database-url postgresql://...]

Writes, through the real handlers, a consultation of the given number of events (as the as_of bench does), reads
its stored events back, and times, over the same events in the same process: decoding each sealed event (open
with the patient's data key, then the JSON decode every event pays) against decoding its plain bytes; and
encoding each event sealed against plain. The data key comes from the keyring as in the service (unwrapped once,
then from memory). Prints microseconds per event (best of the rounds) and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from as_of import LOG_KEY, MASTER_KEY, seed  # noqa: E402
from infrastructure.bootstrap import bootstrap  # noqa: E402
from infrastructure.encryption import sealed_by  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402


def best_per_event(work: Callable[[], None], count: int, rounds: int) -> float:
    """Microseconds per event of the best round (the least disturbed by other work on the machine)."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        values: dict[str, object] = {"data_dir": Path(folder), "jwt_secret": "bench-" + uuid4().hex * 2, "password_hashing": "fast"}
        values.update(log_signing_key=LOG_KEY, master_key=MASTER_KEY)
        if args.database_url:
            values.update(database_url=args.database_url, database_schema=f"bench_sealing_{uuid4().hex[:8]}", pool_size=2)
        m = bootstrap(Settings(**values))
        try:
            consultation = seed(m, args.events)["consultation (large state)"]
            mapper = m.store.app.mapper
            stored = m.store.recorder.newer_events({UUID(consultation): 0})
            assert stored and all(sealed_by(s.state) for s in stored), "the consultation's events should be sealed"
            patient = sealed_by(stored[0].state)
            plain = [mapper.open(s) for s in stored]
            events: Sequence[Any] = [mapper.to_domain_event(s) for s in stored]
            n, rounds = len(stored), args.rounds
            figures = {
                "decode sealed": best_per_event(lambda: [mapper.to_domain_event(s) for s in stored], n, rounds),
                "decode plain": best_per_event(lambda: [mapper.to_domain_event(s) for s in plain], n, rounds),
                "encode sealed": best_per_event(lambda: [mapper.encode(e, patient) for e in events], n, rounds),
                "encode plain": best_per_event(lambda: [mapper.encode(e, None) for e in events], n, rounds),
            }
            size_sealed = sum(len(s.state) for s in stored) / n
            size_plain = sum(len(s.state) for s in plain) / n
        finally:
            m.close()
            if args.database_url:
                import psycopg

                with psycopg.connect(args.database_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{values["database_schema"]}" CASCADE')
    print(f"{n} events of one consultation, best of {rounds} rounds, {'PostgreSQL' if args.database_url else 'SQLite'}")
    for name, micros in figures.items():
        print(f"  {name:<14} {micros:7.1f} µs/event")
    print(f"  decode: sealed/plain = {figures['decode sealed'] / figures['decode plain']:.2f}; "
          f"encode: sealed/plain = {figures['encode sealed'] / figures['encode plain']:.2f}")
    print(f"  stored size: {size_sealed:.0f} bytes sealed, {size_plain:.0f} plain (+{size_sealed - size_plain:.0f})")


if __name__ == "__main__":
    main()
