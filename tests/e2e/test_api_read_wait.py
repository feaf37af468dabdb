"""?after= waits without holding a thread: a position the log does not hold is refused at once, a position the read
models have not reached is waited for (bounded), and hundreds of waiting requests do not slow anyone else down."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from e2e_helpers import Clinic, expect, log_in, open_clinic, running_server
from infrastructure.bootstrap import Medledger, bootstrap

WAITERS = 300
PROBES = 25


@pytest.fixture
def paused(backend: str, make_settings: Any, clock: Any) -> Iterator[Clinic]:
    """A clinic whose projector does not run until the test says so."""
    system = bootstrap(make_settings(backend, read_wait_seconds=0.3), clock=clock)
    with TestClient(create_app(system)) as client:
        yield Clinic(client, system, clock)
    system.close()


def test_a_position_the_log_does_not_hold_is_422_at_once_naming_the_current_position(clinic_with: Any) -> None:
    clinic = clinic_with(read_wait_seconds=5)
    patient = clinic.patient()
    current = clinic.latest()
    paths = ("/appointments", "/doctors", f"/patients/{patient.profile_id}")
    for path in paths:
        expect(clinic.get(patient, path), 200)

    began = time.monotonic()
    responses = [clinic.get(patient, path, after=current + 1) for path in paths]
    took = time.monotonic() - began

    for response in responses:
        answer = expect(response, 422, "position_not_in_log", "after")
        assert answer["current"] == current
        assert str(current) in answer["message"]
    assert took < 2
    expect(clinic.get(patient, "/appointments", after=10**12), 422, "position_not_in_log", "after")
    expect(clinic.get(patient, "/appointments", after=current), 200)
    expect(clinic.get(patient, "/appointments", after=0), 200)
    expect(clinic.get(patient, "/appointments", after=-1), 422, "invalid_request", "after")


def test_a_read_model_behind_the_position_is_503_after_the_wait_and_a_wait_ends_when_it_catches_up(paused: Clinic) -> None:
    clinic = paused
    patient = clinic.patient()
    target = clinic.latest()

    behind = clinic.get(patient, "/appointments", after=target)

    answer = expect(behind, 503, "read_model_behind")
    assert str(target) in answer["message"]
    assert behind.headers["retry-after"] == "1"

    clinic.medledger.settings.read_wait_seconds = 10
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(clinic.get, patient, f"/patients/{patient.profile_id}", target)
        time.sleep(0.5)
        assert not waiting.done()
        began = time.monotonic()
        clinic.medledger.projection.run_once()
        answered = waiting.result(timeout=10)
    assert expect(answered, 200)["id"] == patient.profile_id
    assert time.monotonic() - began < 5


def _median_latency(client: httpx.Client, path: str) -> float:
    latencies = []
    for _ in range(PROBES):
        began = time.perf_counter()
        response = client.get(path, timeout=10)
        latencies.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
    return statistics.median(latencies)


def test_hundreds_of_waiting_requests_do_not_slow_other_requests(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings("postgres", use_redis=True)
    cast = open_clinic(settings, 1)
    env = {"MEDLEDGER_PROJECTOR": "external", "MEDLEDGER_READ_WAIT_SECONDS": "60", "MEDLEDGER_POOL_SIZE": "3"}
    answers: list[tuple[int, float]] = []

    with (
        running_server(settings, 1, tmp_path / "uvicorn.log", **env) as base_url,
        closing(log_in(base_url, cast.admin_email)) as admin,
        closing(log_in(base_url, cast.patient_emails[0])) as patient,
    ):
        target = int(admin.get("/health").json()["event_store_position"])
        assert target > 0
        _median_latency(admin, "/doctors")
        baseline = _median_latency(admin, "/doctors")

        async def wait_for_target() -> None:
            limits = httpx.Limits(max_connections=WAITERS, max_keepalive_connections=WAITERS)
            async with httpx.AsyncClient(base_url=base_url, headers=patient.headers, limits=limits, timeout=120) as waiting:

                async def one() -> None:
                    response = await waiting.get("/appointments", params={"after": target})
                    answers.append((response.status_code, time.monotonic()))

                await asyncio.gather(*(one() for _ in range(WAITERS)))

        waiters = threading.Thread(target=asyncio.run, args=(wait_for_target(),))
        waiters.start()
        _until_all_wait(admin, began=time.monotonic())
        under_load = _median_latency(admin, "/doctors")
        assert answers == [], "the waiting requests were answered before their read model caught up"

        released = time.monotonic()
        catch_up(settings)
        waiters.join(timeout=90)

    assert under_load <= 2 * baseline, f"GET /doctors: {baseline * 1000:.1f} ms alone, {under_load * 1000:.1f} ms beside {WAITERS} waiting requests"
    assert [status for status, _ in answers] == [200] * WAITERS
    assert all(at >= released for _, at in answers)


def _until_all_wait(client: httpx.Client, began: float) -> None:
    """Until the server counts every waiting request (or, on a server without that gauge, a few seconds)."""
    seen = ""
    while time.monotonic() - began < 30:
        response = client.get("/metrics")
        if response.status_code != 200:
            time.sleep(max(0.0, 3 - (time.monotonic() - began)))
            return
        seen = next((line for line in response.text.splitlines() if line.startswith("medledger_read_waits_in_progress ")), "")
        if seen == f"medledger_read_waits_in_progress {WAITERS}.0":
            time.sleep(0.5)
            return
        time.sleep(0.2)
    raise AssertionError(f"{WAITERS} requests were not all waiting after 30 s: {seen!r}")


def catch_up(settings: Any) -> None:
    """Runs the projectors once, as the external projector process would."""
    system: Medledger = bootstrap(settings)
    try:
        system.projection.run_once()
    finally:
        system.close()

