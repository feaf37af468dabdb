"""Booking benchmark on PostgreSQL: throughput and latency over HTTP, beside two ceilings measured in the same run.

    python3 dev.py bench [--clients 16] [--seconds 20] [--workers 2]

Prints bookings/s with p50/p95/p99, the database's raw single-row INSERT commits/s over the same number of
connections, a bare endpoint on the same server stack (one INSERT per request), the ratios to both, and the
booking latency of a doctor with 10,000 past bookings beside a new doctor's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commands import accounts, appointments, profiles  # noqa: E402
from commands.base import Actor  # noqa: E402
from domain.doctors import WeeklyAvailability  # noqa: E402
from domain.shared import Role  # noqa: E402
from infrastructure.bootstrap import Medledger, bootstrap  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

OPERATOR = Actor("bench", Role.ADMIN, None, "bench")
SECRET = "bench-secret-" + uuid4().hex
PATIENTS_PER_CLIENT = 40
WORKDAY = {d: ((clock_time(8), clock_time(18)),) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
AVAILABILITY = WeeklyAvailability(timezone="UTC", slot_minutes=20, periods=WORKDAY)


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


# A tiny HTTP/1.1 keep-alive client: the load generator shares the 2 cores with the server,
# so it must cost far less per request than the server does.


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes, token: str) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def start_server(target: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "uvicorn"), target, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    wait_for_port(port)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


async def load(port: int, path: str, seconds: float, requests: list[list[tuple[bytes, str]]]) -> Run:
    """One coroutine per client, each on its own keep-alive connection, working down its own request list."""
    run = Run()
    stop_at = time.perf_counter() + seconds

    async def client(queue: list[tuple[bytes, str]]) -> None:
        conn = Connection(port)
        await conn.open()
        for body, token in queue:
            if time.perf_counter() >= stop_at:
                break
            began = time.perf_counter()
            status, _ = await conn.post(path, body, token)
            run.latencies.append(time.perf_counter() - began)
            run.statuses[status] = run.statuses.get(status, 0) + 1
        conn.writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(queue) for queue in requests))
    run.elapsed = time.perf_counter() - began
    return run


def raw_insert_ceiling(dsn: str, table: str, connections: int, seconds: float) -> float:
    counts = [0] * connections
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while time.perf_counter() < stop_at:
                conn.execute(f"INSERT INTO {table} (doctor_id, start) VALUES (%s, %s)", (uuid4(), datetime.now(timezone.utc)))
                counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def future_slots(first_day: datetime, count: int) -> list[datetime]:
    slots: list[datetime] = []
    day = first_day.date()
    while len(slots) < count:
        slots += [start for start, _ in AVAILABILITY.slots_on(day)]
        day += timedelta(days=1)
    return slots[:count]


def open_doctor(m: Medledger, name: str) -> str:
    email = f"{name}-{uuid4().hex[:8]}@bench.medledger.example"
    profile = {"name": name, "specialization": "General practice", "licence_number": "B-0001", "consultation_fee": "50.00", "bio": ""}
    accounts.create_account(m.services, accounts.CreateAccount(email, "bench-password", Role.DOCTOR, profile), OPERATOR)
    doctor_id = m.store.find(accounts.Account, accounts.Account.create_id(email)).profile_id
    profiles.set_availability(m.services, profiles.SetAvailability(doctor_id, AVAILABILITY), OPERATOR)
    return doctor_id


def open_patient(m: Medledger, index: int) -> tuple[str, str]:
    """A patient and an access token for them, issued through a real login."""
    email = f"patient{index}-{uuid4().hex[:8]}@bench.medledger.example"
    profile = {"full_name": f"Bench Patient {index}", "date_of_birth": "1980-01-01", "sex": "unknown", "phone": "+44 20 0000 0000"}
    accounts.create_account(m.services, accounts.CreateAccount(email, "bench-password", Role.PATIENT, profile), OPERATOR)
    grant = accounts.log_in(m.services, accounts.LogIn(email, "bench-password"), "bench")
    return grant.profile_id or "", m.tokens.issue(grant, datetime.now(timezone.utc)).access_token


def book_history(m: Medledger, doctor_id: str, patients: list[str], count: int) -> None:
    """Gives a doctor `count` past bookings by booking them while the clock stood in the past."""
    now = datetime.now(timezone.utc)
    past = now - timedelta(days=count // 30 + 30)
    slots = future_slots(past + timedelta(days=1), count)
    cursor = {"now": past}
    clocked = bootstrap(m.settings, clock=lambda: cursor["now"])
    by_day: dict[object, list[tuple[int, datetime]]] = {}
    for index, start in enumerate(slots):
        by_day.setdefault(start.date(), []).append((index, start))
    lanes: list[list[tuple[int, datetime]]] = [[] for _ in range(16)]
    for lane, day_slots in enumerate(by_day.values()):
        lanes[lane % len(lanes)] += day_slots

    def book_lane(lane: list[tuple[int, datetime]]) -> None:
        for index, start in lane:
            cmd = appointments.BookAppointment(doctor_id, patients[index % len(patients)], start)
            appointments.book_appointment(clocked.services, cmd, OPERATOR)

    try:
        threads = [threading.Thread(target=book_lane, args=(lane,)) for lane in lanes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        clocked.close()


async def sequential(port: int, doctor_id: str, tokens: list[tuple[str, str]], slots: list[datetime]) -> Run:
    queue = [
        (json.dumps({"doctor_id": doctor_id, "start": start.isoformat()}).encode(), tokens[i % len(tokens)][1])
        for i, start in enumerate(slots)
    ]
    return await load(port, "/appointments", 3600, [queue])


def report(label: str, run: Run) -> None:
    codes = ", ".join(f"{status}: {n}" for status, n in sorted(run.statuses.items()))
    print(
        f"{label:34} {run.rate:8.0f}/s   p50 {run.percentile(50):6.1f} ms   p95 {run.percentile(95):6.1f} ms"
        f"   p99 {run.percentile(99):6.1f} ms   ({codes})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--history", type=int, default=10_000, help="past bookings of the veteran doctor")
    parser.add_argument("--database-url", default=os.environ.get("MEDLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("MEDLEDGER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schema afterwards")
    args = parser.parse_args()

    schema = f"bench_{uuid4().hex[:10]}"
    settings = Settings(
        database_url=args.database_url, database_schema=schema, redis_url=args.redis_url, redis_prefix=schema,
        jwt_secret=SECRET, password_hashing="fast", projector="external",
    )
    env = {
        "MEDLEDGER_DATABASE_URL": args.database_url, "MEDLEDGER_DATABASE_SCHEMA": schema, "MEDLEDGER_REDIS_URL": args.redis_url,
        "MEDLEDGER_REDIS_PREFIX": schema, "MEDLEDGER_JWT_SECRET": SECRET, "MEDLEDGER_PROJECTOR": "external",
        "MEDLEDGER_WRITE_RATE_LIMIT": "100000/minute",  # counted as in production, never reached by the load
    }
    dsn = args.database_url
    bare_table = f"{schema}.bare_inserts"
    print(f"Medledger booking benchmark: {args.clients} clients, {args.seconds:.0f} s, {args.workers} workers, schema {schema}")
    m = bootstrap(settings)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {bare_table} (id BIGSERIAL PRIMARY KEY, doctor_id UUID, start TIMESTAMPTZ)")

        print("seeding doctors and patients ...", flush=True)
        doctors = [open_doctor(m, f"Dr Bench {i}") for i in range(args.clients)]
        tokens = [open_patient(m, i) for i in range(args.clients * PATIENTS_PER_CLIENT)]
        veteran, newcomer = open_doctor(m, "Dr Veteran"), open_doctor(m, "Dr Newcomer")
        print(f"giving Dr Veteran {args.history} past bookings ...", flush=True)
        book_history(m, veteran, [p for p, _ in tokens], args.history)
        m.projection.run_once()

        raw = raw_insert_ceiling(dsn, bare_table, args.clients, min(args.seconds, 10))
        print(f"{'raw INSERT commits, ' + str(args.clients) + ' connections':34} {raw:8.0f}/s")

        per_client = int(args.seconds * 4000 / args.clients) + 100
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
        slots = future_slots(tomorrow, per_client)

        def queues() -> list[list[tuple[bytes, str]]]:
            result = []
            for c, doctor_id in enumerate(doctors):
                mine = tokens[c * PATIENTS_PER_CLIENT : (c + 1) * PATIENTS_PER_CLIENT]
                result.append([
                    (json.dumps({"doctor_id": doctor_id, "start": start.isoformat()}).encode(), mine[i % len(mine)][1])
                    for i, start in enumerate(slots)
                ])
            return result

        port = free_port()
        bare = start_server("bench.bare_app:create_app", port, args.workers, {"BENCH_BARE_DSN": dsn, "BENCH_BARE_TABLE": bare_table})
        try:
            asyncio.run(load(port, "/bare", 2, queues()))
            bare_run = asyncio.run(load(port, "/bare", args.seconds, queues()))
        finally:
            stop(bare)
        report("bare endpoint (1 INSERT/request)", bare_run)

        port = free_port()
        server = start_server("api.app:create_app", port, args.workers, env)
        try:
            warm = [[q[-1]] for q in queues()]
            asyncio.run(load(port, "/appointments", 5, warm))
            booking = asyncio.run(load(port, "/appointments", args.seconds, [q[:-1] for q in queues()]))
            report("bookings", booking)
            print(f"{'  ratio to raw INSERT commits':34} {booking.rate / raw:8.0%}")
            print(f"{'  ratio to bare endpoint':34} {booking.rate / bare_run.rate:8.0%}")

            far = datetime.now(timezone.utc) + timedelta(days=400)
            new_run = asyncio.run(sequential(port, newcomer, tokens, future_slots(far, 300)))
            old_run = asyncio.run(sequential(port, veteran, tokens, future_slots(far + timedelta(days=60), 300)))
            report("new doctor, 1 client", new_run)
            report(f"doctor with {args.history} past bookings", old_run)
        finally:
            stop(server)
        began = time.perf_counter()
        covered = m.projection.run_once()
        took = time.perf_counter() - began
        print(f"{'projector catch-up afterwards':34} {covered / took:8.0f} notifications/s ({covered} in {took:.1f} s)")
    finally:
        m.close()
        if not args.keep:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
