"""The prescriptions read model equals the aggregate's own view at each event, items included, and a rebuild reproduces it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from commands import prescriptions as p
from domain.prescription import Prescription
from infrastructure.bootstrap import Medledger
from integration_helpers import ADMIN, projector_positions, read_model_rows, running
from prescription_helpers import a_prescription, dispense, issued, item
from projections.clinical_tables import prescription_items, prescriptions

TABLES = ("prescriptions", "prescription_items")
OVERRIDE = "Benefit outweighs the risk; monitored."


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend), clock) as system:
        yield system


def stored(m: Medledger, pid: str) -> tuple[dict, list[dict]]:
    with m.write_engine.connect() as conn:
        row = conn.execute(select(prescriptions).where(prescriptions.c.id == pid)).mappings().one()
        items = conn.execute(select(prescription_items).where(prescription_items.c.prescription_id == pid)).mappings().all()
    return dict(row), sorted((dict(i) for i in items), key=lambda i: i["item_id"])


def test_the_read_model_is_the_aggregates_view(system: Medledger, clock) -> None:
    written = issued(system, clock, item("Warfarin", quantity=10), item("Naproxen"), override=OVERRIDE)
    dispense(system, written, "warfarin", 4)
    system.projection.run_once()

    aggregate = system.store.find(Prescription, written.prescription_id)
    row, items = stored(system, written.prescription_id)
    assert row["document"] == aggregate.view()
    assert (row["status"], row["version"], row["hazard_flagged"]) == ("partially_dispensed", aggregate.version, False)
    assert (row["patient_id"], row["doctor_id"], row["consultation_id"]) == (
        written.patient.profile_id, written.doctor.profile_id, written.consultation_id
    )
    assert row["valid_until"] == aggregate.valid_until
    assert [(i["medication"], i["quantity"], i["frequency"]) for i in items] == [
        ("Naproxen", 20, "twice_daily"),
        ("Warfarin", 10, "twice_daily"),
    ]


def test_revised_items_replace_the_item_rows(system: Medledger, clock) -> None:
    written = a_prescription(system, clock, item("Paracetamol"), item("Cetirizine"))
    system.projection.run_once()
    p.revise_items(system.services, p.ReviseItems(written.prescription_id, (item("Loratadine"),)), written.doctor.actor)
    system.projection.run_once()
    assert [i["medication"] for i in stored(system, written.prescription_id)[1]] == ["Loratadine"]


def test_a_renewal_is_linked_both_ways_and_a_rebuild_reproduces_the_tables(system: Medledger, clock) -> None:
    written = issued(system, clock, item("Paracetamol"))
    renewal = p.renew_prescription(system.services, p.RenewPrescription(written.prescription_id), written.doctor.actor).id
    p.cancel_prescription(system.services, p.CancelPrescription(renewal, "Not needed after all."), ADMIN)
    system.projection.run_once()
    assert stored(system, written.prescription_id)[0]["renewed_by"] == renewal
    assert (stored(system, renewal)[0]["renewed_from"], stored(system, renewal)[0]["status"]) == (written.prescription_id, "cancelled")
    incremental = {name: rows for name, rows in read_model_rows(system.write_engine).items() if name in TABLES}

    system.projection.rebuild(["prescriptions"])

    rebuilt = {name: rows for name, rows in read_model_rows(system.write_engine).items() if name in TABLES}
    assert rebuilt == incremental and all(incremental[name] for name in TABLES)
    assert projector_positions(system.write_engine)["prescriptions"] == system.store.max_position()


def test_the_sweeps_find_active_prescriptions_through_the_read_model(system: Medledger, clock) -> None:
    written = issued(system, clock, item("Paracetamol"))
    assert system.services.prescriptions.active() == []
    system.projection.run_once()
    assert system.services.prescriptions.active() == [written.prescription_id]
    clock.advance(days=31)
    outcome = p.expire_prescriptions(system.services, p.ExpirePrescriptions(), ADMIN)
    assert (outcome.examined, outcome.changed) == (1, (written.prescription_id,))
    system.projection.run_once()
    assert stored(system, written.prescription_id)[0]["status"] == "expired"
    assert system.services.prescriptions.active() == []


def test_a_sweep_reaches_a_prescription_the_read_model_still_shows_as_a_draft(system: Medledger, clock) -> None:
    written = a_prescription(system, clock, item("Paracetamol"))
    system.projection.run_once()
    p.issue_prescription(system.services, p.IssuePrescription(written.prescription_id), written.doctor.actor)
    assert stored(system, written.prescription_id)[0]["status"] == "draft"
    clock.advance(days=31)
    outcome = p.expire_prescriptions(system.services, p.ExpirePrescriptions(), ADMIN)
    assert outcome.changed == (written.prescription_id,)
    assert system.store.find(Prescription, written.prescription_id).status.value == "expired"
