"""Per-request cost of deciding whether an access token may act, from the event store, beside a Redis lookup.

    python3 dev.py bench session_check [--checks 2000] [--rotations 100]

Seeds one patient on PostgreSQL (a throw-away schema) and on SQLite (a temporary folder), logs in, and times
`check_access` (read the Session and the Account streams at their latest recorded version, decide) for a fresh
session and for one rotated `--rotations` times (a session refreshed every 15 minutes for a day has ~100
events). Beside it, the lookup the Redis path used to make per request (one MGET of three keys, sync and async).
Prints microseconds per check (mean and p99) from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import psycopg
import redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commands import accounts  # noqa: E402
from commands.accounts import AccessClaims  # noqa: E402
from commands.base import Actor  # noqa: E402
from domain.shared import Role  # noqa: E402
from infrastructure.bootstrap import Medledger, bootstrap  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
LOG_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # a fixed Ed25519 key for tree heads nobody keeps
MASTER_KEY = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="  # a fixed master key for data keys nobody keeps
OPERATOR = Actor("bench-operator", Role.ADMIN, None, "bench")
PASSWORD = "correct-horse-battery"


def timed(check: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(100, n)):
        check()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        check()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.fmean(samples), samples[int(len(samples) * 0.99) - 1]


def report(label: str, figures: tuple[float, float]) -> None:
    print(f"{label:58} {figures[0]:8.0f} µs/check   p99 {figures[1]:8.0f} µs", flush=True)


def logged_in(m: Medledger, rotations: int) -> AccessClaims:
    email = f"bench-{uuid4().hex[:10]}@example.com"
    profile = {"full_name": "Bench Patient", "date_of_birth": "1980-01-01", "sex": "female", "phone": "+44 20 7946 0000"}
    accounts.create_account(m.services, accounts.CreateAccount(email, PASSWORD, Role.PATIENT, profile), OPERATOR)
    grant = accounts.log_in(m.services, accounts.LogIn(email, PASSWORD), "bench")
    for _ in range(rotations):
        grant = accounts.refresh_session(m.services, accounts.RefreshSession(grant.session_id, grant.refresh_token_id), "bench")
    return m.tokens.access_claims(m.tokens.issue(grant, m.services.clock()).access_token)


def bench_store(label: str, settings: Settings, checks: int, rotations: int) -> None:
    m = bootstrap(settings)
    try:
        for turns in (0, rotations):
            claims = logged_in(m, turns)
            report(f"{label}, session of {turns + 1} events", timed(lambda c=claims: accounts.check_access(m.store, c), checks))
    finally:
        m.close()


def bench_redis(url: str, checks: int) -> None:
    prefix = f"bench-{uuid4().hex[:10]}"
    keys = [f"{prefix}:revoked-session:s", f"{prefix}:disabled-account:a", f"{prefix}:account-role:a"]
    client = redis.Redis.from_url(url)
    report("Redis MGET of 3 keys (the old path), sync", timed(lambda: client.mget(*keys), checks))

    async def run() -> tuple[float, float]:
        async_client = aioredis.Redis.from_url(url)
        samples = []
        for i in range(checks + 100):
            started = time.perf_counter()
            await async_client.mget(*keys)
            if i >= 100:
                samples.append((time.perf_counter() - started) * 1e6)
        await async_client.aclose()
        samples.sort()
        return statistics.fmean(samples), samples[int(len(samples) * 0.99) - 1]

    report("Redis MGET of 3 keys (the old path), async", asyncio.run(run()))
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--rotations", type=int, default=100)
    parser.add_argument("--database-url", default=os.environ.get("MEDLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("MEDLEDGER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    schema = f"bench_{uuid4().hex[:10]}"
    try:
        bench_store(
            "event store, PostgreSQL",
            Settings(database_url=args.database_url, database_schema=schema, jwt_secret=SECRET, log_signing_key=LOG_KEY, master_key=MASTER_KEY, password_hashing="fast", pool_size=2),
            args.checks,
            args.rotations,
        )
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    with tempfile.TemporaryDirectory() as folder:
        bench_store(
            "event store, SQLite",
            Settings(data_dir=Path(folder), jwt_secret=SECRET, password_hashing="fast"),
            args.checks,
            args.rotations,
        )
    bench_redis(args.redis_url, args.checks)


if __name__ == "__main__":
    main()
