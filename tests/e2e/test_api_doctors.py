"""Doctors: directory search, profiles, weekly availability, days of leave, free slots and a doctor's day."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from e2e_helpers import ALL_DAY_EVERY_DAY, WEEKDAYS, Clinic, User, changes_nothing, expect, iso, position


def take_leave(clinic: Clinic, user: User, doctor: User, day: Any, reason: str = "conference") -> Any:
    return clinic.client.post(f"/doctors/{doctor.profile_id}/leave", headers=user.headers, json={"day": iso(day), "reason": reason})


def cancel_leave(clinic: Clinic, user: User, doctor: User, day: Any, reason: str = "conference cancelled") -> Any:
    return clinic.client.post(f"/doctors/{doctor.profile_id}/leave/{iso(day)}/cancel", headers=user.headers, json={"reason": reason})


def set_availability(clinic: Clinic, user: User, doctor: User, availability: dict[str, Any]) -> Any:
    return clinic.client.put(f"/doctors/{doctor.profile_id}/availability", headers=user.headers, json=availability)


def patch(clinic: Clinic, user: User, doctor: User, **changes: Any) -> Any:
    return clinic.client.patch(f"/doctors/{doctor.profile_id}", headers=user.headers, json=changes)


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


def test_doctors_are_searched_by_specialty_name_and_a_free_day(clinic: Clinic) -> None:
    admin = clinic.admin()
    okafor = clinic.doctor(admin, name="Dr Amara Okafor", specialization="Cardiology")
    berg = clinic.doctor(admin, name="Dr Lukas Berg", specialization="Dermatology")
    clinic.doctor(admin, availability=None, name="Dr Sofia Marquez", specialization="Cardiology")
    patient = clinic.patient()
    day = clinic.at(3, 0).date()
    after = clinic.latest()

    def search(**params: Any) -> list[str]:
        return names(clinic.read(patient, "/doctors", after=after, **params))

    assert search() == ["Dr Amara Okafor", "Dr Lukas Berg", "Dr Sofia Marquez"]
    assert search(specialty="cardiology") == ["Dr Amara Okafor", "Dr Sofia Marquez"]
    assert search(specialty="Cardio") == []
    assert search(name="BERG") == ["Dr Lukas Berg"]
    assert search(name="dr", specialty="Dermatology") == ["Dr Lukas Berg"]
    assert search(name="%") == []
    assert search(available_on=iso(day)) == ["Dr Amara Okafor", "Dr Lukas Berg"]

    leave = expect(take_leave(clinic, berg, berg, day), 200)
    assert names(clinic.read(patient, "/doctors", after=position(leave), available_on=iso(day))) == ["Dr Amara Okafor"]
    assert names(clinic.read(patient, "/doctors", available_on=iso(day + timedelta(days=1)))) == ["Dr Amara Okafor", "Dr Lukas Berg"]
    assert okafor.profile_id != berg.profile_id


def test_the_doctor_directory_is_paginated(clinic: Clinic) -> None:
    admin = clinic.admin()
    for name in ("Dr A", "Dr B", "Dr C"):
        clinic.doctor(admin, name=name)
    after = clinic.latest()

    first = clinic.read(admin, "/doctors", after=after, page_size=2)
    second = clinic.read(admin, "/doctors", page=2, page_size=2)
    beyond = clinic.read(admin, "/doctors", page=3, page_size=2)

    assert (names(first), first["total"], first["page"], first["page_size"]) == (["Dr A", "Dr B"], 3, 1, 2)
    assert (names(second), second["total"], second["page"]) == (["Dr C"], 3, 2)
    assert (names(beyond), beyond["total"]) == ([], 3)


@pytest.mark.parametrize(
    "params, field",
    [({"page_size": 0}, "page_size"), ({"page_size": 101}, "page_size"), ({"page": 0}, "page"), ({"page": "one"}, "page")],
    ids=["page-size-0", "page-size-101", "page-0", "page-not-a-number"],
)
def test_pages_out_of_bounds_are_422(clinic: Clinic, params: dict[str, Any], field: str) -> None:
    admin = clinic.admin()

    expect(clinic.get(admin, "/doctors", **params), 422, "invalid_request", field)
    expect(clinic.get(admin, "/appointments", **params), 422, "invalid_request", field)


def test_a_doctor_is_read_with_their_availability_and_an_unknown_one_is_404(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin, name="Dr Amara Okafor", specialization="Cardiology")
    patient = clinic.patient()

    record = clinic.read(patient, f"/doctors/{doctor.profile_id}", after=clinic.latest())

    assert record["id"] == doctor.profile_id
    assert (record["name"], record["specialization"], record["consultation_fee"]) == ("Dr Amara Okafor", "Cardiology", "120.00")
    assert record["availability"]["timezone"] == "UTC" and record["availability"]["slot_minutes"] == 30
    assert set(record["availability"]["periods"]) == set(WEEKDAYS)
    expect(clinic.get(patient, "/doctors/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    expect(clinic.get(patient, "/doctors/not-an-id"), 404, "not_found")


@pytest.mark.parametrize("editor", ["self", "admin"])
def test_a_doctor_profile_is_changed_by_the_doctor_or_an_admin(clinic: Clinic, editor: str) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin, name="Dr Amara Okafor")

    answer = expect(patch(clinic, doctor if editor == "self" else admin, doctor, bio="Heart rhythms.", consultation_fee="99.50"), 200)

    record = clinic.read(doctor, f"/doctors/{doctor.profile_id}", after=position(answer))
    assert (record["name"], record["bio"], record["consultation_fee"]) == ("Dr Amara Okafor", "Heart rhythms.", "99.50")
    changes_nothing(clinic, lambda: patch(clinic, doctor, doctor, bio="Heart rhythms."))


def test_nobody_else_changes_a_doctor(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, other = clinic.doctor(admin), clinic.doctor(admin)
    patient, auditor = clinic.patient(), clinic.staff(admin, "auditor")

    for intruder in (other, patient, auditor):
        expect(patch(clinic, intruder, doctor, bio="hacked"), 403, "forbidden")
        expect(set_availability(clinic, intruder, doctor, ALL_DAY_EVERY_DAY), 403, "forbidden")
        expect(take_leave(clinic, intruder, doctor, clinic.at(3, 0).date()), 403, "forbidden")
    expect(clinic.client.patch("/doctors/00000000-0000-0000-0000-000000000000", headers=admin.headers, json={"bio": "x"}), 404)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"consultation_fee": "-1"}, "consultation_fee"),
        ({"consultation_fee": "12.345"}, "consultation_fee"),
        ({"name": ""}, "name"),
        ({"specialization": "x" * 101}, "specialization"),
        ({"colour": "blue"}, "colour"),
    ],
    ids=["negative-fee", "fee-fractions", "empty-name", "long-specialization", "unknown-field"],
)
def test_a_bad_profile_change_is_422(clinic: Clinic, changes: dict[str, Any], field: str) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)

    expect(patch(clinic, doctor, doctor, **changes), 422, "invalid_request", field)


@pytest.mark.parametrize("field", ["name", "specialization", "licence_number", "consultation_fee", "bio"])
@pytest.mark.usefixtures("quiet_projector")
def test_clearing_a_doctor_field_is_422_and_the_directory_keeps_up(clinic: Clinic, field: str) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)

    expect(patch(clinic, doctor, doctor, **{field: None}), 422, field=field)
    answer = expect(patch(clinic, doctor, doctor, bio="still here"), 200)
    assert clinic.read(doctor, f"/doctors/{doctor.profile_id}", after=position(answer))["bio"] == "still here"


def test_availability_replaces_the_week_and_shapes_the_slots(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin, availability=None)
    day = clinic.at(3, 0).date()
    weekday = WEEKDAYS[day.weekday()]
    availability = {"timezone": "Europe/Paris", "slot_minutes": 20, "periods": {weekday: [["13:00", "14:00"], ["09:00", "10:00"]]}}

    answer = expect(set_availability(clinic, admin, doctor, availability), 200)

    record = clinic.read(doctor, f"/doctors/{doctor.profile_id}", after=position(answer))
    assert record["availability"] == {
        "timezone": "Europe/Paris",
        "slot_minutes": 20,
        "periods": {weekday: [["09:00", "10:00"], ["13:00", "14:00"]]},
    }
    slots = clinic.read(doctor, f"/doctors/{doctor.profile_id}/slots", **{"from": iso(day)})
    assert len(slots) == 6
    assert [datetime.fromisoformat(s["end"]) - datetime.fromisoformat(s["start"]) for s in slots] == [timedelta(minutes=20)] * 6
    changes_nothing(clinic, lambda: set_availability(clinic, doctor, doctor, availability))


@pytest.mark.parametrize(
    "availability, code, field",
    [
        ({"timezone": "Mars/Olympus_Mons"}, "invalid_request", "timezone"),  # the schema lists the zones
        ({"periods": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "invalid_availability", "periods.mon[1]"),
        ({"periods": {"mon": [["12:00", "09:00"]]}}, "invalid_availability", "periods.mon[0]"),
        ({"periods": {"mon": [["09:00", "09:10"]]}}, "invalid_availability", "periods.mon[0]"),
        ({"slot_minutes": 4}, "invalid_request", "slot_minutes"),
        ({"slot_minutes": 241}, "invalid_request", "slot_minutes"),
        ({"periods": {"someday": [["09:00", "12:00"]]}}, "invalid_request", "periods.someday.[key]"),
        ({"periods": {"mon": [["09:00", "25:00"]]}}, "invalid_request", "periods.mon.0.1"),
    ],
    ids=["bad-time-zone", "overlapping", "ends-before-start", "shorter-than-a-slot", "slot-4", "slot-241", "bad-weekday", "bad-time"],
)
def test_a_bad_availability_is_422_naming_the_field(clinic: Clinic, availability: dict[str, Any], code: str, field: str) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)

    response = set_availability(clinic, doctor, doctor, {**ALL_DAY_EVERY_DAY, **availability})

    expect(response, 422, code, field)


def test_working_hours_with_a_utc_offset_are_422_not_500(clinic_with: Any) -> None:
    clinic = clinic_with(raise_server_exceptions=False)
    admin = clinic.admin()
    doctor = clinic.doctor(admin)

    response = set_availability(clinic, doctor, doctor, {**ALL_DAY_EVERY_DAY, "periods": {"mon": [["09:00Z", "17:00"]]}})

    expect(response, 422, field="periods.mon.0.0")


def test_leave_empties_the_day_refuses_bookings_and_can_be_cancelled(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    start = clinic.at(3, 10)
    day = start.date()

    leave = expect(take_leave(clinic, doctor, doctor, day, "conference"), 200)

    assert clinic.read(patient, f"/doctors/{doctor.profile_id}/leave", after=position(leave), **{"from": iso(day)}) == [
        {"day": iso(day), "reason": "conference"}
    ]
    assert clinic.free_starts(patient, doctor, day) == set()
    assert clinic.free_starts(patient, doctor, day + timedelta(days=1))
    refused = expect(clinic.book(patient, doctor, start), 409, "doctor_on_leave")
    assert refused["current"]["day"] == iso(day)
    changes_nothing(clinic, lambda: take_leave(clinic, admin, doctor, day))

    cancelled = expect(cancel_leave(clinic, doctor, doctor, day), 200)

    assert start in clinic.free_starts(patient, doctor, day, after=position(cancelled))
    assert clinic.read(patient, f"/doctors/{doctor.profile_id}/leave", **{"from": iso(day)}) == []
    clinic.booked(patient, doctor, start)


def test_leave_is_refused_while_the_day_has_bookings(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    start = clinic.at(3, 10)
    booked = clinic.booked(patient, doctor, start)

    refused = expect(take_leave(clinic, doctor, doctor, start.date()), 409, "leave_clashes_with_bookings")

    assert [b["appointment_id"] for b in refused["current"]["bookings"]] == [booked["id"]]
    assert refused["current"]["bookings"][0]["patient_id"] == patient.profile_id
    expect(clinic.act(patient, booked["id"], "cancel", reason="feeling better"), 200)
    expect(take_leave(clinic, doctor, doctor, start.date()), 200)


def test_leave_in_the_past_is_422(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    yesterday = clinic.clock.now.date() - timedelta(days=1)

    expect(take_leave(clinic, doctor, doctor, yesterday), 422, "leave_in_past", "day")
    expect(cancel_leave(clinic, doctor, doctor, yesterday), 422, "leave_in_past", "day")
    expect(take_leave(clinic, doctor, doctor, clinic.clock.now.date()), 200)


def test_leave_needs_a_reason_and_a_real_day(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    path = f"/doctors/{doctor.profile_id}/leave"

    expect(clinic.client.post(path, headers=doctor.headers, json={"day": iso(clinic.at(3, 0).date())}), 422, field="reason")
    expect(clinic.client.post(path, headers=doctor.headers, json={"day": "2025-02-30", "reason": "conference"}), 422, field="day")
    expect(clinic.client.post(f"{path}/2025-02-30/cancel", headers=doctor.headers, json={"reason": "conference"}), 422, field="day")


def test_free_slots_cover_a_range_and_lose_the_booked_and_the_past(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, patient = clinic.doctor(admin), clinic.patient()
    first = clinic.at(2, 0).date()
    slots_path = f"/doctors/{doctor.profile_id}/slots"

    week = clinic.read(patient, slots_path, after=clinic.latest(), **{"from": iso(first), "to": iso(first + timedelta(days=6))})
    assert len(week) == 7 * 47
    start = clinic.at(2, 10)
    assert start in clinic.free_starts(patient, doctor, first)

    booked = clinic.booked(patient, doctor, start)

    free = clinic.free_starts(patient, doctor, first, after=position(booked))
    assert start not in free and len(free) == 46
    today = clinic.read(patient, slots_path, **{"from": iso(clinic.clock.now.date())})
    assert all(datetime.fromisoformat(slot["start"]) > clinic.clock.now for slot in today)


@pytest.mark.parametrize(
    "days, code",
    [(31, "invalid_input"), (-1, "invalid_input")],
    ids=["more-than-31-days", "to-before-from"],
)
def test_a_slot_range_too_long_or_backwards_is_422(clinic: Clinic, days: int, code: str) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    first = clinic.at(1, 0).date()

    last = first + timedelta(days=days)

    response = clinic.get(doctor, f"/doctors/{doctor.profile_id}/slots", after=clinic.latest(), **{"from": iso(first), "to": iso(last)})

    expect(response, 422, code, "to")
    expect(clinic.get(doctor, f"/doctors/{doctor.profile_id}/leave", **{"from": iso(first), "to": iso(last)}), 422, code, "to")


def test_a_thirty_one_day_range_is_allowed_and_from_is_required(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    first = clinic.at(1, 0).date()
    path = f"/doctors/{doctor.profile_id}/slots"

    assert len(clinic.read(doctor, path, after=clinic.latest(), **{"from": iso(first), "to": iso(first + timedelta(days=30))})) == 31 * 47
    expect(clinic.get(doctor, path), 422, "invalid_request", "from")
    expect(clinic.get(doctor, path, **{"from": "tomorrow"}), 422, "invalid_request", "from")


@pytest.mark.parametrize("query", ["slots", "day", "directory"])
def test_the_last_representable_day_is_not_a_500(clinic_with: Any, query: str) -> None:
    clinic = clinic_with(raise_server_exceptions=False)
    admin = clinic.admin()
    doctor = clinic.doctor(admin)
    path, params = {
        "slots": (f"/doctors/{doctor.profile_id}/slots", {"from": "9999-12-31"}),
        "day": (f"/doctors/{doctor.profile_id}/day", {"day": "9999-12-31"}),
        "directory": ("/doctors", {"available_on": "9999-12-31"}),
    }[query]

    response = clinic.get(admin, path, after=clinic.latest(), **params)

    assert response.status_code in (200, 422), response.text


def test_a_doctors_day_is_seen_by_the_doctor_admins_and_auditors_only(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, other = clinic.doctor(admin), clinic.doctor(admin)
    auditor = clinic.staff(admin, "auditor")
    patient = clinic.patient(full_name="Alan Turing")
    start = clinic.at(2, 9, 30)
    booked = clinic.booked(patient, doctor, start)
    path = f"/doctors/{doctor.profile_id}/day"

    day = clinic.read(doctor, path, after=position(booked), day=iso(start.date()))

    assert day["doctor_id"] == doctor.profile_id and day["day"] == iso(start.date()) and day["leave"] is None
    assert [(a["id"], a["patient_name"], a["status"]) for a in day["appointments"]] == [(booked["id"], "Alan Turing", "booked")]
    assert len(day["free_slots"]) == 46 and start not in [datetime.fromisoformat(s["start"]) for s in day["free_slots"]]
    assert clinic.read(admin, path, day=iso(start.date()))["appointments"][0]["id"] == booked["id"]
    assert clinic.read(auditor, path, day=iso(start.date()))["appointments"][0]["id"] == booked["id"]
    assert clinic.read(doctor, path)["day"] == iso(clinic.clock.now.date())
    expect(clinic.get(other, path, day=iso(start.date())), 403, "forbidden")
    expect(clinic.get(patient, path, day=iso(start.date())), 403, "forbidden")
    expect(clinic.get(admin, "/doctors/00000000-0000-0000-0000-000000000000/day"), 404)
