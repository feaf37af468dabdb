"""A store written by an earlier release still replays: every stored event of its fixture loads into its
aggregate, and every read model is rebuilt from it, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import json
import pkgutil
from base64 import b64decode
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from sqlalchemy import func, select

import domain
from domain.accounts import Account
from domain.appointment import Appointment
from domain.consultation import Consultation
from domain.prescription import Prescription
from domain.sessions import Session
from infrastructure.bootstrap import Medledger, bootstrap
from projections.clinical_tables import consultations, prescriptions
from projections.tables import appointments, user_actions
from projections.user_actions import UserActions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RELEASES = sorted(path.name.removesuffix(".events.jsonl") for path in FIXTURES.glob("*.events.jsonl"))


for module in pkgutil.iter_modules(domain.__path__):  # every aggregate's event topics, as the service registers them
    importlib.import_module(f"domain.{module.name}")


def stored_events(release: str) -> list[tuple[int, StoredEvent]]:
    rows = [json.loads(line) for line in (FIXTURES / f"{release}.events.jsonl").read_text().splitlines()]
    return [
        (row["id"], StoredEvent(UUID(row["originator_id"]), row["originator_version"], row["topic"], b64decode(row["state"])))
        for row in rows
    ]


@pytest.fixture(params=RELEASES)
def replayed(request: pytest.FixtureRequest, backend: str, make_settings: Any) -> Any:
    events = stored_events(request.param)
    system = bootstrap(make_settings(backend))
    positions = system.store.recorder.insert_events([stored for _, stored in events])
    yield system, events, positions
    system.close()


def test_there_is_a_fixture_of_the_previous_release() -> None:
    assert "release-2026-12-01" in RELEASES


def test_every_stored_event_loads_into_its_aggregate(replayed: tuple[Medledger, list[tuple[int, StoredEvent]], list[int]]) -> None:
    system, events, positions = replayed
    versions = Counter(stored.originator_id for _, stored in events)

    loaded = {uid: system.store.find(Aggregate, uid) for uid in versions}

    assert positions == [position for position, _ in events]
    assert {uid: aggregate.version for uid, aggregate in loaded.items() if aggregate is not None} == versions
    first_topics = {stored.originator_id: stored.topic for _, stored in reversed(events)}
    for uid, aggregate in loaded.items():
        assert first_topics[uid].split(":")[1].split(".")[0] == type(aggregate).__name__


def test_the_replayed_records_say_what_the_release_recorded(replayed: tuple[Medledger, list[tuple[int, StoredEvent]], list[int]]) -> None:
    system, events, _ = replayed
    of_type = lambda cls: [a for a in (system.store.find(cls, s.originator_id) for _, s in events if s.originator_version == 1) if a]  # noqa: E731

    statuses = sorted(str(a.status) for a in of_type(Appointment))
    consultation = of_type(Consultation)[0]
    vitals = next(entry for entry in consultation.entries.values() if entry["entry_kind"] == "vital_signs")

    assert statuses == ["booked", "cancelled", "completed", "completed"]
    assert str(consultation.status) == "signed"
    assert (vitals["recorded"]["systolic"], vitals["current"]["systolic"]) == (150, 140)
    assert sorted(str(p.status) for p in of_type(Prescription)) == ["cancelled", "expired", "expired"]
    assert sorted(str(a.role) for a in of_type(Account)) == ["admin", "analyst", "doctor", "doctor", "patient", "patient"]
    assert [s.revoked for s in of_type(Session)] == [True]


def test_every_read_model_is_rebuilt_from_it(replayed: tuple[Medledger, list[tuple[int, StoredEvent]], list[int]]) -> None:
    system, events, _ = replayed

    system.projection.run_once()

    with system.read_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(appointments)).scalar_one() == 4
        assert conn.execute(select(consultations.c.status)).scalars().all() == ["signed"]
        [document] = conn.execute(select(consultations.c.document)).scalars().all()
        assert [v["systolic"] for v in document["vital_signs"]] == [140]  # amended under the older topic of EntryAmended
        assert [a["effective_at"] for a in document["amendments"]] == [None]
        assert sorted(conn.execute(select(prescriptions.c.status)).scalars().all()) == ["cancelled", "expired", "expired"]
    assert system.projection.run_once() == 0


def test_every_event_a_user_caused_is_indexed_by_its_identifiers(replayed: tuple[Medledger, list[tuple[int, StoredEvent]], list[int]]) -> None:
    system, events, positions = replayed
    mapper = system.store.app.mapper
    caused = [
        (position, str(stored.originator_id), stored.originator_version, stored.topic, cause["user_id"])
        for position, (_, stored) in zip(positions, events)
        if isinstance(cause := getattr(mapper.to_domain_event(stored), "cause", None), dict) and cause.get("user_id")
    ]

    system.projection.run_once()

    assert {stored.topic for _, stored in events} <= set(UserActions().handlers)
    with system.read_engine.connect() as conn:
        indexed = conn.execute(select(user_actions.c.position, user_actions.c.record_id, user_actions.c.version, user_actions.c.topic, user_actions.c.user_id).order_by(user_actions.c.position)).all()
    assert [tuple(row) for row in indexed] == caused and len(caused) > len(events) / 2
