"""Given / when / then: writing, checking, issuing (with blocks and overrides), dispensing, cancelling, expiry, renewal and re-checks."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from domain.medication_safety import CheckerUnavailableError, InteractionBlockedError, InteractionTable, check
from domain.prescription import (
    DispenseExceedsRemainingError,
    Frequency,
    Item,
    Prescription,
    PrescriptionExpiredError,
    Route,
    Status,
    UnknownItemError,
)
from domain.shared import Cause, ConflictError, InvalidInputError, InvalidTransitionError, Role
from domain_helpers import emitted, given, refused, replayed

DOCTOR = Cause("doctor-account", Role.DOCTOR, "corr-1")
ADMIN = Cause("admin-account", Role.ADMIN, "corr-2")
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)
TODAY = NOW.date()
VALID_UNTIL = TODAY + timedelta(days=30)
OVERRIDE = "Benefit outweighs risk; INR monitored weekly."

TABLE_DATA: dict[str, Any] = {
    "version": "v1",
    "sources": {"s": {"citation": "A source."}},
    "classes": {"nsaids": {"label": "NSAIDs", "members": ["ibuprofen", "naproxen"]}},
    "pairs": [
        {"a": "warfarin", "b": "class:nsaids", "severity": "major", "effect": "Bleeding.", "sources": ["s"]},
        {"a": "clopidogrel", "b": "omeprazole", "severity": "moderate", "effect": "Less effect.", "sources": ["s"]},
    ],
    "allergy_groups": {
        "penicillins": {"label": "penicillins", "terms": ["penicillin"], "members": ["amoxicillin"], "sources": ["s"]}
    },
}
TABLE = InteractionTable.from_dict(TABLE_DATA)


def newer_table(*pairs: dict[str, Any], version: str = "v2") -> InteractionTable:
    data = copy.deepcopy(TABLE_DATA)
    data["version"] = version
    data["pairs"].extend(pairs)
    return InteractionTable.from_dict(data)


def item(name: str = "Amoxicillin", item_id: str | None = None, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "item_id": item_id or name.lower(),
        "name": name,
        "strength": "500 mg",
        "form": "capsule",
        "dose": "1 capsule",
        "route": Route.ORAL,
        "frequency": Frequency.THREE_TIMES_DAILY,
        "duration_days": 7,
        "quantity": 21,
        "refills": 0,
        "instructions": "After food.",
    }
    values.update(changes)
    return Item(**values)


def written(*items: Item, tz: str = "Europe/London") -> Prescription:
    return given(
        Prescription.write(
            prescription_id=uuid4(),
            consultation_id=str(uuid4()),
            patient_id="patient-1",
            doctor_id="doctor-1",
            items=list(items) or [item()],
            timezone=tz,
            now=NOW,
            cause=DOCTOR,
        )
    )


def checked(prescription: Prescription, allergies: list[str] = (), table: InteractionTable = TABLE):  # type: ignore[assignment]
    return check(table, prescription.medications, list(allergies))


def issued(*items: Item, allergies: list[str] = (), override: str | None = None) -> Prescription:  # type: ignore[assignment]
    prescription = written(*items)
    prescription.issue(checked(prescription, allergies), override, NOW, VALID_UNTIL, DOCTOR)
    return given(prescription)


# Writing and revising


def test_a_doctor_writes_a_draft() -> None:
    prescription = Prescription.write(uuid4(), "c-1", "patient-1", "doctor-1", [item()], "UTC", NOW, DOCTOR)
    assert emitted(prescription) == ["Written"]
    assert prescription.status == Status.DRAFT
    assert prescription.view()["items"][0]["medication"] == {"name": "Amoxicillin", "strength": "500 mg", "form": "capsule"}


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([item(), item()], "items[1].item_id"),
        ([item(duration_days=0)], "items[0].duration_days"),
        ([item(duration_days=366)], "items[0].duration_days"),
        ([item(quantity=0)], "items[0].quantity"),
        ([item(refills=13)], "items[0].refills"),
        ([item(name=" ")], "items[0].medication.name"),
        ([item(dose="")], "items[0].dose"),
    ],
)
def test_items_that_can_never_be_valid_are_refused(items: list[Item], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Prescription.write(uuid4(), "c-1", "patient-1", "doctor-1", items, "UTC", NOW, DOCTOR)
    assert info.value.details["field"] == field


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        Prescription.write(uuid4(), "c-1", "patient-1", "doctor-1", [item()], "Mars/Olympus", NOW, DOCTOR)
    assert info.value.details["field"] == "timezone"


def test_items_are_revised_while_draft_and_the_same_items_again_is_a_no_op() -> None:
    prescription = written()
    prescription.revise_items([item("Cefalexin")], DOCTOR)
    assert emitted(prescription) == ["ItemsRevised"]
    prescription.revise_items([item("Cefalexin")], DOCTOR)
    assert emitted(prescription) == []
    assert prescription.medications == ["Cefalexin"]


def test_items_of_an_issued_prescription_cannot_be_revised() -> None:
    prescription = issued()
    with refused(InvalidTransitionError, prescription):
        prescription.revise_items([item("Cefalexin")], DOCTOR)


# Checking


def test_a_check_is_recorded_with_the_table_version_and_allergies_considered() -> None:
    prescription = written(item("Warfarin"), item("Ibuprofen"))
    prescription.record_check(checked(prescription, ["penicillin"]), NOW, DOCTOR)
    assert emitted(prescription) == ["SafetyChecked"]
    [recorded] = prescription.view()["checks"]
    assert recorded["table_version"] == "v1"
    assert recorded["allergies_checked"] == ["penicillin"]
    assert recorded["context"] == "check"
    assert recorded["by"] == "doctor-account"
    assert [f["severity"] for f in recorded["findings"]] == ["major"]


def test_the_same_check_on_the_same_inputs_again_is_a_no_op_but_a_new_table_is_recorded() -> None:
    prescription = written(item("Warfarin"))
    prescription.record_check(checked(prescription), NOW, DOCTOR)
    prescription.collect_events()
    prescription.record_check(checked(prescription), NOW, DOCTOR)
    assert emitted(prescription) == []
    prescription.record_check(checked(prescription, table=newer_table()), NOW, DOCTOR)
    assert emitted(prescription) == ["SafetyChecked"]


# Issuing


def test_a_prescription_without_severe_findings_is_issued_with_its_check() -> None:
    prescription = written(item("Clopidogrel"), item("Omeprazole"))
    prescription.issue(checked(prescription), None, NOW, VALID_UNTIL, DOCTOR)
    assert emitted(prescription) == ["SafetyChecked", "Issued"]
    view = prescription.view()
    assert view["status"] == "issued"
    assert view["valid_until"] == VALID_UNTIL.isoformat()
    assert view["checks"][-1]["context"] == "issue"
    assert [f["severity"] for f in view["checks"][-1]["findings"]] == ["moderate"]
    assert view["override_reason"] is None


def test_a_severe_interaction_blocks_issue_and_records_nothing() -> None:
    prescription = written(item("Warfarin"), item("Naproxen"))
    with refused(InteractionBlockedError, prescription) as info:
        prescription.issue(checked(prescription), None, NOW, VALID_UNTIL, DOCTOR)
    assert info.value.details["current"]["table_version"] == "v1"
    assert info.value.details["current"]["findings"][0]["drugs"] == ["naproxen", "warfarin"]
    assert prescription.status == Status.DRAFT


def test_an_allergy_blocks_issue_including_through_the_allergy_group() -> None:
    prescription = written(item("Amoxicillin"))
    with refused(InteractionBlockedError, prescription) as info:
        prescription.issue(checked(prescription, ["Penicillin"]), None, NOW, VALID_UNTIL, DOCTOR)
    assert info.value.details["current"]["findings"][0]["kind"] == "allergy"


def test_an_override_with_a_reason_issues_and_is_recorded_with_what_was_shown() -> None:
    prescription = written(item("Warfarin"), item("Naproxen"))
    prescription.issue(checked(prescription), OVERRIDE, NOW, VALID_UNTIL, DOCTOR)
    assert emitted(prescription) == ["SafetyChecked", "Issued"]
    view = prescription.view()
    assert view["override_reason"] == OVERRIDE
    assert view["checks"][-1]["override_reason"] == OVERRIDE
    assert view["checks"][-1]["findings"][0]["severe"] is True


def test_an_override_reason_must_say_something() -> None:
    prescription = written(item("Warfarin"), item("Naproxen"))
    with refused(InvalidInputError, prescription):
        prescription.issue(checked(prescription), "ok", NOW, VALID_UNTIL, DOCTOR)


def test_an_override_without_severe_findings_is_not_recorded_as_one() -> None:
    prescription = written(item("Paracetamol"))
    prescription.issue(checked(prescription), OVERRIDE, NOW, VALID_UNTIL, DOCTOR)
    assert prescription.override_reason is None


def test_a_checker_that_could_not_run_blocks_issue() -> None:
    prescription = written(item("Paracetamol"))
    with refused(CheckerUnavailableError, prescription):
        prescription.issue(None, OVERRIDE, NOW, VALID_UNTIL, DOCTOR)


def test_issuing_again_is_a_no_op() -> None:
    prescription = issued(item("Paracetamol"))
    prescription.issue(None, None, NOW, VALID_UNTIL, DOCTOR)
    assert emitted(prescription) == []


def test_a_cancelled_draft_cannot_be_issued() -> None:
    prescription = written(item("Paracetamol"))
    prescription.cancel("Written in error.", NOW, DOCTOR)
    given(prescription)
    with refused(InvalidTransitionError, prescription):
        prescription.issue(checked(prescription), None, NOW, VALID_UNTIL, DOCTOR)


def test_validity_must_cover_the_day_of_issue() -> None:
    prescription = written(item("Paracetamol"))
    with refused(InvalidInputError, prescription):
        prescription.issue(checked(prescription), None, NOW, TODAY - timedelta(days=1), DOCTOR)


def test_a_draft_cannot_be_checked_once_issued() -> None:
    prescription = issued(item("Paracetamol"))
    with refused(InvalidTransitionError, prescription):
        prescription.record_check(checked(prescription), NOW, DOCTOR)


# Dispensing


def test_partial_then_full_dispensing_including_refills() -> None:
    prescription = issued(item("Paracetamol", quantity=10, refills=1))
    prescription.dispense("paracetamol", 10, NOW, ADMIN)
    assert emitted(prescription) == ["Dispensed"]
    assert prescription.status == Status.PARTIALLY_DISPENSED
    assert prescription.remaining("paracetamol") == 10
    prescription.dispense("paracetamol", 10, NOW, ADMIN)
    assert prescription.status == Status.DISPENSED
    assert {k: prescription.view()["items"][0][k] for k in ("dispensed", "remaining")} == {"dispensed": 20, "remaining": 0}
    assert [d["quantity"] for d in prescription.view()["dispensings"]] == [10, 10]


def test_every_item_must_be_dispensed_for_the_prescription_to_be_dispensed() -> None:
    prescription = issued(item("Paracetamol", quantity=5), item("Cetirizine", quantity=7))
    prescription.dispense("paracetamol", 5, NOW, ADMIN)
    assert prescription.status == Status.PARTIALLY_DISPENSED
    prescription.dispense("cetirizine", 7, NOW, ADMIN)
    assert prescription.status == Status.DISPENSED


def test_dispensing_more_than_remains_is_refused() -> None:
    prescription = issued(item("Paracetamol", quantity=10))
    prescription.dispense("paracetamol", 6, NOW, ADMIN)
    given(prescription)
    with refused(DispenseExceedsRemainingError, prescription) as info:
        prescription.dispense("paracetamol", 5, NOW, ADMIN)
    assert info.value.details["current"]["remaining"] == 4


def test_dispensing_an_unknown_item_or_nothing_is_refused() -> None:
    prescription = issued(item("Paracetamol"))
    with refused(UnknownItemError, prescription):
        prescription.dispense("nope", 1, NOW, ADMIN)
    with refused(InvalidInputError, prescription):
        prescription.dispense("paracetamol", 0, NOW, ADMIN)


def test_a_draft_cannot_be_dispensed() -> None:
    prescription = written(item("Paracetamol"))
    with refused(InvalidTransitionError, prescription):
        prescription.dispense("paracetamol", 1, NOW, ADMIN)


def test_dispensing_after_the_last_valid_day_is_refused_even_before_the_sweep() -> None:
    prescription = issued(item("Paracetamol"))
    later = datetime.combine(VALID_UNTIL + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    with refused(PrescriptionExpiredError, prescription):
        prescription.dispense("paracetamol", 1, later, ADMIN)
    on_last_day = datetime.combine(VALID_UNTIL, datetime.max.time(), tzinfo=timezone.utc)
    prescription.dispense("paracetamol", 1, on_last_day, ADMIN)
    assert emitted(prescription) == ["Dispensed"]


# Cancelling and expiry


@pytest.mark.parametrize("dispensed", [0, 3])
def test_a_draft_or_active_prescription_is_cancelled_with_a_reason_once(dispensed: int) -> None:
    prescription = issued(item("Paracetamol", quantity=10))
    if dispensed:
        prescription.dispense("paracetamol", dispensed, NOW, ADMIN)
        given(prescription)
    prescription.cancel("Patient had a reaction.", NOW, ADMIN)
    assert emitted(prescription) == ["Cancelled"]
    assert prescription.view()["cancel_reason"] == "Patient had a reaction."
    prescription.cancel("Again.", NOW, ADMIN)
    assert emitted(prescription) == []


def test_a_dispensed_prescription_cannot_be_cancelled() -> None:
    prescription = issued(item("Paracetamol", quantity=1))
    prescription.dispense("paracetamol", 1, NOW, ADMIN)
    given(prescription)
    with refused(InvalidTransitionError, prescription):
        prescription.cancel("Too late.", NOW, ADMIN)


def test_expiry_happens_only_after_the_last_valid_day_and_only_once() -> None:
    prescription = issued(item("Paracetamol"))
    assert not prescription.expire(datetime.combine(VALID_UNTIL, datetime.max.time(), tzinfo=timezone.utc), ADMIN)
    assert emitted(prescription) == []
    later = NOW + timedelta(days=31)
    assert prescription.expire(later, ADMIN)
    assert emitted(prescription) == ["Expired"]
    assert prescription.status == Status.EXPIRED
    assert not prescription.expire(later, ADMIN)
    with refused(InvalidTransitionError, prescription):
        prescription.dispense("paracetamol", 1, NOW, ADMIN)


def test_drafts_and_finished_prescriptions_do_not_expire() -> None:
    draft = written(item("Paracetamol"))
    assert not draft.expire(NOW + timedelta(days=400), ADMIN)
    done = issued(item("Paracetamol", quantity=1))
    done.dispense("paracetamol", 1, NOW, ADMIN)
    assert not done.expire(NOW + timedelta(days=400), ADMIN)


# Renewal


def test_renewal_links_the_old_prescription_to_the_new_one() -> None:
    old = issued(item("Paracetamol"))
    renewal_id = str(uuid4())
    old.renewed(renewal_id, DOCTOR)
    assert emitted(old) == ["Renewed"]
    assert old.view()["renewed_by"] == renewal_id
    old.renewed(renewal_id, DOCTOR)
    assert emitted(old) == []
    with refused(ConflictError, old):
        old.renewed(str(uuid4()), DOCTOR)


def test_a_prescription_whose_renewal_was_cancelled_is_renewed_again() -> None:
    old = issued(item("Paracetamol"))
    old.renewed(str(uuid4()), DOCTOR)
    old = given(old)
    second = str(uuid4())

    old.renewed(second, DOCTOR, earlier_renewal_cancelled=True)

    assert emitted(old) == ["Renewed"]
    assert old.renewed_by == second


def test_a_renewal_carries_the_prescription_it_renews() -> None:
    renewal = Prescription.write(uuid4(), "c-1", "patient-1", "doctor-1", [item()], "UTC", NOW, DOCTOR, renewed_from="old-id")
    assert renewal.view()["renewed_from"] == "old-id"
    assert renewal.status == Status.DRAFT


@pytest.mark.parametrize("status", ["draft", "cancelled"])
def test_drafts_and_cancelled_prescriptions_cannot_be_renewed(status: str) -> None:
    prescription = written(item("Paracetamol"))
    if status == "cancelled":
        prescription.cancel("Written in error.", NOW, DOCTOR)
        given(prescription)
    with refused(InvalidTransitionError, prescription):
        prescription.renewed(str(uuid4()), DOCTOR)


# Re-checking against a newer table


def test_a_recheck_flags_only_hazards_no_earlier_check_found() -> None:
    prescription = issued(item("Warfarin"), item("Naproxen"), item("Sertraline"), override=OVERRIDE)
    table = newer_table({"a": "sertraline", "b": "naproxen", "severity": "major", "effect": "GI bleeding.", "sources": ["s"]})
    new = prescription.recheck(check(table, prescription.medications, []), NOW, ADMIN)
    assert emitted(prescription) == ["Rechecked"]
    assert [f.drugs for f in new] == [("naproxen", "sertraline")]
    view = prescription.view()
    assert view["hazard_flagged"] is True
    assert [h["drugs"] for h in view["new_hazards"]] == [["naproxen", "sertraline"]]
    assert view["checks"][-1]["table_version"] == "v2"
    assert len(view["checks"][-1]["findings"]) == 2


def test_a_recheck_without_new_hazards_is_recorded_but_flags_nothing() -> None:
    prescription = issued(item("Paracetamol"))
    assert prescription.recheck(check(newer_table(), prescription.medications, []), NOW, ADMIN) == []
    assert emitted(prescription) == ["Rechecked"]
    assert prescription.hazard_flagged is False


def test_a_recheck_against_the_same_table_version_is_a_no_op() -> None:
    prescription = issued(item("Paracetamol"))
    prescription.recheck(check(TABLE, prescription.medications, []), NOW, ADMIN)
    assert emitted(prescription) == []


def test_only_active_prescriptions_are_rechecked() -> None:
    draft = written(item("Paracetamol"))
    draft.recheck(check(newer_table(), draft.medications, []), NOW, ADMIN)
    assert emitted(draft) == []


def test_a_new_allergy_found_at_recheck_is_a_new_hazard() -> None:
    prescription = issued(item("Amoxicillin"))
    new = prescription.recheck(check(newer_table(), prescription.medications, ["penicillin"]), NOW, ADMIN)
    assert [f.kind.value for f in new] == ["allergy"]


# Replay


def test_the_whole_life_replays_through_the_production_transcoder() -> None:
    prescription = Prescription.write(
        uuid4(), "c-1", "patient-1", "doctor-1", [item("Warfarin", quantity=10), item("Naproxen", quantity=10)], "UTC", NOW, DOCTOR
    )
    prescription.record_check(checked(prescription, ["penicillin"]), NOW, DOCTOR)
    prescription.issue(checked(prescription, ["penicillin"]), OVERRIDE, NOW, VALID_UNTIL, DOCTOR)
    prescription.dispense("warfarin", 4, NOW, ADMIN)
    table = newer_table({"a": "naproxen", "b": "warfarin", "severity": "contraindicated", "effect": "x", "sources": ["s"]})
    prescription.recheck(check(table, prescription.medications, []), NOW, ADMIN)
    prescription.renewed(str(uuid4()), DOCTOR)
    prescription.expire(NOW + timedelta(days=40), ADMIN)
    copy_ = replayed(prescription)
    assert copy_.view() == prescription.view()
    assert isinstance(copy_.valid_until, date)


def test_items_compare_by_value() -> None:
    assert item("A") == item("A") and replace(item("A"), quantity=2) != item("A")


@pytest.mark.parametrize("zone", ["America", "Etc", "Europe/", "../etc/passwd"])
def test_a_time_zone_that_names_a_folder_or_a_path_is_refused_as_input(zone: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Prescription.write(uuid4(), "c-1", "patient-1", "doctor-1", [item()], zone, NOW, DOCTOR)
    assert info.value.details["field"] == "timezone"


def test_the_last_valid_day_is_a_day_in_the_prescriptions_time_zone() -> None:
    # Auckland is UTC+13 in December: 12:00Z on the last valid day is already 01:00 the next day there.
    prescription = written(item("Paracetamol"), tz="Pacific/Auckland")
    prescription.issue(checked(prescription), None, NOW, VALID_UNTIL, DOCTOR)
    given(prescription)
    next_local_day = datetime.combine(VALID_UNTIL, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=12)
    with refused(PrescriptionExpiredError, prescription):
        prescription.dispense("paracetamol", 1, next_local_day, ADMIN)
    assert prescription.expire(next_local_day, ADMIN)
