"""The chart as of two times, from given events: as recorded by known_at, as clinically true at true_at, each entry
with since when it was known and true."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from test_audit_history import StreamsInMemory
from test_prescription import DOCTOR, checked, item

from commands.base import RecordNotFoundError
from commands.chart_as_of import ChartAsOf, Moments, active_problems, vitals_with_trend
from domain.appointment import Appointment
from domain.care import Kind, PatientCare
from domain.consultation import Consultation
from domain.patients import Patient
from domain.prescription import Prescription
from domain_helpers import CAUSE, CAUSE_DICT, MONDAY, utc

SEEN = utc(MONDAY, 9)  # the visit, by the clinic's clock
WEDNESDAY = SEEN + timedelta(days=2)
THURSDAY = SEEN + timedelta(days=3)
FRIDAY = SEEN + timedelta(days=4)


def stamped(aggregate: Any, *moments: datetime) -> list[Any]:
    """The aggregate's new events, recorded at the given moments (the store's time, as known_at counts)."""
    events = aggregate.collect_events()
    assert len(events) == len(moments)
    return [dataclasses.replace(e, timestamp=moment) for e, moment in zip(events, moments)]


class Record:
    """A patient seen on Monday: the store's events of their profile, care, a booking, a consultation and a
    prescription, each recorded at a known moment."""

    def __init__(self) -> None:
        patient = Patient(account_id="account-1", profile={"full_name": "Ada", "date_of_birth": "1990-01-01"}, cause=CAUSE_DICT)
        patient.update_profile({"allergies": ["penicillin"]}, CAUSE)
        self.patient_id = str(patient.id)
        self.patient = stamped(patient, SEEN - timedelta(days=7), SEEN + timedelta(hours=2))

        care = PatientCare(patient_id=self.patient_id, cause=CAUSE_DICT)
        care.start("relationship-1", "doctor-1", Kind.PRIMARY, "registered", SEEN - timedelta(days=7), CAUSE)
        self.care = stamped(care, SEEN - timedelta(days=7), SEEN - timedelta(days=7))

        appointment = Appointment(
            id=UUID(int=1), doctor_id="doctor-1", patient_id=self.patient_id, start=SEEN, end=SEEN + timedelta(minutes=30),
            day=MONDAY, overbooked=False, reason=None, cause=CAUSE_DICT,
        )
        appointment.confirm(CAUSE)
        self.appointment = stamped(appointment, SEEN - timedelta(days=3), SEEN - timedelta(days=1))

        c = Consultation.start(UUID(int=2), self.patient_id, "doctor-1", str(appointment.id), "in_person", SEEN, CAUSE)
        c.record_complaint("complaint-1", "Sore throat", SEEN, CAUSE)
        c.record_vital_signs("vitals-1", {"pulse": 230}, SEEN - timedelta(minutes=5), SEEN, CAUSE)
        c.record_diagnosis("diagnosis-1", "J02.9", "Pharyngitis", "primary", "provisional", SEEN, CAUSE)
        c.sign(SEEN + timedelta(minutes=20), CAUSE)
        c.amend("amendment-1", "vitals-1", {"pulse": 82}, "typed 230 for 82", SEEN + timedelta(hours=3), CAUSE)
        c.amend("amendment-2", "diagnosis-1", {"status": "resolved"}, "recovered", THURSDAY, CAUSE, effective_at=WEDNESDAY)
        self.consultation_id = str(c.id)
        self.consultation = stamped(
            c,
            SEEN,
            SEEN + timedelta(minutes=1),
            SEEN + timedelta(minutes=2),
            SEEN + timedelta(minutes=3),
            SEEN + timedelta(minutes=20),
            SEEN + timedelta(hours=3),
            THURSDAY,
        )

        p = Prescription.write(UUID(int=3), self.consultation_id, self.patient_id, "doctor-1", [item()], "UTC", SEEN, DOCTOR)
        p.issue(checked(p), None, SEEN + timedelta(minutes=30), MONDAY + timedelta(days=30), DOCTOR)
        p.cancel("stopped", FRIDAY, DOCTOR)
        self.prescription = stamped(p, SEEN + timedelta(minutes=25), SEEN + timedelta(minutes=30), SEEN + timedelta(minutes=30), FRIDAY)

    def chart(self, known_at: datetime | None = None, true_at: datetime | None = None, clinical: bool = True) -> dict[str, Any]:
        streams = [self.patient, self.care, self.appointment, self.consultation, self.prescription]
        histories = StreamsInMemory(*streams)
        chart = ChartAsOf(histories, Moments(known_at, true_at), clinical, {s[0].originator_id: s for s in streams})
        consultations = chart.consultations()
        started = chart.timeline(consultations)
        return {
            **chart.profile(self.patient_id),
            "consultations": started,
            "active_problems": active_problems(started) if clinical else [],
            "vitals": vitals_with_trend(consultations) if clinical else {},
            "active_prescriptions": chart.active_prescriptions(),
            "appointments": chart.appointments(),
            "care": chart.care(),
        }


@pytest.fixture(scope="module")
def record() -> Record:
    return Record()


def test_without_either_time_the_chart_is_the_record_as_now_recorded(record: Record) -> None:
    chart = record.chart()

    assert chart["allergies"] == ["penicillin"]
    assert chart["vitals"]["pulse"]["latest"]["value"] == 82
    assert chart["active_problems"] == []  # resolved
    assert chart["active_prescriptions"] == []  # cancelled on Friday
    assert [a["status"] for a in chart["appointments"]] == ["confirmed"]
    assert [r["doctor_id"] for r in chart["care"]["relationships"]] == ["doctor-1"]


def test_as_known_at_a_moment_the_chart_shows_only_what_was_recorded_by_then(record: Record) -> None:
    chart = record.chart(known_at=SEEN + timedelta(hours=1))

    assert chart["allergies"] == [] and chart["profile_known_since"] == (SEEN - timedelta(days=7)).isoformat()
    pulse = chart["vitals"]["pulse"]["latest"]
    assert (pulse["value"], pulse["flag"], pulse["known_since"]) == (230, "implausible", (SEEN + timedelta(minutes=2)).isoformat())
    [problem] = chart["active_problems"]
    assert (problem["code"], problem["status"], problem["true_since"]) == ("J02.9", "provisional", SEEN.isoformat())
    [prescription] = chart["active_prescriptions"]
    assert prescription["status"] == "issued" and prescription["known_since"] == (SEEN + timedelta(minutes=30)).isoformat()
    [consultation] = chart["consultations"]
    assert consultation["known_since"] == (SEEN + timedelta(minutes=20)).isoformat() and consultation["amendments"] == []


def test_as_clinically_true_at_a_moment_a_change_over_time_waits_for_its_effective_time_and_a_correction_does_not(record: Record) -> None:
    tuesday = record.chart(true_at=WEDNESDAY - timedelta(days=1))
    thursday = record.chart(true_at=THURSDAY)

    assert tuesday["vitals"]["pulse"]["latest"]["value"] == 82  # the correction holds from the measurement on
    assert [(p["status"], p["known_since"]) for p in tuesday["active_problems"]] == [("provisional", (SEEN + timedelta(minutes=3)).isoformat())]
    assert thursday["active_problems"] == []
    [diagnosis] = thursday["consultations"][0]["diagnoses"]
    assert (diagnosis["status"], diagnosis["true_since"], diagnosis["known_since"]) == ("resolved", WEDNESDAY.isoformat(), THURSDAY.isoformat())


def test_entries_are_left_out_before_they_were_true_and_records_before_they_were_recorded(record: Record) -> None:
    before_the_vitals = record.chart(true_at=SEEN - timedelta(minutes=6))
    between = record.chart(true_at=SEEN - timedelta(minutes=1))

    assert before_the_vitals["consultations"] == [] and before_the_vitals["vitals"] == {}
    assert between["consultations"] == [] and between["active_problems"] == []
    assert between["vitals"]["pulse"]["latest"]["measured_at"] == (SEEN - timedelta(minutes=5)).isoformat()  # taken before it began
    assert before_the_vitals["active_prescriptions"] == [] and before_the_vitals["allergies"] == ["penicillin"]
    assert [a["status"] for a in before_the_vitals["appointments"]] == ["confirmed"]


def test_both_times_together_ask_what_was_recorded_by_one_about_the_other(record: Record) -> None:
    chart = record.chart(known_at=WEDNESDAY + timedelta(hours=1), true_at=THURSDAY)

    assert [p["status"] for p in chart["active_problems"]] == ["provisional"]  # the resolution was recorded on Thursday
    assert [p["status"] for p in chart["active_prescriptions"]] == ["issued"]
    assert chart["vitals"]["pulse"]["latest"]["value"] == 82


def test_an_entry_includes_when_each_amendment_it_shows_was_recorded(record: Record) -> None:
    [consultation] = record.chart()["consultations"]

    [vitals] = consultation["vital_signs"]
    assert (vitals["amendment_ids"], vitals["known_since"], vitals["true_since"]) == (
        ["amendment-1"],
        (SEEN + timedelta(hours=3)).isoformat(),
        (SEEN - timedelta(minutes=5)).isoformat(),
    )
    assert [a["known_since"] for a in consultation["amendments"]] == [(SEEN + timedelta(hours=3)).isoformat(), THURSDAY.isoformat()]


def test_the_administrative_chart_has_no_clinical_content(record: Record) -> None:
    chart = record.chart(clinical=False)

    [consultation] = chart["consultations"]
    assert consultation["view"] == "administrative" and "diagnoses" not in consultation
    assert "Pharyngitis" not in repr(chart["consultations"]) and "Sore throat" not in repr(chart)


def test_a_patient_not_registered_yet_at_known_at_is_not_found(record: Record) -> None:
    with pytest.raises(RecordNotFoundError):
        record.chart(known_at=SEEN - timedelta(days=8))


def test_moments_choose_the_last_event_recorded_by_them(record: Record) -> None:
    events = record.consultation

    assert Moments().known(events) == Moments().settled(events) == 7
    assert Moments(known_at=SEEN + timedelta(minutes=2)).known(events) == 3
    assert Moments(known_at=FRIDAY, true_at=SEEN + timedelta(minutes=2)).settled(events) == 3
    assert Moments(known_at=SEEN - timedelta(seconds=1)).known(events) == 0
