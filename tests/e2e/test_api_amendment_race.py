"""Amendments racing on one consultation: every success the client is told of is an event in the record."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import httpx

from domain.consultation import Consultation
from e2e_helpers import Clinic, expect, position
from test_api_consultations import consultation, open_visit, recorded

RACERS = 12
ROUNDS = 3


def amendments_recorded(clinic: Clinic, consultation_id: str) -> dict[str, list[dict]]:
    """Each entry's amendments as the event store holds them."""
    events = clinic.medledger.store.app.events.get(UUID(consultation_id))
    found: dict[str, list[dict]] = {}
    for event in events:
        if isinstance(event, Consultation.EntryAmended):
            found.setdefault(event.entry_id, []).append(event.new)
    return found


def test_every_amendment_answered_with_success_is_recorded(clinic: Clinic) -> None:
    visit = open_visit(clinic)
    cid = visit.consultation_id
    recorded(clinic, visit.doctor, cid, "complaint", {"text": "Headache"})
    last = recorded(clinic, visit.doctor, cid, "vitals", {"pulse": 70})
    view = consultation(clinic, visit.doctor, cid, after=position(last))
    complaint, vitals = view["chief_complaint"]["entry_id"], view["vital_signs"][0]["entry_id"]
    path = f"/consultations/{cid}/amendments"

    def amend(args: tuple[int, int]) -> tuple[str, dict, httpx.Response]:
        round_, n = args
        entry, changes = (complaint, {"text": f"Headache {round_}.{n}"}) if n % 2 else (vitals, {"pulse": 71 + round_ * RACERS + n})
        barrier.wait(timeout=30)
        response = clinic.client.post(path, headers=visit.doctor.headers, json={"entry_id": entry, "changes": changes, "reason": "corrected value"})
        return entry, changes, response

    answered: list[tuple[str, dict, httpx.Response]] = []
    with ThreadPoolExecutor(RACERS) as pool:
        for round_ in range(ROUNDS):
            barrier = threading.Barrier(RACERS)
            answered += pool.map(amend, [(round_, n) for n in range(RACERS)])

    successes = [(entry, changes) for entry, changes, response in answered if response.status_code == 200]
    assert successes, [response.text for _, _, response in answered]
    for _, _, response in answered:
        assert response.status_code in (200, 409), response.text
    recorded_amendments = amendments_recorded(clinic, cid)
    for entry, changes in successes:
        assert changes in recorded_amendments.get(entry, []), f"answered 200 but no event records {changes}"
    assert sum(len(found) for found in recorded_amendments.values()) == len(successes)
    current = expect(clinic.client.get(f"/consultations/{cid}", headers=visit.doctor.headers), 200)
    assert current["id"] == cid
