"""As-of latency for records with 1,000 events: the state at a random recorded moment, computed from the events.

    python3 dev.py bench as_of [--events 1000] [--requests 500] [--database-url postgresql://...]

Writes, through the real handlers, a patient whose profile changed 999 times (a small state) and a consultation
with 998 notes (a large one: every note stays in its state), each a stream of the given number of events. Then
asks, in-process (the query an HTTP request runs, without HTTP), as an auditor, for each record's state as of a
random moment between its first and last event. Prints the first (cold) request and p50/p99 of the rest. SQLite
in a temporary folder by default; PostgreSQL with --database-url (a fresh schema, dropped afterwards).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commands import accounts, audit, care, consultations, profiles  # noqa: E402
from commands.base import Actor  # noqa: E402
from domain.accounts import Account  # noqa: E402
from domain.care import Kind  # noqa: E402
from domain.shared import Role  # noqa: E402
from infrastructure.bootstrap import Medledger, bootstrap  # noqa: E402
from infrastructure.history import StreamHistory  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

LOG_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # a fixed Ed25519 key for tree heads nobody keeps
MASTER_KEY = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="  # a fixed master key for data keys nobody keeps

OPERATOR = Actor("bench", Role.ADMIN, None, "bench")
AUDITOR = Actor("bench-auditor", Role.AUDITOR, None, "bench")


def member(m: Medledger, role: Role, profile: dict) -> Actor:
    email = f"{role.value}-{uuid4().hex[:8]}@bench.medledger.example"
    accounts.create_account(m.services, accounts.CreateAccount(email, "bench-password", role, profile), OPERATOR)
    account = m.store.find(Account, Account.create_id(email))
    assert account is not None
    return Actor(str(account.id), role, account.profile_id, "bench")


def seed(m: Medledger, events: int) -> dict[str, str]:
    svc = m.services
    patient = member(m, Role.PATIENT, {"full_name": "Bench Patient", "date_of_birth": "1980-01-01", "sex": "female", "phone": "+44 1"})
    doctor = member(m, Role.DOCTOR, {"name": "Dr Bench", "specialization": "General practice", "licence_number": "B-1", "consultation_fee": "50.00", "bio": ""})
    patient_id = patient.profile_id or ""
    for n in range(events - 1):
        profiles.update_patient_profile(svc, profiles.UpdatePatientProfile(patient_id, {"phone": f"+44 20 {n:06d}"}), OPERATOR)
    care.start_relationship(svc, care.StartRelationship(patient_id, doctor.profile_id or "", Kind.PRIMARY, "bench"), OPERATOR)
    started = consultations.start_consultation(svc, consultations.StartConsultation("in_person", patient_id=patient_id), doctor)
    consultations.record_complaint(svc, consultations.RecordComplaint(started.id, "Review"), doctor)
    for n in range(events - 2):
        consultations.add_note(svc, consultations.AddNote(started.id, f"Note {n}: stable, continue the current plan."), doctor)
    return {"patient profile (small state)": patient_id, "consultation (large state)": started.id}


def measure(m: Medledger, record_id: str, requests: int) -> tuple[float, list[float], int]:
    history = StreamHistory(m.store.app)
    events = history.events(UUID(record_id))
    first, last = events[0].timestamp, events[-1].timestamp
    rng = random.Random(7)
    moments = [first + timedelta(seconds=rng.uniform(0, (last - first).total_seconds())) for _ in range(requests + 1)]
    history = StreamHistory(m.store.app)  # cold: nothing of the stream read yet
    latencies = []
    for moment in moments:
        began = time.perf_counter()
        audit.as_of(m.services, history, AUDITOR, record_id, moment, None)
        latencies.append(time.perf_counter() - began)
    return latencies[0], latencies[1:], len(events)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    schema = f"bench_as_of_{uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        values: dict[str, object] = {"data_dir": Path(folder), "jwt_secret": "bench-" + uuid4().hex * 2, "password_hashing": "fast"}
        if args.database_url:
            values.update(database_url=args.database_url, database_schema=schema, pool_size=2, log_signing_key=LOG_KEY, master_key=MASTER_KEY)
        m = bootstrap(Settings(**values))
        try:
            store = "PostgreSQL" if args.database_url else "SQLite"
            print(f"writing two records of {args.events} events each on {store} ...", flush=True)
            records = seed(m, args.events)
            print(f"as-of at a random moment, {args.requests} requests per record, in-process, one thread:")
            for name, record_id in records.items():
                cold, warm, count = measure(m, record_id, args.requests)
                print(
                    f"  {name}, {count} events: first {cold * 1000:.1f} ms; "
                    f"then p50 {statistics.median(warm) * 1000:.2f} ms, p99 {percentile(warm, 99) * 1000:.2f} ms"
                )
        finally:
            m.close()
            if args.database_url:
                with psycopg.connect(args.database_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
