"""What the recorded-state cache saves: CPU per booking with and without it, in one run, on PostgreSQL.

    python3 dev.py bench cache [--bookings 400] [--rounds 2]

Every load reads the events after the version it knows of each stream; the cache (MEDLEDGER_AGGREGATE_CACHE_SIZE)
keeps the recorded state it can start from, so without it every load replays whole streams. Two shapes of
traffic, booked one after the other in process (the command alone, no HTTP): bookings spread over 64 patients
(short streams), and one patient booking again and again, whose care record grows by a visit each time.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from booking import CLINIC_HOURS, LOG_KEY, MASTER_KEY, OPERATOR, SECRET, open_doctor, open_patient, slots_from  # noqa: E402

from commands import appointments  # noqa: E402
from infrastructure.bootstrap import bootstrap  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402


def cpu_per_booking(database_url: str, cache_size: int, bookings: int, one_patient: bool) -> float:
    schema = f"bench_{uuid4().hex[:10]}"
    settings = Settings(
        database_url=database_url, database_schema=schema, pool_size=4, jwt_secret=SECRET,
        log_signing_key=LOG_KEY, master_key=MASTER_KEY, aggregate_cache_size=cache_size,
    )
    m = bootstrap(settings)
    try:
        doctors = [open_doctor(m, f"Dr Cache {i}") for i in range(8)]
        patients = [open_patient(m, i)[0] for i in range(1 if one_patient else 64)]
        days = slots_from(CLINIC_HOURS, datetime.now(timezone.utc) + timedelta(days=1), bookings // 8 + 40)
        # One slot of the day per booking when one patient books them all (a patient is never double booked).
        work = [(doctors[k % 8], start) for day in days for k, start in enumerate(day)] if one_patient else [
            (doctor, start) for day in days for start in day for doctor in doctors
        ]
        for i, (doctor, start) in enumerate(work[: bookings + 50]):
            if i == 50:
                began = time.process_time()
            patient = patients[(i * 7) % len(patients)]
            appointments.book_appointment(m.services, appointments.BookAppointment(doctor, patient, start), OPERATOR)
        return (time.process_time() - began) / bookings * 1000
    finally:
        m.close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for label, one_patient in (("64 patients", False), ("one patient, growing record", True)):
        cached, uncached = [], []
        for _ in range(args.rounds):
            cached.append(cpu_per_booking(args.database_url, 20_000, args.bookings, one_patient))
            uncached.append(cpu_per_booking(args.database_url, 0, args.bookings, one_patient))
        print(
            f"{label:30s} CPU per booking: cache {min(cached):.2f} ms, none {min(uncached):.2f} ms "
            f"(x{min(uncached) / min(cached):.2f}; best of {args.rounds})",
            flush=True,
        )


if __name__ == "__main__":
    main()
