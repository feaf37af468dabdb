"""Appointments over HTTP: booking rules, confirm, cancel with its cut-off, reschedule, attendance, corrections, lists."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from e2e_helpers import Clinic, User, changes_nothing, expect, iso, position


def appointment(clinic: Clinic, user: User, appointment_id: str, after: int | None = None) -> dict[str, Any]:
    return clinic.read(user, f"/appointments/{appointment_id}", after=after)


def start_of(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["start"])


class TestBooking:
    def test_a_patient_books_a_free_slot_for_themself(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(2, 10)

        answer = clinic.booked(patient, doctor, start)

        record = appointment(clinic, patient, answer["id"], after=position(answer))
        assert (record["doctor_id"], record["patient_id"], record["status"], record["overbooked"]) == (
            doctor.profile_id,
            patient.profile_id,
            "booked",
            False,
        )
        assert (start_of(record), datetime.fromisoformat(record["end"])) == (start, start + timedelta(minutes=30))
        assert record["day"] == iso(start.date())
        assert [a["id"] for a in clinic.read(patient, "/appointments")["items"]] == [answer["id"]]

    def test_a_start_in_another_offset_names_the_same_slot(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient, other = clinic.doctor(admin), clinic.patient(), clinic.patient()
        start = clinic.at(2, 10)

        clinic.booked(patient, doctor, start.astimezone(timezone(timedelta(hours=5, minutes=30))))

        expect(clinic.book(other, doctor, start), 409, "slot_taken")

    def test_a_patient_cannot_book_for_another_patient(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient, other = clinic.doctor(admin), clinic.patient(), clinic.patient()

        expect(clinic.book(patient, doctor, clinic.at(2, 10), patient_id=other.profile_id), 403, "forbidden")

    def test_an_admin_books_for_a_named_patient_only(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        answer = clinic.booked(admin, doctor, clinic.at(2, 10), patient_id=patient.profile_id)

        assert appointment(clinic, patient, answer["id"], after=position(answer))["patient_id"] == patient.profile_id
        expect(clinic.book(admin, doctor, clinic.at(2, 11)), 422, field="patient_id")
        expect(clinic.book(admin, doctor, clinic.at(2, 11), patient_id="00000000-0000-4000-8000-000000000000"), 404)

    @pytest.mark.parametrize("role", ["doctor", "auditor", "analyst"])
    def test_other_roles_do_not_book(self, clinic: Clinic, role: str) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        caller = doctor if role == "doctor" else clinic.staff(admin, role)

        expect(clinic.book(caller, doctor, clinic.at(2, 10), patient_id=patient.profile_id), 403, "forbidden")

    @pytest.mark.parametrize(
        "when, code",
        [((-1, 10, 0), "booking_in_past"), ((0, 0, 0), "booking_in_past"), ((2, 10, 15), "off_grid"), ((2, 23, 30), "outside_availability")],
        ids=["yesterday", "earlier-today", "off-grid", "outside-hours"],
    )
    def test_a_start_that_is_no_bookable_slot_is_422(self, clinic: Clinic, when: tuple[int, int, int], code: str) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        expect(clinic.book(patient, doctor, clinic.at(*when)), 422, code, "start")

    def test_a_doctor_without_hours_cannot_be_booked(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin, availability=None), clinic.patient()

        expect(clinic.book(patient, doctor, clinic.at(2, 10)), 422, "no_availability", "doctor_id")

    @pytest.mark.parametrize(
        "payload, field",
        [
            ({"start": "2031-01-01T10:00:00"}, "start"),
            ({"start": "next tuesday"}, "start"),
            ({"doctor_id": "not-a-uuid"}, "doctor_id"),
            ({"doctor_id": None}, "doctor_id"),
            ({"overbook_reason": "x"}, "overbook_reason"),
            ({"room": "3"}, "room"),
        ],
        ids=["naive-datetime", "not-a-datetime", "bad-doctor-id", "null-doctor-id", "short-overbook-reason", "unknown-field"],
    )
    def test_a_malformed_booking_is_422_naming_the_field(self, clinic: Clinic, payload: dict[str, Any], field: str) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        body = {"doctor_id": doctor.profile_id, "start": iso(clinic.at(2, 10)), **payload}

        expect(clinic.client.post("/appointments", headers=patient.headers, json=body), 422, "invalid_request", field)

    def test_a_body_that_is_not_json_is_422(self, clinic: Clinic) -> None:
        patient = clinic.patient()
        headers = {**patient.headers, "Content-Type": "application/json"}

        expect(clinic.client.post("/appointments", headers=headers, content=b"{'doctor_id': "), 422, "invalid_request")
        expect(clinic.client.post("/appointments", headers=headers, content=b""), 422, "invalid_request")

    def test_an_unknown_doctor_is_404(self, clinic: Clinic) -> None:
        patient = clinic.patient()

        payload = {"doctor_id": "00000000-0000-4000-8000-000000000000", "start": iso(clinic.at(2, 10))}
        expect(clinic.client.post("/appointments", headers=patient.headers, json=payload), 404, "not_found")
        payload["doctor_id"] = patient.profile_id
        expect(clinic.client.post("/appointments", headers=patient.headers, json=payload), 404, "not_found")

    def test_a_taken_slot_is_409_with_the_booking_that_holds_it(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, first, second = clinic.doctor(admin), clinic.patient(), clinic.patient()
        start = clinic.at(2, 10)
        held = clinic.booked(first, doctor, start)

        refused = expect(clinic.book(second, doctor, start), 409, "slot_taken")
        refused_to_admin = expect(clinic.book(admin, doctor, start, patient_id=second.profile_id), 409, "slot_taken")

        assert [(b["appointment_id"], b["patient_id"]) for b in refused_to_admin["current"]["bookings"]] == [(held["id"], first.profile_id)]
        assert [b["appointment_id"] for b in refused["current"]["bookings"]] == [held["id"]]
        assert datetime.fromisoformat(refused["current"]["bookings"][0]["start"]) == start
        assert clinic.read(admin, "/appointments", after=clinic.latest(), doctor_id=doctor.profile_id)["total"] == 1

    def test_a_taken_slot_does_not_tell_another_patient_who_holds_it(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, first, second = clinic.doctor(admin), clinic.patient(), clinic.patient()
        start = clinic.at(2, 10)
        clinic.booked(first, doctor, start)
        mine = clinic.booked(second, doctor, start + timedelta(hours=1))

        refusals = [
            expect(clinic.book(second, doctor, start), 409, "slot_taken"),
            expect(clinic.act(second, mine["id"], "reschedule", start=iso(start), reason="earlier suits me"), 409, "slot_taken"),
        ]

        for refused in refusals:
            assert first.profile_id not in str(refused)
            assert [sorted(b) for b in refused["current"]["bookings"]] == [["appointment_id", "end", "overbooked", "start"]]

    def test_a_patient_cannot_hold_two_overlapping_appointments(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, other_doctor, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        start = clinic.at(2, 10)
        held = clinic.booked(patient, doctor, start)

        refused = expect(clinic.book(patient, other_doctor, start), 409, "patient_double_booked")

        assert [b["appointment_id"] for b in refused["current"]["bookings"]] == [held["id"]]
        clinic.booked(patient, other_doctor, start + timedelta(minutes=30))

    def test_booking_the_same_slot_again_answers_the_same_appointment(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(2, 10)
        first = clinic.booked(patient, doctor, start)

        again = changes_nothing(clinic, lambda: clinic.book(patient, doctor, start))

        assert again["id"] == first["id"]
        assert clinic.read(patient, "/appointments", after=position(first))["total"] == 1

    def test_an_admin_overbooks_a_taken_slot_with_a_reason_and_a_patient_may_not(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, first, second = clinic.doctor(admin), clinic.patient(), clinic.patient()
        start = clinic.at(2, 10)
        clinic.booked(first, doctor, start)

        expect(clinic.book(second, doctor, start, overbook_reason="urgent case"), 403, "forbidden")
        over = clinic.booked(admin, doctor, start, patient_id=second.profile_id, overbook_reason="urgent case")

        assert appointment(clinic, admin, over["id"], after=position(over))["overbooked"] is True
        assert clinic.read(admin, "/appointments", doctor_id=doctor.profile_id)["total"] == 2


class TestConfirmation:
    def test_the_doctor_or_an_admin_confirms_and_confirming_twice_changes_nothing(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(2, 10))

        confirmed = expect(clinic.act(doctor, booked["id"], "confirm"), 200)

        assert appointment(clinic, patient, booked["id"], after=position(confirmed))["status"] == "confirmed"
        changes_nothing(clinic, lambda: clinic.act(doctor, booked["id"], "confirm"))
        changes_nothing(clinic, lambda: clinic.act(admin, booked["id"], "confirm"))

    def test_the_patient_may_not_confirm_and_another_doctor_does_not_see_it(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, other_doctor, patient, other_patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient(), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(2, 10))

        expect(clinic.act(patient, booked["id"], "confirm"), 403, "forbidden")
        expect(clinic.act(other_doctor, booked["id"], "confirm"), 404, "not_found")
        expect(clinic.act(other_patient, booked["id"], "confirm"), 404, "not_found")
        expect(clinic.act(doctor, "00000000-0000-4000-8000-000000000000", "confirm"), 404, "not_found")

    def test_a_cancelled_appointment_cannot_be_confirmed(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(2, 10))
        expect(clinic.act(patient, booked["id"], "cancel", reason="feeling better"), 200)

        refused = expect(clinic.act(doctor, booked["id"], "confirm"), 409, "invalid_transition")

        assert refused["current"]["status"] == "cancelled"


class TestCancellation:
    def test_a_patient_cancels_before_the_cut_off_and_the_slot_is_free_again(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient, other = clinic.doctor(admin), clinic.patient(), clinic.patient()
        start = clinic.at(3, 10)
        booked = clinic.booked(patient, doctor, start)
        clinic.move_clock_to(start - timedelta(hours=25))

        cancelled = expect(clinic.act(patient, booked["id"], "cancel", reason="feeling better"), 200)

        assert appointment(clinic, patient, booked["id"], after=position(cancelled))["status"] == "cancelled"
        assert start in clinic.free_starts(other, doctor, start.date())
        rebooked = clinic.booked(other, doctor, start)
        assert rebooked["id"] != booked["id"]

    def test_cancelling_twice_changes_nothing(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(3, 10))
        expect(clinic.act(patient, booked["id"], "cancel", reason="feeling better"), 200)

        again = changes_nothing(clinic, lambda: clinic.act(patient, booked["id"], "cancel", reason="feeling better"))

        assert set(again) == {"id", "position"} and again["id"] == booked["id"]

    def test_after_the_cut_off_the_patient_may_not_cancel_but_the_doctor_may(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(3, 10)
        booked = clinic.booked(patient, doctor, start)
        clinic.move_clock_to(start - timedelta(hours=23))

        refused = expect(clinic.act(patient, booked["id"], "cancel", reason="feeling better"), 409, "cancellation_window_closed")
        assert refused["current"]["status"] == "booked"
        cancelled = expect(clinic.act(doctor, booked["id"], "cancel", reason="doctor unwell"), 200)

        assert appointment(clinic, patient, booked["id"], after=position(cancelled))["status"] == "cancelled"

    def test_an_admin_cancels_after_the_cut_off(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(3, 10)
        booked = clinic.booked(patient, doctor, start)
        clinic.move_clock_to(start - timedelta(hours=1))

        expect(clinic.act(admin, booked["id"], "cancel", reason="clinic closed"), 200)

    @pytest.mark.parametrize("payload", [None, {}, {"reason": "no"}], ids=["no-body", "no-reason", "short-reason"])
    def test_a_cancellation_needs_a_reason(self, clinic: Clinic, payload: dict[str, Any] | None) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(3, 10))

        response = clinic.client.post(f"/appointments/{booked['id']}/cancel", headers=patient.headers, json=payload)

        expect(response, 422, "invalid_request")

    def test_strangers_do_not_cancel(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, other_doctor, patient, other = clinic.doctor(admin), clinic.doctor(admin), clinic.patient(), clinic.patient()
        auditor = clinic.staff(admin, "auditor")
        booked = clinic.booked(patient, doctor, clinic.at(3, 10))

        expect(clinic.act(other, booked["id"], "cancel", reason="mischief"), 404)
        expect(clinic.act(other_doctor, booked["id"], "cancel", reason="mischief"), 404)
        expect(clinic.act(auditor, booked["id"], "cancel", reason="mischief"), 403)


class TestRescheduling:
    def test_rescheduling_frees_the_old_slot_and_takes_the_new_one(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        old, new = clinic.at(2, 10), clinic.at(3, 14)
        booked = clinic.booked(patient, doctor, old)
        expect(clinic.act(doctor, booked["id"], "confirm"), 200)

        moved = expect(clinic.act(patient, booked["id"], "reschedule", start=iso(new), reason="clash at work"), 200)

        record = appointment(clinic, patient, booked["id"], after=position(moved))
        assert (start_of(record), record["day"], record["status"]) == (new, iso(new.date()), "booked")
        assert old in clinic.free_starts(patient, doctor, old.date())
        assert new not in clinic.free_starts(patient, doctor, new.date())
        changes_nothing(clinic, lambda: clinic.act(patient, booked["id"], "reschedule", start=iso(new), reason="clash at work"))

    def test_rescheduling_onto_a_taken_slot_is_409_and_keeps_the_old_slot(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient, other, third = clinic.doctor(admin), clinic.patient(), clinic.patient(), clinic.patient()
        mine, theirs = clinic.at(2, 10), clinic.at(2, 11)
        booked = clinic.booked(patient, doctor, mine)
        taken = clinic.booked(other, doctor, theirs)

        refused = expect(clinic.act(patient, booked["id"], "reschedule", start=iso(theirs), reason="later suits"), 409, "slot_taken")

        assert [b["appointment_id"] for b in refused["current"]["bookings"]] == [taken["id"]]
        after = clinic.latest()
        assert start_of(appointment(clinic, patient, booked["id"], after=after)) == mine
        assert start_of(appointment(clinic, other, taken["id"])) == theirs
        free = clinic.free_starts(patient, doctor, mine.date())
        assert mine not in free and theirs not in free
        expect(clinic.book(third, doctor, mine), 409, "slot_taken")
        expect(clinic.book(third, doctor, theirs), 409, "slot_taken")

    def test_rescheduling_onto_a_bad_slot_keeps_the_appointment(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(2, 10)
        booked = clinic.booked(patient, doctor, start)

        expect(clinic.act(patient, booked["id"], "reschedule", start=iso(clinic.at(2, 10, 10)), reason="ten past"), 422, "off_grid")
        expect(clinic.act(patient, booked["id"], "reschedule", start=iso(clinic.at(-1, 10)), reason="yesterday"), 422, "booking_in_past")
        expect(clinic.act(patient, booked["id"], "reschedule", start="2031-01-01T10:00:00", reason="naive"), 422, field="start")
        expect(clinic.act(patient, booked["id"], "reschedule", start=iso(clinic.at(2, 12))), 422, field="reason")
        assert start_of(appointment(clinic, patient, booked["id"], after=clinic.latest())) == start

    def test_after_the_cut_off_only_staff_reschedule(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(3, 10)
        booked = clinic.booked(patient, doctor, start)
        clinic.move_clock_to(start - timedelta(hours=2))

        expect(clinic.act(patient, booked["id"], "reschedule", start=iso(clinic.at(1, 9)), reason="later"), 409, "cancellation_window_closed")
        expect(clinic.act(doctor, booked["id"], "reschedule", start=iso(start + timedelta(hours=1)), reason="running late"), 200)

    def test_a_cancelled_appointment_cannot_be_rescheduled(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(3, 10))
        expect(clinic.act(patient, booked["id"], "cancel", reason="feeling better"), 200)

        expect(clinic.act(patient, booked["id"], "reschedule", start=iso(clinic.at(3, 11)), reason="changed my mind"), 409, "invalid_transition")


class TestAttendance:
    @pytest.mark.parametrize("action, status", [("complete", "completed"), ("no-show", "no_show")])
    def test_attendance_is_recorded_only_once_the_appointment_has_started(self, clinic: Clinic, action: str, status: str) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(2, 10)
        booked = clinic.booked(patient, doctor, start)

        refused = expect(clinic.act(doctor, booked["id"], action), 409, "appointment_not_started")
        assert refused["current"]["status"] == "booked"
        clinic.move_clock_to(start + timedelta(minutes=5))
        recorded = expect(clinic.act(doctor, booked["id"], action), 200)

        assert appointment(clinic, patient, booked["id"], after=position(recorded))["status"] == status
        changes_nothing(clinic, lambda: clinic.act(admin, booked["id"], action))
        expect(clinic.act(patient, booked["id"], action), 403, "forbidden")

    def test_a_status_is_corrected_with_a_reason_but_never_to_cancelled(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(2, 10)
        booked = clinic.booked(patient, doctor, start)
        clinic.move_clock_to(start + timedelta(minutes=40))
        expect(clinic.act(doctor, booked["id"], "complete"), 200)

        corrected = expect(clinic.act(doctor, booked["id"], "status-correction", status="no_show", reason="wrong patient ticked"), 200)

        assert appointment(clinic, patient, booked["id"], after=position(corrected))["status"] == "no_show"
        expect(clinic.act(admin, booked["id"], "status-correction", status="cancelled", reason="never happened"), 422, "invalid_correction", "status")
        expect(clinic.act(admin, booked["id"], "status-correction", status="completed"), 422, "invalid_request", "reason")
        expect(clinic.act(admin, booked["id"], "status-correction", status="lost", reason="whatever"), 422, "invalid_request", "status")
        expect(clinic.act(patient, booked["id"], "status-correction", status="completed", reason="I was there"), 403)


class TestLists:
    def test_appointments_are_filtered_by_doctor_patient_status_and_time(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        okafor, berg = clinic.doctor(admin), clinic.doctor(admin)
        grace, alan = clinic.patient(), clinic.patient()
        a = clinic.booked(grace, okafor, clinic.at(2, 9))
        b = clinic.booked(alan, okafor, clinic.at(2, 10))
        c = clinic.booked(grace, berg, clinic.at(3, 9))
        d = clinic.booked(alan, berg, clinic.at(4, 9))
        expect(clinic.act(okafor, b["id"], "confirm"), 200)
        expect(clinic.act(berg, d["id"], "cancel", reason="doctor away"), 200)
        after = clinic.latest()

        def ids(**params: Any) -> list[str]:
            page = clinic.read(admin, "/appointments", after=after, **params)
            assert page["total"] == len(page["items"])
            return [item["id"] for item in page["items"]]

        assert ids() == [a["id"], b["id"], c["id"], d["id"]]
        assert ids(doctor_id=okafor.profile_id) == [a["id"], b["id"]]
        assert ids(patient_id=grace.profile_id) == [a["id"], c["id"]]
        assert ids(doctor_id=berg.profile_id, patient_id=alan.profile_id) == [d["id"]]
        assert ids(status="confirmed") == [b["id"]]
        assert ids(status="cancelled") == [d["id"]]
        assert ids(**{"from": iso(clinic.at(2, 10))}) == [b["id"], c["id"], d["id"]]
        assert ids(to=iso(clinic.at(2, 10))) == [a["id"]]
        assert ids(**{"from": iso(clinic.at(2, 9, 30)), "to": iso(clinic.at(3, 9, 30))}) == [b["id"], c["id"]]
        expect(clinic.get(admin, "/appointments", status="lost"), 422, field="status")
        expect(clinic.get(admin, "/appointments", **{"from": "2031-01-01T10:00:00"}), 422, field="from")

    def test_time_filters_with_a_utc_offset_mean_the_same_instant(self, request: pytest.FixtureRequest, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start = clinic.at(2, 10)
        booked = clinic.booked(patient, doctor, start)
        paris_summer, new_york = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))

        def ids(**params: Any) -> list[str]:
            return [item["id"] for item in clinic.read(admin, "/appointments", after=position(booked), **params)["items"]]

        assert ids(**{"from": iso((start - timedelta(minutes=30)).astimezone(paris_summer))}) == [booked["id"]]
        assert ids(**{"from": iso((start + timedelta(minutes=30)).astimezone(new_york))}) == []
        assert ids(to=iso((start + timedelta(minutes=30)).astimezone(new_york))) == [booked["id"]]
        assert ids(to=iso(start.astimezone(paris_summer))) == []

    def test_a_patient_sees_only_their_own_appointments_whatever_they_ask(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, grace, alan = clinic.doctor(admin), clinic.patient(), clinic.patient()
        mine = clinic.booked(grace, doctor, clinic.at(2, 9))
        theirs = clinic.booked(alan, doctor, clinic.at(2, 10))
        after = clinic.latest()

        assert [i["id"] for i in clinic.read(grace, "/appointments", after=after)["items"]] == [mine["id"]]
        assert clinic.read(grace, "/appointments", patient_id=alan.profile_id)["total"] == 0
        assert [i["id"] for i in clinic.read(grace, "/appointments", doctor_id=doctor.profile_id)["items"]] == [mine["id"]]
        expect(clinic.get(grace, f"/appointments/{theirs['id']}"), 404, "not_found")

    def test_a_doctor_sees_only_their_own_appointments(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, other_doctor, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        mine = clinic.booked(patient, doctor, clinic.at(2, 9))
        theirs = clinic.booked(patient, other_doctor, clinic.at(2, 10))
        after = clinic.latest()

        assert [i["id"] for i in clinic.read(doctor, "/appointments", after=after)["items"]] == [mine["id"]]
        assert clinic.read(doctor, "/appointments", doctor_id=other_doctor.profile_id)["total"] == 0
        assert [i["id"] for i in clinic.read(doctor, "/appointments", patient_id=patient.profile_id)["items"]] == [mine["id"]]
        expect(clinic.get(doctor, f"/appointments/{theirs['id']}"), 404, "not_found")

    @pytest.mark.parametrize("role", ["admin", "auditor", "analyst"])
    def test_staff_read_every_appointment(self, clinic: Clinic, role: str) -> None:
        admin = clinic.admin()
        reader = admin if role == "admin" else clinic.staff(admin, role)
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(2, 9))

        assert appointment(clinic, reader, booked["id"], after=position(booked))["id"] == booked["id"]
        assert clinic.read(reader, "/appointments")["total"] == 1
        expect(clinic.get(reader, "/appointments/00000000-0000-4000-8000-000000000000"), 404)
