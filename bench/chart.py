"""Patient chart benchmark on PostgreSQL: latency of GET /patients/{id}/chart for a patient with 200 consultations.

    python3 dev.py bench chart [--consultations 200] [--requests 500]

Seeds one patient with N signed consultations (complaint, vital signs, a diagnosis, a note each) and a few
issued prescriptions, and one patient with 5 consultations; then, over HTTP on one uvicorn worker, one client
asks for each chart in turn as the treating doctor and as the patient. Prints p50/p95/p99 beside the same chart
query run in-process without HTTP, the ratio of the large chart to the small one, and the doctor's chart from the
real API against one that records no read log entry (bench/no_read_log.py), asked in alternation: all from the
same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.booking import LOG_KEY, MASTER_KEY, OPERATOR, SECRET, Run, free_port, open_doctor, open_patient, start_server, stop  # noqa: E402
from commands import accounts, care, consultations, prescriptions  # noqa: E402
from commands.base import Actor  # noqa: E402
from domain.accounts import Account  # noqa: E402
from domain.care import Kind  # noqa: E402
from domain.doctors import Doctor  # noqa: E402
from domain.prescription import Frequency, Route  # noqa: E402
from domain.shared import Role  # noqa: E402
from infrastructure.bootstrap import Medledger, bootstrap  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from projections.chart import patient_chart  # noqa: E402

CODES = [("I10", "Essential hypertension"), ("E11.9", "Type 2 diabetes mellitus"), ("J45.909", "Asthma"), ("M54.5", "Low back pain")]
MEDICATIONS = [("amlodipine", "5 mg"), ("metformin", "500 mg"), ("salbutamol", "100 mcg"), ("atorvastatin", "20 mg")]


def doctor_account(m: Medledger, doctor_id: str) -> Account:
    doctor = m.store.find(Doctor, doctor_id)
    account = m.store.find(Account, doctor.account_id) if doctor else None
    assert account is not None
    return account


def seed_record(m: Medledger, doctor: Actor, patient_id: str, count: int, prescribed: int) -> None:
    svc = m.services
    care.start_relationship(svc, care.StartRelationship(patient_id, doctor.profile_id or "", Kind.PRIMARY, "bench"), OPERATOR)
    for i in range(count):
        started = consultations.start_consultation(svc, consultations.StartConsultation("in_person", patient_id=patient_id), doctor)
        cid = started.id
        code, description = CODES[i % len(CODES)]
        values = {"systolic": 120 + i % 25, "diastolic": 80 - i % 10, "pulse": 60 + i % 30, "temperature": 36.6, "spo2": 98, "weight": 70.0 + i % 5}
        consultations.record_complaint(svc, consultations.RecordComplaint(cid, f"Review visit {i}"), doctor)
        consultations.record_vital_signs(svc, consultations.RecordVitalSigns(cid, values), doctor)
        consultations.record_diagnosis(svc, consultations.RecordDiagnosis(cid, code, description, "primary", "confirmed"), doctor)
        consultations.add_note(svc, consultations.AddNote(cid, f"Stable. Continue current plan. Visit {i}."), doctor)
        consultations.sign_consultation(svc, consultations.SignConsultation(cid), doctor)
        if i < prescribed:
            name, strength = MEDICATIONS[i % len(MEDICATIONS)]
            item = prescriptions.ItemSpec(name, strength, "tablet", "1 tablet", Route.ORAL, Frequency.ONCE_DAILY, 30, 30)
            written = prescriptions.write_prescription(svc, prescriptions.WritePrescription(cid, (item,)), doctor)
            prescriptions.issue_prescription(svc, prescriptions.IssuePrescription(written.id), doctor)


def sequential_gets(client: httpx.Client, path: str, token: str, count: int) -> Run:
    run = Run()
    headers = {"Authorization": f"Bearer {token}"}
    began = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        status = client.get(path, headers=headers).status_code
        run.latencies.append(time.perf_counter() - start)
        run.statuses[status] = run.statuses.get(status, 0) + 1
    run.elapsed = time.perf_counter() - began
    return run


def in_process(m: Medledger, patient_id: str, count: int) -> Run:
    run = Run()
    began = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        with m.read_engine.connect() as conn:
            patient_chart(conn, patient_id, page=1, page_size=20)
        run.latencies.append(time.perf_counter() - start)
        run.statuses[200] = run.statuses.get(200, 0) + 1
    run.elapsed = time.perf_counter() - began
    return run


def report(label: str, run: Run) -> None:
    codes = ", ".join(f"{status}: {n}" for status, n in sorted(run.statuses.items()))
    print(
        f"{label:44} p50 {run.percentile(50):6.1f} ms   p95 {run.percentile(95):6.1f} ms"
        f"   p99 {run.percentile(99):6.1f} ms   ({codes})"
    )


def read_log_cost(env: dict[str, str], path: str, token: str, requests: int) -> None:
    """The same chart from the real API and from one that records no read log entry, both up at once and asked
    in alternation (so drift in the machine's load falls on both alike); prints each and the ratios."""
    ports = free_port(), free_port()
    servers = start_server("api.app:create_app", ports[0], 1, env), start_server("bench.no_read_log:create_app", ports[1], 1, env)
    runs = Run(), Run()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}") as on, httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}") as off:
            for client in (on, off):
                sequential_gets(client, path, token, 20)
            began = time.perf_counter()
            for i in range(2 * requests):
                which = i % 2 if (i // 2) % 2 == 0 else 1 - i % 2  # on, off, off, on, ...: neither always goes first
                run = sequential_gets((on, off)[which], path, token, 1)
                runs[which].latencies += run.latencies
                for status, n in run.statuses.items():
                    runs[which].statuses[status] = runs[which].statuses.get(status, 0) + n
            for run in runs:
                run.elapsed = time.perf_counter() - began
    finally:
        for server in servers:
            stop(server)
    report("HTTP chart, doctor, read log on", runs[0])
    report("HTTP chart, doctor, read log off", runs[1])
    for p in (50, 99):
        label = f"  p{p} ratio, read log on / off"
        print(f"{label:44} {runs[0].percentile(p) / runs[1].percentile(p):6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database-url", default=os.environ.get("MEDLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schema afterwards")
    args = parser.parse_args()

    schema = f"bench_{uuid4().hex[:10]}"
    settings = Settings(
        database_url=args.database_url, database_schema=schema, jwt_secret=SECRET, log_signing_key=LOG_KEY, master_key=MASTER_KEY, password_hashing="fast",
        projector="external",
    )
    env = {
        "MEDLEDGER_DATABASE_URL": args.database_url, "MEDLEDGER_DATABASE_SCHEMA": schema, "MEDLEDGER_JWT_SECRET": SECRET,
        "MEDLEDGER_LOG_SIGNING_KEY": LOG_KEY, "MEDLEDGER_MASTER_KEY": MASTER_KEY, "MEDLEDGER_PROJECTOR": "external",
    }
    print(f"Medledger chart benchmark: {args.consultations} consultations, {args.requests} requests per case, schema {schema}")
    m = bootstrap(settings)
    try:
        doctor_id = open_doctor(m, "Dr Chart")
        account = doctor_account(m, doctor_id)
        doctor = Actor(str(account.id), Role.DOCTOR, doctor_id, "bench")
        (big, big_token), (small, _) = open_patient(m, 1), open_patient(m, 2)
        print("seeding the records ...", flush=True)
        began = time.perf_counter()
        seed_record(m, doctor, big, args.consultations, prescribed=8)
        seed_record(m, doctor, small, 5, prescribed=2)
        print(f"  seeded in {time.perf_counter() - began:.1f} s", flush=True)
        while m.projection.run_once():
            pass
        grant = accounts.log_in(m.services, accounts.LogIn(account.email, "bench-password"), "bench")
        doctor_token = m.tokens.issue(grant, datetime.now(timezone.utc)).access_token

        in_process(m, big, 20)
        report(f"chart query in-process, {args.consultations} consultations", in_process(m, big, args.requests))
        report("chart query in-process, 5 consultations", in_process(m, small, args.requests))

        port = free_port()
        server = start_server("api.app:create_app", port, 1, env)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                sequential_gets(client, f"/patients/{big}/chart", doctor_token, 20)
                as_doctor = sequential_gets(client, f"/patients/{big}/chart", doctor_token, args.requests)
                as_patient = sequential_gets(client, f"/patients/{big}/chart", big_token, args.requests)
                small_run = sequential_gets(client, f"/patients/{small}/chart", doctor_token, args.requests)
                full_page = sequential_gets(client, f"/patients/{big}/chart?page_size=100", doctor_token, args.requests)
        finally:
            stop(server)
        report(f"HTTP chart, {args.consultations} consultations, doctor", as_doctor)
        report(f"HTTP chart, {args.consultations} consultations, patient", as_patient)
        report(f"HTTP chart, {args.consultations} consultations, 100/page", full_page)
        report("HTTP chart, 5 consultations, doctor", small_run)
        label = f"  p50 ratio, {args.consultations} / 5 consultations"
        print(f"{label:44} {as_doctor.percentile(50) / small_run.percentile(50):6.2f}x")
        read_log_cost(env, f"/patients/{big}/chart", doctor_token, args.requests)
    finally:
        m.close()
        if not args.keep:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
