"""Many patients racing for the same slots over real HTTP, against uvicorn: every slot has exactly one winner."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e_helpers import Cast, iso, log_in, open_clinic, running_server
from infrastructure.settings import Settings

PATIENTS = 32


@dataclass(frozen=True)
class Races:
    cast: Cast
    outcomes: dict[datetime, list[httpx.Response]]
    listed: httpx.Response


def race(clients: list[httpx.Client], doctor_id: str, start: datetime, pool: ThreadPoolExecutor) -> list[httpx.Response]:
    """Every client books the same slot at the same moment."""
    barrier = threading.Barrier(len(clients))

    def book(client: httpx.Client) -> httpx.Response:
        barrier.wait(timeout=30)
        return client.post("/appointments", json={"doctor_id": doctor_id, "start": iso(start)})

    return list(pool.map(book, clients))


def run_races(settings: Settings, workers: int, slot_count: int, log_path: Path) -> Races:
    """Every patient books each slot in turn, all at once; then the admin lists the doctor's appointments as of the last win."""
    cast = open_clinic(settings, PATIENTS)
    first = datetime.combine(datetime.now(timezone.utc).date() + timedelta(days=2), time(8), tzinfo=timezone.utc)
    slots = [first + timedelta(minutes=30 * n) for n in range(slot_count)]
    with running_server(settings, workers, log_path) as base_url, ThreadPoolExecutor(max_workers=PATIENTS) as pool:
        patients = list(pool.map(lambda email: log_in(base_url, email), cast.patient_emails))
        outcomes = {start: race(patients, cast.doctor_id, start, pool) for start in slots}
        wins = [r.json()["position"] for responses in outcomes.values() for r in responses if r.status_code == 201]
        admin = log_in(base_url, cast.admin_email)
        listed = admin.get("/appointments", params={"doctor_id": cast.doctor_id, "after": max(wins, default=0), "page_size": 100})
        for client in (admin, *patients):
            client.close()
    return Races(cast, outcomes, listed)


@pytest.mark.parametrize(
    "store, workers, slot_count",
    [("postgres", 2, 20), ("sqlite", 1, 5)],
    ids=["postgres-2-workers", "sqlite-1-worker"],
)
def test_concurrent_bookings_of_each_slot_have_exactly_one_winner(
    make_settings: Any, tmp_path: Path, store: str, workers: int, slot_count: int
) -> None:
    races = run_races(make_settings(store), workers, slot_count, tmp_path / "uvicorn.log")

    tallies = {iso(start): Counter(r.status_code for r in responses) for start, responses in races.outcomes.items()}
    assert tallies == {iso(start): Counter({201: 1, 409: PATIENTS - 1}) for start in races.outcomes}
    refusals = Counter(r.json()["code"] for responses in races.outcomes.values() for r in responses if r.status_code == 409)
    assert refusals == Counter({"slot_taken": slot_count * (PATIENTS - 1)})
    winners = {start: next(r.json()["id"] for r in responses if r.status_code == 201) for start, responses in races.outcomes.items()}
    assert races.listed.status_code == 200, races.listed.text
    listed = races.listed.json()
    assert listed["total"] == slot_count
    assert [(datetime.fromisoformat(item["start"]), item["id"], item["status"]) for item in listed["items"]] == [
        (start, winner, "booked") for start, winner in winners.items()
    ]


@pytest.mark.parametrize(
    "store, workers, slot_count",
    [("postgres", 2, 8), ("sqlite", 1, 4)],
    ids=["postgres-2-workers", "sqlite-1-worker"],
)
def test_every_refusal_names_the_booking_that_won(
    request: pytest.FixtureRequest, make_settings: Any, tmp_path: Path, store: str, workers: int, slot_count: int
) -> None:
    races = run_races(make_settings(store), workers, slot_count, tmp_path / "uvicorn.log")

    misnamed = {}
    for start, responses in races.outcomes.items():
        winner = next(r.json()["id"] for r in responses if r.status_code == 201)
        named = Counter(tuple(b["appointment_id"] for b in r.json()["current"]["bookings"]) for r in responses if r.status_code == 409)
        if set(named) != {(winner,)}:
            misnamed[iso(start)] = {"winner": winner, "named": dict(named)}
    assert misnamed == {}
