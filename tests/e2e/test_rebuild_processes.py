"""`medledger rebuild` run twice while uvicorn serves bookings and queries and `medledger projector` follows the log."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import closing, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from e2e_helpers import iso, log_in, open_clinic, running_server, server_environment
from infrastructure.bootstrap import bootstrap
from infrastructure.database import create_read_model_engine
from infrastructure.projector import ProjectionWorker
from projections.projectors import all_projectors

READ_MODELS = {table.name: table for projector in all_projectors() for table in projector.tables}
REBUILDS = [["appointments"], []]
PROJECTOR_TROUBLE = ("paused", "failed", "moved first", "Traceback")


def read_model_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            name: sorted((tuple(row) for row in conn.execute(select(table))), key=lambda row: [str(v) for v in row])
            for name, table in READ_MODELS.items()
        }


def medledger(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "medledger"), *args]


def test_rebuilds_beside_a_serving_api_and_a_projector_process_answer_every_query_and_end_equal_to_a_fresh_build(
    backend: str, make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(backend, projector="external")
    cast = open_clinic(settings, 4)
    env = server_environment(settings)
    failures: list[str] = []
    booked: list[str] = []
    stop = threading.Event()
    first_day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    projector_log = tmp_path / "projector.log"

    with projector_log.open("wb") as out:
        projector = subprocess.Popen(medledger("projector"), env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with running_server(settings, 1, tmp_path / "uvicorn.log") as base_url, closing(log_in(base_url, cast.admin_email)) as admin:
            patients = [log_in(base_url, email) for email in cast.patient_emails]

            def write() -> None:
                n = 0
                while not stop.is_set():
                    start = first_day + timedelta(days=n // 40, minutes=30 * (n % 40))
                    response = patients[n % 4].post("/appointments", json={"doctor_id": cast.doctor_id, "start": iso(start)})
                    if response.status_code == 201:
                        booked.append(response.json()["id"])
                    else:
                        failures.append(f"booking: {response.status_code} {response.text}")
                    n += 1

            def read() -> None:
                while not stop.is_set():
                    for client, path, params in (
                        (patients[0], "/appointments", {}),
                        (admin, "/appointments", {"doctor_id": cast.doctor_id}),
                        (admin, "/patients", {"name": "patient"}),
                        (admin, "/accounts", {}),
                        (admin, "/doctors", {}),
                    ):
                        try:
                            response = client.get(path, params=params)
                        except httpx.HTTPError as error:
                            failures.append(f"GET {path}: {error!r}")
                            continue
                        if response.status_code != 200:
                            failures.append(f"GET {path}: {response.status_code} {response.text[:300]}")

            threads = [threading.Thread(target=target, daemon=True) for target in (write, read)]
            for thread in threads:
                thread.start()
            try:
                for names in REBUILDS:
                    while len(booked) < 10 * (REBUILDS.index(names) + 1) and not failures:
                        time.sleep(0.05)
                    rebuild = subprocess.run(medledger("rebuild", *names), env=env, capture_output=True, text=True, timeout=300)
                    if rebuild.returncode != 0:
                        failures.append(f"rebuild {names}: exit {rebuild.returncode}\n{rebuild.stdout}\n{rebuild.stderr}")
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=60)
            health = admin.get("/health").json()
            deadline = time.monotonic() + 60
            while set(health["read_models"].values()) != {health["event_store_position"]} and time.monotonic() < deadline:
                time.sleep(0.1)
                health = admin.get("/health").json()
            for client in patients:
                client.close()
    finally:
        projector.terminate()
        projector.wait(timeout=30)
    projector_output = projector_log.read_text(errors="replace")

    assert failures == []
    assert [line for line in projector_output.splitlines() if any(word in line for word in PROJECTOR_TROUBLE)] == []
    assert set(health["read_models"]) == {projector.name for projector in all_projectors()}
    assert set(health["read_models"].values()) == {health["event_store_position"]}

    system = bootstrap(settings)
    fresh = create_read_model_engine(make_settings(backend))
    try:
        reference = ProjectionWorker(system.store.app, fresh, all_projectors(), 0.01, rebuild_lock=lambda *names: nullcontext())
        reference.create_tables()
        reference.run_once()
        assert read_model_rows(system.write_engine) == read_model_rows(fresh)
        assert set(booked) <= {row[0] for row in read_model_rows(system.write_engine)["appointments"]}
    finally:
        fresh.dispose()
        system.close()
