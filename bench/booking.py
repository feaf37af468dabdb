"""Booking benchmark on PostgreSQL, shaped like real traffic, with its ceilings measured in the same run.

    python3 dev.py bench [--clients 16] [--seconds 20] [--workers 2] [--doctors 8] [--server-root DIR]

A front end's clients share a pool of keep-alive connections, so one doctor's bookings reach every API worker:
each of 16 clients takes the next booking (a slot of one of 8 shared doctors, a patient of 640) and any free
connection of the pool. The projector runs as its own process all along. Printed, from one run:
- raw single-row INSERT commits/s over as many connections (the database's ceiling);
- a bare endpoint on the same server stack (uvicorn, FastAPI, one INSERT per request) under the same load;
- Medledger bookings/s with p50/p95/p99, and their ratios to both ceilings;
- CPU per booking by process (API workers, projector, PostgreSQL, load generator), projector CPU per event
  and its lag (p50/p99, in ms) while the load runs;
- the hot stream: 16 clients booking one doctor's day, day after day;
- one client booking for a doctor with 10,000 past bookings beside a new doctor.
--server-root runs the servers from another checkout (to measure an older design with the same load).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import base64
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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
LOG_KEY = base64.b64encode(os.urandom(32)).decode()
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()  # wraps the bench patients' data keys
PATIENTS_PER_CLIENT = 40
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLINIC_HOURS = WeeklyAvailability("UTC", 15, {d: ((clock_time(8), clock_time(18)),) for d in EVERY_DAY})
ROUND_THE_CLOCK = WeeklyAvailability("UTC", 5, {d: ((clock_time(0), clock_time(23, 55)),) for d in EVERY_DAY})
TICKS = os.sysconf("SC_CLK_TCK")


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


Request = tuple[bytes, str]


def server_pids(port: int) -> dict[int, int]:
    """Which server process holds each established connection to the port, by the client's local port (from ss)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True).stdout
    held: dict[int, int] = {}
    for line in out.splitlines():
        parts = line.split()
        peer = next((p for p in parts if p.startswith("127.0.0.1:") and not p.endswith(f":{port}")), None)
        pid = next((p.split("pid=")[1].split(",")[0] for p in parts if "pid=" in p), None)
        if peer and pid:
            held[int(peer.rsplit(":", 1)[1])] = int(pid)
    return held


async def spread_pool(port: int, connections: int, workers: int) -> list[Connection]:
    """Opens the pool's connections so that each server worker holds its share: a burst of connects is often
    accepted by one worker alone, which would hide the cross-worker traffic a real front end sends."""
    opened: list[Connection] = []
    for _ in range(connections * 20):
        while len(opened) < connections:
            conn = Connection(port)
            await conn.open()
            opened.append(conn)
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.05)
        by_worker = _by_worker(port, opened)
        sizes = [len(held) for held in by_worker.values()]
        if 0 not in by_worker and len(by_worker) >= min(workers, connections) and max(sizes) - min(sizes) <= 1:
            break
        extra = max(by_worker.values(), key=len).pop()
        extra.writer.close()
        opened.remove(extra)
    return opened


def _by_worker(port: int, opened: list[Connection]) -> dict[int, list[Connection]]:
    held = server_pids(port)
    by_worker: dict[int, list[Connection]] = {}
    for conn in opened:
        by_worker.setdefault(held.get(conn.writer.get_extra_info("sockname")[1], 0), []).append(conn)
    return by_worker


async def load(
    port: int, path: str, seconds: float, work: Iterator[Request], clients: int, connections: int, workers: int = 1
) -> Run:
    """`clients` concurrent clients take the next request of `work` and any free connection of a shared pool,
    whose connections are spread over the server's workers."""
    return await load_paths(port, seconds, ((path, body, token) for body, token in work), clients, connections, workers)


async def load_paths(
    port: int, seconds: float, work: Iterator[tuple[str, bytes, str]], clients: int, connections: int, workers: int = 1
) -> Run:
    """Like load, each request naming its own path."""
    run = Run()
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    opened = await spread_pool(port, connections, workers)
    for conn in opened:
        pool.put_nowait(conn)
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        for path, body, token in work:
            if time.perf_counter() >= stop_at:
                return
            conn = await pool.get()
            began = time.perf_counter()
            status, _ = await conn.post(path, body, token)
            run.latencies.append(time.perf_counter() - began)
            run.statuses[status] = run.statuses.get(status, 0) + 1
            pool.put_nowait(conn)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    run.elapsed = time.perf_counter() - began
    for conn in opened:
        conn.writer.close()
    return run


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


def start_server(target: str, port: int, workers: int, env: dict[str, str], root: Path = ROOT) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "uvicorn"), target, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
    ]
    process = subprocess.Popen(command, cwd=root, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    wait_for_port(port)
    return process


def start_projector(env: dict[str, str], root: Path = ROOT) -> subprocess.Popen[bytes]:
    code = "from infrastructure.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "projector"], cwd=root, env={**os.environ, **env, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


# CPU accounting from /proc: every process's user + system time, by role


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_by_role(server: subprocess.Popen[bytes], projector: subprocess.Popen[bytes]) -> dict[str, float]:
    return {
        "API workers": sum(_cpu_seconds(p) for p in [server.pid, *_children(server.pid)]),
        "projector": _cpu_seconds(projector.pid),
        "PostgreSQL": sum(_cpu_seconds(p) for p in _postgres_pids()),
        "load generator": _cpu_seconds(os.getpid()),
    }


class LagSampler:
    """Samples the log's end and the slowest read model's position; lag = how long until a position is applied."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn, self.schema = dsn, schema
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                end = conn.execute(f'SELECT coalesce(max(notification_id), 0) FROM "{self.schema}".clinic_events').fetchone()[0]
                reached = conn.execute(f'SELECT coalesce(min(position), 0) FROM "{self.schema}".projection_positions').fetchone()[0]
                self.samples.append((time.perf_counter(), end, reached))
                time.sleep(0.02)

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def lags_ms(self) -> list[float]:
        lags = []
        for i, (at, end, _) in enumerate(self.samples):
            caught = next((t for t, _, reached in self.samples[i:] if reached >= end), None)
            if caught is not None:
                lags.append((caught - at) * 1000)
        return lags

    def applied(self) -> int:
        return self.samples[-1][2] - self.samples[0][2] if len(self.samples) > 1 else 0


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


def slots_from(availability: WeeklyAvailability, first: datetime, days: int) -> Iterator[list[datetime]]:
    """Each day's slot starts, from the day after `first`."""
    day = first.date() + timedelta(days=1)
    for _ in range(days):
        yield [start for start, _ in availability.slots_on(day)]
        day += timedelta(days=1)


def open_doctor(m: Medledger, name: str, availability: WeeklyAvailability = CLINIC_HOURS) -> str:
    email = f"{name.replace(' ', '-').lower()}-{uuid4().hex[:8]}@bench.medledger.example"
    profile = {"name": name, "specialization": "General practice", "licence_number": "B-0001", "consultation_fee": "50.00", "bio": ""}
    accounts.create_account(m.services, accounts.CreateAccount(email, "bench-password", Role.DOCTOR, profile), OPERATOR)
    doctor_id = m.store.find(accounts.Account, accounts.Account.create_id(email)).profile_id
    profiles.set_availability(m.services, profiles.SetAvailability(doctor_id, availability), OPERATOR)
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
    past = datetime.now(timezone.utc) - timedelta(days=count // 40 + 30)
    days = [day for day in slots_from(CLINIC_HOURS, past, count // 40 + 1)]
    cursor = {"now": past}
    clocked = bootstrap(m.settings, clock=lambda: cursor["now"])
    lanes: list[list[tuple[int, datetime]]] = [[] for _ in range(8)]
    index = 0
    for lane, day in enumerate(days):
        for start in day:
            if index < count:
                lanes[lane % len(lanes)].append((index, start))
                index += 1

    def book_lane(lane: list[tuple[int, datetime]]) -> None:
        for i, start in lane:
            cmd = appointments.BookAppointment(doctor_id, patients[i % len(patients)], start)
            appointments.book_appointment(clocked.services, cmd, OPERATOR)

    try:
        threads = [threading.Thread(target=book_lane, args=(lane,)) for lane in lanes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        clocked.close()


def bookings(doctors: list[str], availability: WeeklyAvailability, first: datetime, patients: list[tuple[str, str]]) -> Iterator[Request]:
    """Slot after slot, each of the doctors in turn (so concurrent requests hit the same doctor's day), each
    booking for a different patient than the other bookings of that time."""
    k = 0
    for day in slots_from(availability, first, 100_000):
        for start in day:
            for doctor_id in doctors:
                _, token = patients[k % len(patients)]
                k += 1
                yield json.dumps({"doctor_id": doctor_id, "start": start.isoformat()}).encode(), token


def shared(work: Iterator[Request]) -> Iterator[Request]:
    """One iterator the clients draw from in turn (asyncio runs them on one thread, so no lock is needed)."""
    return iter(work)


def report(label: str, run: Run) -> None:
    codes = ", ".join(f"{status}: {n}" for status, n in sorted(run.statuses.items()))
    print(
        f"{label:38} {run.rate:8.0f}/s   p50 {run.percentile(50):6.1f} ms   p95 {run.percentile(95):6.1f} ms"
        f"   p99 {run.percentile(99):6.1f} ms   ({codes})",
        flush=True,
    )


def worker_spread(port: int) -> str:
    """How the pool's connections are spread over the API workers (from ss)."""
    pids = list(server_pids(port).values())
    counts = {pid: pids.count(pid) for pid in sorted(set(pids))}
    return ", ".join(f"worker {n + 1}: {c}" for n, c in enumerate(counts.values())) or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections in the clients' shared pool")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--doctors", type=int, default=8, help="doctors the clients share")
    parser.add_argument("--hot-seconds", type=float, default=10)
    parser.add_argument("--history", type=int, default=10_000, help="past bookings of the veteran doctor")
    parser.add_argument("--skip-ceilings", action="store_true", help="skip the raw INSERT and bare endpoint runs")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="checkout to run the API and projector from")
    parser.add_argument("--database-url", default=os.environ.get("MEDLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("MEDLEDGER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schema afterwards")
    args = parser.parse_args()

    schema = f"bench_{uuid4().hex[:10]}"
    settings = Settings(
        database_url=args.database_url, database_schema=schema, redis_url=args.redis_url, redis_prefix=schema,
        jwt_secret=SECRET, log_signing_key=LOG_KEY, master_key=MASTER_KEY, password_hashing="fast", projector="external", pool_size=4,
    )
    env = {
        "MEDLEDGER_DATABASE_URL": args.database_url, "MEDLEDGER_DATABASE_SCHEMA": schema, "MEDLEDGER_REDIS_URL": args.redis_url,
        "MEDLEDGER_REDIS_PREFIX": schema, "MEDLEDGER_JWT_SECRET": SECRET, "MEDLEDGER_LOG_SIGNING_KEY": LOG_KEY, "MEDLEDGER_MASTER_KEY": MASTER_KEY, "MEDLEDGER_PROJECTOR": "external",
        "MEDLEDGER_WRITE_RATE_LIMIT": "100000/minute",  # counted as in production, never reached by the load
    }
    dsn = args.database_url
    bare_table = f"{schema}.bare_inserts"
    root = args.server_root.resolve()
    print(
        f"Medledger booking benchmark: {args.clients} clients over {args.connections} shared connections, {args.doctors} shared "
        f"doctors, {args.seconds:.0f} s, {args.workers} workers, projector process, schema {schema}, servers from {root}",
        flush=True,
    )
    m = bootstrap(settings)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {bare_table} (id BIGSERIAL PRIMARY KEY, doctor_id UUID, start TIMESTAMPTZ)")

        print("seeding doctors and patients ...", flush=True)
        doctors = [open_doctor(m, f"Dr Bench {i}") for i in range(args.doctors)]
        hot_doctor = open_doctor(m, "Dr Hot", ROUND_THE_CLOCK)
        patients = [open_patient(m, i) for i in range(args.clients * PATIENTS_PER_CLIENT)]
        veteran, newcomer = open_doctor(m, "Dr Veteran"), open_doctor(m, "Dr Newcomer")
        print(f"giving Dr Veteran {args.history} past bookings ...", flush=True)
        book_history(m, veteran, [p for p, _ in patients], args.history)
        m.projection.run_once()
        tomorrow = datetime.now(timezone.utc)

        def clinic_load(port: int, path: str, seconds: float, first: datetime) -> Run:
            work = shared(bookings(doctors, CLINIC_HOURS, first, patients))
            return asyncio.run(load(port, path, seconds, work, args.clients, args.connections, args.workers))

        bare_run = None
        raw = None
        if not args.skip_ceilings:
            raw = raw_insert_ceiling(dsn, bare_table, args.clients, min(args.seconds, 10))
            print(f"{'raw INSERT commits, ' + str(args.clients) + ' connections':38} {raw:8.0f}/s", flush=True)
            port = free_port()
            bare = start_server("bench.bare_app:create_app", port, args.workers, {"BENCH_BARE_DSN": dsn, "BENCH_BARE_TABLE": bare_table})
            try:
                clinic_load(port, "/bare", 2, tomorrow + timedelta(days=900))
                bare_run = clinic_load(port, "/bare", args.seconds, tomorrow + timedelta(days=1000))
            finally:
                stop(bare)
            report("bare endpoint (1 INSERT/request)", bare_run)

        port = free_port()
        projector = start_projector(env, root)
        server = start_server("api.app:create_app", port, args.workers, env, root)
        try:
            clinic_load(port, "/appointments", 3, tomorrow + timedelta(days=3000))
            spread: list[str] = []
            sampler = threading.Timer(min(2.0, args.seconds / 2), lambda: spread.append(worker_spread(port)))
            sampler.daemon = True
            before = cpu_by_role(server, projector)
            with LagSampler(dsn, schema) as lag:
                sampler.start()
                booking = clinic_load(port, "/appointments", args.seconds, tomorrow)
            after = cpu_by_role(server, projector)
            report("bookings (shared doctors)", booking)
            print(f"{'  connections per API worker':38} {spread[0] if spread else 'unknown'}")
            if raw and bare_run:
                print(f"{'  ratio to raw INSERT commits':38} {booking.rate / raw:8.0%}")
                print(f"{'  ratio to bare endpoint':38} {booking.rate / bare_run.rate:8.0%}")
            booked = booking.ok
            for role in before:
                used = after[role] - before[role]
                print(f"{'  CPU per booking, ' + role:38} {used / max(booked, 1) * 1000:8.2f} ms")
            lags = lag.lags_ms()
            applied = lag.applied()
            projector_cpu = after["projector"] - before["projector"]
            print(f"{'  projector CPU per event':38} {projector_cpu / max(applied, 1) * 1e6:8.0f} µs ({applied} events applied)")
            if lags:
                ordered = sorted(lags)
                print(f"{'  projector lag':38} p50 {statistics.median(ordered):6.0f} ms   p99 {ordered[int(0.99 * (len(ordered) - 1))]:6.0f} ms")

            hot_work = shared(
                (json.dumps({"doctor_id": hot_doctor, "start": start.isoformat()}).encode(), patients[k % len(patients)][1])
                for k, start in enumerate(itertools.chain.from_iterable(slots_from(ROUND_THE_CLOCK, tomorrow + timedelta(days=200), 10_000)))
            )
            hot = asyncio.run(load(port, "/appointments", args.hot_seconds, hot_work, args.clients, args.connections, args.workers))
            report("hot stream (one doctor's day)", hot)

            far = datetime.now(timezone.utc) + timedelta(days=1500)
            new_run = asyncio.run(load(port, "/appointments", 3600, shared(itertools.islice(bookings([newcomer], CLINIC_HOURS, far, patients), 300)), 1, 1))
            old_run = asyncio.run(load(port, "/appointments", 3600, shared(itertools.islice(bookings([veteran], CLINIC_HOURS, far + timedelta(days=60), patients), 300)), 1, 1))
            report("new doctor, 1 client", new_run)
            report(f"doctor with {args.history} past bookings", old_run)
        finally:
            stop(server)
            stop(projector)
    finally:
        m.close()
        if not args.keep:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
