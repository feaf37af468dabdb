"""Billing benchmark on PostgreSQL: payments recorded over HTTP, and a patient's statement and the receivables
for a clinic with 100,000 invoices, with ceilings measured in the same run.

    python3 dev.py bench billing --invoices 100000   # the figures the README states; the default, 20000, ran in 7.5 minutes
    options: [--invoices 20000] [--payable 2000] [--patients 5000] [--clients 16] [--seconds 20] [--requests 200] [--project-all]

Seeds a clinic in a throw-away schema: an admin and a price list through the commands, patients with their accounts
and the invoices written straight into the store, BATCH aggregates per save(), as the commands would save them (a
draft of one or two lines, issued under the clinic's gapless numbers; a payment and its claimed reference when paid).
First the patients and --payable unpaid invoices, which the projector process projects from scratch (printed: how
long, events/s); then, after the payments load, the rest of the --invoices: issue dates spread over the past 150 days
so that every aging bucket has invoices; 40% unpaid, 30% partly paid, 30% paid. Their billing rows are written by the
billing projector's own InvoiceRecords.write, in-process, once per invoice at its last event (the projector writes
at every event, which at 100,000 invoices would take most of an hour on the development machine); --project-all
leaves them to the projector process instead and times it.

Payments: 2 uvicorn workers and the projector process; 16 clients share a pool of 32 keep-alive connections and
each takes the next payment: the unpaid invoices in turn, each settled by one payment of its total, except every
8th, which takes two partial payments sent back to back, so that two clients pay the same invoice at once (2 of
every 9 payments). Every payment has a new reference. Printed beside it, from the same run: raw single-row INSERT
commits over 16 connections and a bare endpoint on the same server stack (bench/bare_app.py) under the same load.

Queries: one client asks over HTTP, as the admin, for the statements of random patients and for the receivables
(the aging summary, and the oldest bucket's first page of invoices), --requests times each, beside the same
query functions run in-process without HTTP (a quarter as many times).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time as clock_time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.booking import (  # noqa: E402
    LOG_KEY,
    MASTER_KEY,
    OPERATOR,
    SECRET,
    LagSampler,
    Run,
    cpu_by_role,
    free_port,
    load_paths,
    raw_insert_ceiling,
    report,
    start_projector,
    start_server,
    stop,
    worker_spread,
)
from commands import accounts  # noqa: E402
from commands import billing as commands  # noqa: E402
from domain.accounts import Account  # noqa: E402
from domain.invoice import DocumentNumbers, Invoice, Line, Method, Origin, PaymentReference, Series  # noqa: E402
from domain.patients import Patient  # noqa: E402
from domain.price_list import ServiceKind  # noqa: E402
from domain.shared import Role, stable_id  # noqa: E402
from infrastructure.bootstrap import Medledger, bootstrap  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from projections import billing as books  # noqa: E402
from projections.billing import InvoiceRecords  # noqa: E402
from projections.billing_tables import invoices  # noqa: E402

SERVICES = (
    ("consultation", "Consultation", ServiceKind.CONSULTATION, Decimal("80.00"), "standard"),
    ("ecg", "Electrocardiogram", ServiceKind.TEST, Decimal("45.00"), "standard"),
    ("blood-panel", "Blood panel", ServiceKind.TEST, Decimal("32.50"), "reduced"),
    ("vaccination", "Vaccination", ServiceKind.PROCEDURE, Decimal("25.00"), "exempt"),
)
TAX_RATES = {"standard": Decimal("19"), "reduced": Decimal("7"), "exempt": Decimal("0")}
DAYS_BACK = 150
BATCH = 500
SPLIT_EVERY = 8  # every 8th unpaid invoice takes two partial payments at once


@dataclass(frozen=True)
class Seeded:
    unpaid: list[tuple[str, Decimal]]
    """(invoice id, total) of the unpaid invoices, newest first: the payments load's targets."""
    patients: list[str]
    events: int
    seconds: float
    filled: float = 0.0
    """Of those seconds, the time spent writing the billing read model's rows (with `fill`)."""


def open_admin(m: Medledger) -> str:
    email = f"admin-{uuid4().hex[:8]}@bench.medledger.example"
    accounts.create_account(m.services, accounts.CreateAccount(email, "bench-password", Role.ADMIN, None), OPERATOR)
    return email


def admin_token(m: Medledger, email: str) -> str:
    """A fresh access token for the admin, through a real login (a token lives minutes; the run is longer)."""
    grant = accounts.log_in(m.services, accounts.LogIn(email, "bench-password"), "bench")
    return m.tokens.issue(grant, datetime.now(timezone.utc)).access_token


def open_price_list(m: Medledger) -> dict[str, tuple[str, Decimal, Decimal]]:
    """The price list through the commands; answers each service's (name, price, tax rate)."""
    for category, rate in TAX_RATES.items():
        commands.set_tax_category(m.services, commands.SetTaxCategory(category, rate), OPERATOR)
    listed = {}
    for code, name, kind, price, category in SERVICES:
        cmd = commands.PriceService(code, name, kind, price, m.services.billing.currency, category)
        commands.price_service(m.services, cmd, OPERATOR)
        listed[code] = (name, price, TAX_RATES[category])
    return listed


def open_patients(m: Medledger, count: int) -> list[str]:
    """Patients with their accounts, saved as the account command saves them, BATCH at a time."""
    password_hash = m.services.hasher.hash("bench-password")
    cause = OPERATOR.cause.as_dict()
    tag = uuid4().hex[:8]
    patients = []
    for first in range(0, count, BATCH):
        batch = []
        for i in range(first, min(first + BATCH, count)):
            email = f"patient{i}-{tag}@bench.medledger.example"
            profile = {"full_name": f"Bench Patient {i}", "date_of_birth": "1980-01-01", "sex": "unknown", "phone": "+44 20 0000 0000"}
            patient = Patient(account_id=str(Account.create_id(email)), profile=profile, cause=cause)
            account = Account(email=email, password_hash=password_hash, role=Role.PATIENT.value, profile_id=str(patient.id), cause=cause)
            batch += [patient, account]
            patients.append(str(patient.id))
        m.store.save(*batch)
    return patients


def seed_invoices(
    m: Medledger,
    patients: list[str],
    count: int,
    prices: dict[str, tuple[str, Decimal, Decimal]],
    days_back: float = DAYS_BACK,
    all_unpaid: bool = False,
    fill: InvoiceRecords | None = None,
) -> Seeded:
    """`count` issued invoices, BATCH per save() with the numbers they take: 40% unpaid, 30% partly paid, 30% paid
    (or all unpaid). With `fill`, the billing read model's rows are written too, by that projector's own write() at
    each invoice's last event (one call per invoice instead of one per event, the aggregate handed over from memory)."""
    rng = random.Random(count)
    now = datetime.now(timezone.utc)
    moments = sorted(now - timedelta(days=rng.uniform(0, days_back)) for _ in range(count))
    filled = 0.0
    clinic, code, cause = m.services.billing.clinic, m.services.billing.currency, OPERATOR.cause
    terms = m.services.billing.payment_terms
    numbers: dict[int, DocumentNumbers] = {}
    services = list(prices)
    unpaid: list[tuple[str, Decimal]] = []
    events = 0
    began = time.perf_counter()
    for first in range(0, count, BATCH):
        batch: list[Invoice | DocumentNumbers | PaymentReference] = []
        for i in range(first, min(first + BATCH, count)):
            issued_at = moments[i]
            lines = []
            for service in rng.sample(services, 1 + i % 2):
                name, price, rate = prices[service]
                lines.append((Line(str(uuid4()), service, name, Decimal(1), price, rate), code))
            invoice = Invoice.draft(uuid4(), patients[rng.randrange(len(patients))], code, Origin.MANUAL, cause, lines=tuple(lines))
            year = issued_at.year
            if year not in numbers:
                stream_id = commands.numbers_id(clinic, Series.INVOICE, year)
                numbers[year] = m.store.find(DocumentNumbers, stream_id) or DocumentNumbers(
                    id=stream_id, clinic=clinic, series=Series.INVOICE.value, year=year
                )
            number = numbers[year].take(str(invoice.id), cause)
            invoice.issue(number, issued_at, issued_at.date() + terms, cause)
            total = invoice.totals().total
            share = i % 10
            if share < 4 or all_unpaid:
                unpaid.append((str(invoice.id), total))
            else:
                amount = total if share >= 7 else (total * Decimal("0.4")).quantize(Decimal("0.01"))
                reference = f"seed-{uuid4().hex[:20]}"
                reference_id = commands.payment_reference_id(Method.CARD, reference)
                payment_id = str(stable_id("payment", reference_id))
                received = min(issued_at + timedelta(days=rng.uniform(0, 20)), now)
                invoice.record_payment(payment_id, reference, Method.CARD, amount, code, received, cause)
                claim = PaymentReference(id=reference_id, reference=reference, invoice_id=str(invoice.id), payment_id=payment_id)
                batch.append(claim)
            batch.append(invoice)
        batch += list(numbers.values())
        events += sum(len(a.pending_events) for a in batch)
        last = [(a, a.pending_events[-1]) for a in batch if isinstance(a, Invoice)]
        m.store.save(*batch)
        if fill is not None:
            started = time.perf_counter()
            aggregates = {a.id: a for a, _ in last}
            fill.attach(lambda originator_id, version: aggregates[originator_id])
            with m.write_engine.begin() as conn:
                for _, event in last:
                    fill.write(conn, event)
            filled += time.perf_counter() - started
        if (first // BATCH) % 40 == 39:
            print(f"  {first + BATCH} invoices ...", flush=True)
    return Seeded(unpaid[::-1], patients, events, time.perf_counter() - began, filled)


def log_end(dsn: str, schema: str) -> tuple[int, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        end = conn.execute(f'SELECT coalesce(max(notification_id), 0) FROM "{schema}".clinic_events').fetchone()[0]
        reached = conn.execute(f'SELECT coalesce(min(position), 0) FROM "{schema}".projection_positions').fetchone()[0]
    return end, reached


def wait_for_projector(dsn: str, schema: str, timeout: float = 3600) -> tuple[int, float]:
    """Waits until every read model has applied the log as it ends now; answers (events applied, seconds)."""
    end, start = log_end(dsn, schema)
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        _, reached = log_end(dsn, schema)
        if reached >= end:
            break
        time.sleep(0.25)
    return end - start, time.perf_counter() - began


# The payments load: like bench.booking's, but each request names its own path


Payment = tuple[str, bytes]


async def post_load(port: int, seconds: float, work: Iterator[Payment], token: str, clients: int, connections: int, workers: int) -> Run:
    return await load_paths(port, seconds, ((path, body, token) for path, body in work), clients, connections, workers)


def payments(unpaid: list[tuple[str, Decimal]], currency: str) -> Iterator[Payment]:
    """Each unpaid invoice settled by one payment of its total; every SPLIT_EVERY-th by two partial payments in a row."""
    for k, (invoice_id, total) in enumerate(unpaid):
        path = f"/invoices/{invoice_id}/payments"
        amounts = [Decimal("10.00"), Decimal("10.00")] if k % SPLIT_EVERY == 0 else [total]
        for amount in amounts:
            body = {"reference": f"bench-{uuid4().hex[:24]}", "method": "card", "amount": str(amount), "currency": currency}
            yield path, json.dumps(body).encode()


def bare_requests() -> Iterator[Payment]:
    while True:
        yield "/bare", json.dumps({"doctor_id": str(uuid4()), "start": datetime.now(timezone.utc).isoformat()}).encode()


# The queries


def timed_gets(client: httpx.Client, paths: Iterator[str], token: str, count: int) -> Run:
    run = Run()
    headers = {"Authorization": f"Bearer {token}"}
    began = time.perf_counter()
    for _ in range(count):
        path = next(paths)
        start = time.perf_counter()
        status = client.get(path, headers=headers).status_code
        run.latencies.append(time.perf_counter() - start)
        run.statuses[status] = run.statuses.get(status, 0) + 1
    run.elapsed = time.perf_counter() - began
    return run


def timed_calls(m: Medledger, query: object, count: int) -> Run:
    run = Run()
    began = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        with m.read_engine.connect() as conn:
            query(conn)  # type: ignore[operator]
        run.latencies.append(time.perf_counter() - start)
        run.statuses[200] = run.statuses.get(200, 0) + 1
    run.elapsed = time.perf_counter() - began
    return run


def latency(label: str, run: Run) -> None:
    codes = ", ".join(f"{status}: {n}" for status, n in sorted(run.statuses.items()))
    print(f"{label:46} p50 {run.percentile(50):7.1f} ms   p95 {run.percentile(95):7.1f} ms   p99 {run.percentile(99):7.1f} ms   ({codes})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=20_000, help="invoices of the clinic, the payable ones included (the issue asks 100000)")
    parser.add_argument("--payable", type=int, default=2_000, help="unpaid invoices written first, for the payments load")
    parser.add_argument("--patients", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections in the clients' shared pool")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200, help="requests per query")
    parser.add_argument("--project-all", action="store_true", help="let the projector process project the whole clinic too")
    parser.add_argument("--skip-ceilings", action="store_true", help="skip the raw INSERT and bare endpoint runs")
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
        "MEDLEDGER_REDIS_PREFIX": schema, "MEDLEDGER_JWT_SECRET": SECRET, "MEDLEDGER_LOG_SIGNING_KEY": LOG_KEY,
        "MEDLEDGER_MASTER_KEY": MASTER_KEY, "MEDLEDGER_PROJECTOR": "external",
        "MEDLEDGER_WRITE_RATE_LIMIT": "1000000/minute",  # counted as in production, never reached by the load
        "PYTHONPATH": str(ROOT),
    }
    dsn = args.database_url
    bare_table = f"{schema}.bare_inserts"
    payable = min(args.payable, args.invoices)
    print(
        f"Medledger billing benchmark: {args.invoices} invoices over {args.patients} patients; payments from {args.clients} clients "
        f"over {args.connections} shared connections, {args.seconds:.0f} s, {args.workers} workers, projector process; schema {schema}; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    m = bootstrap(settings)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {bare_table} (id BIGSERIAL PRIMARY KEY, doctor_id UUID, start TIMESTAMPTZ)")
        admin = open_admin(m)
        prices = open_price_list(m)
        began = time.perf_counter()
        patients = open_patients(m, args.patients)
        print(f"seeded {args.patients} patients in {time.perf_counter() - began:.1f} s", flush=True)
        seeded = seed_invoices(m, patients, payable, prices, days_back=3, all_unpaid=True)
        print(f"seeded {payable} unpaid invoices for the payments load: {seeded.seconds:.1f} s, {seeded.events} events", flush=True)

        # Payments, with the projector process running all along
        projector = start_projector(env)
        try:
            applied, took = wait_for_projector(dsn, schema)
            projector_rate = applied / max(took, 1e-9)
            print(f"projector caught up from scratch: {applied} events in {took:.1f} s ({projector_rate:.0f} events/s)", flush=True)

            token = admin_token(m, admin)

            def paying(port: int, seconds: float, work: Iterator[Payment]) -> Run:
                return asyncio.run(post_load(port, seconds, work, token, args.clients, args.connections, args.workers))

            raw = bare_run = None
            if not args.skip_ceilings:
                raw = raw_insert_ceiling(dsn, bare_table, args.clients, min(args.seconds, 10))
                print(f"{'raw INSERT commits, ' + str(args.clients) + ' connections':38} {raw:8.0f}/s", flush=True)
                port = free_port()
                bare = start_server(
                    "bench.bare_app:create_app", port, args.workers, {"BENCH_BARE_DSN": dsn, "BENCH_BARE_TABLE": bare_table, "PYTHONPATH": str(ROOT)}
                )
                try:
                    paying(port, 2, bare_requests())
                    bare_run = paying(port, args.seconds, bare_requests())
                finally:
                    stop(bare)
                report("bare endpoint (1 INSERT/request)", bare_run)

            port = free_port()
            server = start_server("api.app:create_app", port, args.workers, env)
            try:
                work = payments(seeded.unpaid, m.services.billing.currency)
                paying(port, 3, work)  # warm-up, on the first of the unpaid invoices
                spread: list[str] = []
                sampler = threading.Timer(min(2.0, args.seconds / 2), lambda: spread.append(worker_spread(port)))
                sampler.daemon = True
                before = cpu_by_role(server, projector)
                with LagSampler(dsn, schema) as lag:
                    sampler.start()
                    paid = paying(port, args.seconds, work)
                after = cpu_by_role(server, projector)
                report(f"payments ({args.clients} clients, HTTP)", paid)
                print(f"{'  connections per API worker':38} {spread[0] if spread else 'unknown'}")
                if raw and bare_run:
                    print(f"{'  ratio to raw INSERT commits':38} {paid.rate / raw:8.0%}")
                    print(f"{'  ratio to bare endpoint':38} {paid.rate / bare_run.rate:8.0%}")
                for role in before:
                    print(f"{'  CPU per payment, ' + role:38} {(after[role] - before[role]) / max(paid.ok, 1) * 1000:8.2f} ms")
                lags = sorted(lag.lags_ms())
                if lags:
                    print(f"{'  projector lag':38} p50 {statistics.median(lags):6.0f} ms   p99 {lags[int(0.99 * (len(lags) - 1))]:6.0f} ms")
                _, took = wait_for_projector(dsn, schema)
                print(f"{'  projector caught up after the load':38} {took:8.1f} s", flush=True)
            finally:
                stop(server)
        finally:
            stop(projector)

        # The rest of the clinic's invoices, and the queries over all of them
        rest = args.invoices - payable
        fill = None if args.project_all else InvoiceRecords()
        print(f"seeding {rest} more invoices, {BATCH} per save{'' if fill is None else ', with their billing rows'} ...", flush=True)
        more = seed_invoices(m, patients, rest, prices, fill=fill)
        print(
            f"  {more.seconds:.1f} s: {more.events} events stored in {more.seconds - more.filled:.1f} s "
            f"({more.events / max(more.seconds - more.filled, 1e-9):.0f} events/s)"
            + ("" if fill is None else f", billing rows written in {more.filled:.1f} s by InvoiceRecords.write, one call per invoice"),
            flush=True,
        )
        if fill is None:
            projector = start_projector(env)
            try:
                applied, took = wait_for_projector(dsn, schema, timeout=6 * 3600)
                print(f"projector caught up: {applied} events in {took:.1f} s ({applied / max(took, 1e-9):.0f} events/s)", flush=True)
            finally:
                stop(projector)
        else:
            print(
                f"  (the projector process would take about {more.events / max(projector_rate, 1e-9) / 60:.0f} min for them at its "
                f"{projector_rate:.0f} events/s above; --project-all lets it)",
                flush=True,
            )

        rng = random.Random(11)
        statement_paths = (f"/patients/{rng.choice(patients)}/statement" for _ in iter(int, 1))
        summary_paths = iter(lambda: "/billing/receivables", None)
        bucket_paths = iter(lambda: "/billing/receivables?bucket=90%2B", None)
        port = free_port()
        server = start_server("api.app:create_app", port, args.workers, env)
        token = admin_token(m, admin)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                timed_gets(client, statement_paths, token, 10)
                timed_gets(client, summary_paths, token, 5)
                statement_run = timed_gets(client, statement_paths, admin_token(m, admin), args.requests)
                summary_run = timed_gets(client, summary_paths, admin_token(m, admin), args.requests)
                bucket_run = timed_gets(client, bucket_paths, admin_token(m, admin), args.requests)
                token = admin_token(m, admin)
                sample = client.get("/billing/receivables", headers={"Authorization": f"Bearer {token}"}).json()
        finally:
            stop(server)
        per_patient = args.invoices / max(args.patients, 1)
        latency(f"HTTP statement (~{per_patient:.0f} invoices/patient)", statement_run)
        latency("HTTP receivables, aging summary", summary_run)
        latency("HTTP receivables, 90+ bucket, page 1", bucket_run)
        today = datetime.now(timezone.utc).date()
        calls = max(args.requests // 4, 10)
        latency(f"in-process statement ({calls} calls)", timed_calls(m, lambda c: books.statement(c, rng.choice(patients)), calls))
        latency(f"in-process receivables, summary ({calls} calls)", timed_calls(m, lambda c: books.receivables(c, today), calls))
        latency(f"in-process receivables, 90+ ({calls} calls)", timed_calls(m, lambda c: books.receivables(c, today, "90+"), calls))
        with m.read_engine.connect() as conn:
            counts = dict(conn.execute(select(invoices.c.status, func.count()).group_by(invoices.c.status)).all())
        print(f"  invoices in the read model: {sum(counts.values())} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})")
        for currency in sample.get("currencies", []):
            buckets = ", ".join(f"{b['bucket']}: {b['count']} owing {b['amount']}" for b in currency["buckets"])
            print(f"  receivables {currency['currency']}: {buckets}")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        m.close()
        if not args.keep:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
