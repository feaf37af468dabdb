"""Care relationships and break-the-glass over HTTP: who starts and ends them, who sees what, and for how long."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from e2e_helpers import Clinic, User, bearer, changes_nothing, expect, iso, position

UNKNOWN = "00000000-0000-4000-8000-000000000000"
EMERGENCY = "Collapsed in the waiting room, unresponsive"


def relationships(patient: User) -> str:
    return f"/patients/{patient.profile_id}/care-relationships"


def emergency(patient: User) -> str:
    return f"/patients/{patient.profile_id}/emergency-access"


def start(clinic: Clinic, user: User, patient: User, doctor: User | str, kind: str = "primary_care", **extra: Any) -> httpx.Response:
    doctor_id = doctor if isinstance(doctor, str) else doctor.profile_id
    payload = {"doctor_id": doctor_id, "kind": kind, "reason": "Registered with the practice", **extra}
    return clinic.client.post(relationships(patient), headers=user.headers, json=payload)


def started(clinic: Clinic, user: User, patient: User, doctor: User, kind: str = "primary_care", **extra: Any) -> dict[str, Any]:
    return expect(start(clinic, user, patient, doctor, kind, **extra), 201)


def end(clinic: Clinic, user: User, patient: User, relationship_id: str, reason: str | None = "Patient moved away") -> httpx.Response:
    payload = {"reason": reason} if reason is not None else {}
    return clinic.client.post(f"{relationships(patient)}/{relationship_id}/end", headers=user.headers, json=payload)


def break_glass(clinic: Clinic, doctor: User, patient: User, reason: str = EMERGENCY, **extra: Any) -> httpx.Response:
    return clinic.client.post(emergency(patient), headers=doctor.headers, json={"reason": reason, **extra})


def opens(clinic: Clinic, doctor: User, patient: User, after: int | None = None) -> bool:
    """Whether the doctor gets the patient (200) or a 404; anything else fails the test."""
    response = clinic.get(doctor, f"/patients/{patient.profile_id}", after=after)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def listed(clinic: Clinic, user: User, after: int | None = None, **params: Any) -> list[str]:
    return [item["id"] for item in clinic.read(user, "/patients", after=after, **params)["items"]]


def referral(referrer: User) -> dict[str, Any]:
    return {"referring_doctor_id": referrer.profile_id}


class TestStartingRelationships:
    def test_an_admin_starts_primary_care_and_the_doctor_then_opens_and_lists_the_patient(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        assert not opens(clinic, doctor, patient, after=clinic.latest())

        answer = started(clinic, admin, patient, doctor)

        assert opens(clinic, doctor, patient, after=position(answer))
        assert listed(clinic, doctor) == [patient.profile_id]
        [relationship] = clinic.read(doctor, relationships(patient))
        assert relationship["id"] == answer["id"]
        assert (relationship["doctor_id"], relationship["kind"], relationship["active"]) == (doctor.profile_id, "primary_care", True)
        assert (relationship["referring_doctor_id"], relationship["expires_at"], relationship["ended_at"]) == (None, None, None)

    def test_an_admin_refers_naming_the_referring_doctor(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        gp, cardiologist, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()

        answer = started(clinic, admin, patient, cardiologist, "referral", **referral(gp))

        [relationship] = clinic.read(admin, relationships(patient), after=position(answer))
        assert (relationship["kind"], relationship["referring_doctor_id"]) == ("referral", gp.profile_id)
        assert opens(clinic, cardiologist, patient) and not opens(clinic, gp, patient)

    def test_a_doctor_caring_for_the_patient_refers_them_as_themselves(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        gp, cardiologist, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, gp, clinic.at(2, 10))
        clinic.read(admin, "/appointments", after=position(booked))

        answer = started(clinic, gp, patient, cardiologist, "referral", reason="Murmur on auscultation")

        assert opens(clinic, cardiologist, patient, after=position(answer))
        [relationship] = clinic.read(cardiologist, relationships(patient))
        assert (relationship["doctor_id"], relationship["referring_doctor_id"]) == (cardiologist.profile_id, gp.profile_id)
        assert relationship["reason"] == "Murmur on auscultation"

    def test_a_doctor_starts_nothing_but_referrals_and_refers_only_as_themselves(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        gp, other, cardiologist, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        started(clinic, admin, patient, gp)

        expect(start(clinic, gp, patient, cardiologist, "primary_care"), 403, "forbidden")
        expect(start(clinic, gp, patient, cardiologist, "temporary", expires_at=iso(clinic.at(3, 10))), 403, "forbidden")
        expect(start(clinic, gp, patient, cardiologist, "referral", **referral(other)), 403, "forbidden")
        expect(start(clinic, gp, patient, gp, "referral"), 422, "invalid_input", "doctor_id")

    def test_emergency_access_alone_does_not_let_a_doctor_refer(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, cardiologist, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        expect(break_glass(clinic, doctor, patient), 201)

        expect(start(clinic, doctor, patient, cardiologist, "referral"), 403, "forbidden")

    def test_a_doctor_with_an_appointment_and_emergency_access_refers(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, cardiologist, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        expect(break_glass(clinic, doctor, patient), 201)
        booked = clinic.booked(patient, doctor, clinic.at(2, 10))
        clinic.read(admin, "/appointments", after=position(booked))

        expect(start(clinic, doctor, patient, cardiologist, "referral"), 201)

    @pytest.mark.parametrize("role", ["patient", "auditor"])
    def test_the_patient_and_auditors_start_no_relationship(self, clinic: Clinic, role: str) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        caller = patient if role == "patient" else clinic.staff(admin, role)

        expect(start(clinic, caller, patient, doctor), 403, "forbidden")

    def test_strangers_are_told_the_patient_is_not_found(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, stranger, patient, other_patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient(), clinic.patient()
        analyst = clinic.staff(admin, "analyst")

        for caller in (stranger, other_patient, analyst):
            expect(start(clinic, caller, patient, doctor, "referral"), 404, "not_found")
        unknown = User("", "", "", "patient", UNKNOWN, "", "")
        expect(start(clinic, admin, unknown, doctor), 404, "not_found")

    def test_without_a_token_it_is_401(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        response = clinic.client.post(relationships(patient), json={"doctor_id": doctor.profile_id, "kind": "primary_care", "reason": "x" * 10})

        expect(response, 401, "not_authenticated")

    def test_an_unknown_doctor_is_422_naming_the_field(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        expect(start(clinic, admin, patient, UNKNOWN), 422, "unknown_doctor", "doctor_id")
        expect(
            start(clinic, admin, patient, doctor, "referral", referring_doctor_id=UNKNOWN), 422, "unknown_doctor", "referring_doctor_id"
        )
        expect(start(clinic, admin, patient, patient.profile_id or ""), 422, "unknown_doctor", "doctor_id")

    @pytest.mark.parametrize(
        "kind, extra, code, field",
        [
            ("temporary", {}, "invalid_input", "expires_at"),
            ("primary_care", {"expires_at": "+3"}, "invalid_input", "expires_at"),
            ("temporary", {"expires_at": "-1"}, "invalid_input", "expires_at"),
            ("referral", {}, "invalid_input", "referring_doctor_id"),
            ("primary_care", {"referring_doctor_id": "self"}, "invalid_input", "referring_doctor_id"),
            ("family", {}, "invalid_request", "kind"),
            ("primary_care", {"reason": "no"}, "invalid_request", "reason"),
            ("temporary", {"expires_at": "2030-01-01T10:00:00"}, "invalid_request", "expires_at"),
            ("primary_care", {"doctor_id": "not-a-uuid"}, "invalid_request", "doctor_id"),
            ("primary_care", {"colour": "blue"}, "invalid_request", "colour"),
        ],
        ids=[
            "temporary-without-expiry",
            "primary-with-expiry",
            "past-expiry",
            "referral-without-referrer",
            "primary-with-referrer",
            "unknown-kind",
            "short-reason",
            "naive-expiry",
            "malformed-doctor-id",
            "unknown-field",
        ],
    )
    def test_a_malformed_relationship_is_422_naming_the_field(
        self, clinic: Clinic, kind: str, extra: dict[str, Any], code: str, field: str
    ) -> None:
        admin = clinic.admin()
        doctor, other, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        if extra.get("expires_at") in ("+3", "-1"):
            extra = {**extra, "expires_at": iso(clinic.clock.now + timedelta(days=int(extra["expires_at"])))}
        if extra.get("referring_doctor_id") == "self":
            extra = {**extra, "referring_doctor_id": other.profile_id}

        expect(start(clinic, admin, patient, doctor, kind, **extra), 422, code, field)

    def test_a_second_relationship_of_the_same_kind_is_409_with_the_current_one(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, other, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        first = started(clinic, admin, patient, doctor)

        again = expect(start(clinic, admin, patient, doctor), 409, "relationship_exists")
        taken = expect(start(clinic, admin, patient, other), 409, "primary_care_taken")

        assert again["current"]["relationship_id"] == taken["current"]["relationship_id"] == first["id"]
        assert taken["current"]["doctor_id"] == doctor.profile_id

    def test_a_repeated_request_with_its_idempotency_key_starts_one_relationship(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        payload = {"doctor_id": doctor.profile_id, "kind": "primary_care", "reason": "Registered with the practice"}
        headers = {**admin.headers, "Idempotency-Key": "start-primary-1"}

        first = clinic.client.post(relationships(patient), headers=headers, json=payload)
        second = clinic.client.post(relationships(patient), headers=headers, json=payload)

        assert expect(first, 201) == expect(second, 201)
        assert second.headers["Idempotent-Replayed"] == "true"
        assert len(clinic.read(admin, relationships(patient), after=clinic.latest())) == 1


class TestEndingRelationships:
    def test_an_ended_relationship_removes_access_and_stays_in_the_history(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        relationship = started(clinic, admin, patient, doctor)
        assert opens(clinic, doctor, patient, after=position(relationship))

        answer = expect(end(clinic, admin, patient, relationship["id"]), 200)

        assert answer["id"] == relationship["id"]
        assert not opens(clinic, doctor, patient, after=position(answer))
        assert listed(clinic, doctor) == []
        [ended] = clinic.read(admin, relationships(patient))
        assert (ended["active"], ended["end_reason"]) == (False, "Patient moved away")
        assert ended["ended_at"] is not None
        assert clinic.read(admin, relationships(patient), active=True) == []

    def test_ending_twice_changes_nothing(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        relationship = started(clinic, admin, patient, doctor)
        expect(end(clinic, admin, patient, relationship["id"]), 200)

        changes_nothing(clinic, lambda: end(clinic, admin, patient, relationship["id"], "Another reason"))

    def test_the_doctor_of_a_relationship_ends_it(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        relationship = started(clinic, admin, patient, doctor)

        answer = expect(end(clinic, doctor, patient, relationship["id"], "Retiring from practice"), 200)

        assert not opens(clinic, doctor, patient, after=position(answer))

    def test_the_referring_doctor_ends_their_referral(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        gp, cardiologist, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, gp, clinic.at(2, 10))
        clinic.read(admin, "/appointments", after=position(booked))
        relationship = started(clinic, gp, patient, cardiologist, "referral")

        answer = expect(end(clinic, gp, patient, relationship["id"], "Referred elsewhere instead"), 200)

        assert not opens(clinic, cardiologist, patient, after=position(answer))

    def test_others_may_not_end_a_relationship(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, colleague, stranger, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        relationship = started(clinic, admin, patient, doctor)
        clinic.booked(patient, colleague, clinic.at(2, 10))
        clinic.read(admin, "/appointments", after=clinic.latest())

        expect(end(clinic, colleague, patient, relationship["id"]), 403, "forbidden")
        expect(end(clinic, patient, patient, relationship["id"]), 403, "forbidden")
        expect(end(clinic, clinic.staff(admin, "auditor"), patient, relationship["id"]), 403, "forbidden")
        expect(end(clinic, stranger, patient, relationship["id"]), 404, "not_found")
        expect(end(clinic, clinic.patient(), patient, relationship["id"]), 404, "not_found")
        expect(end(clinic, clinic.staff(admin, "analyst"), patient, relationship["id"]), 404, "not_found")
        expect(clinic.client.post(f"{relationships(patient)}/{relationship['id']}/end", json={"reason": "Moved"}), 401)
        assert opens(clinic, doctor, patient)

    def test_an_unknown_relationship_is_422_and_an_unknown_patient_404(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient, no_care = clinic.doctor(admin), clinic.patient(), clinic.patient()
        relationship = started(clinic, admin, patient, doctor)

        expect(end(clinic, admin, patient, UNKNOWN), 422, "unknown_relationship", "relationship_id")
        expect(end(clinic, admin, no_care, relationship["id"]), 422, "unknown_relationship", "relationship_id")
        unknown = User("", "", "", "patient", UNKNOWN, "", "")
        expect(end(clinic, admin, unknown, relationship["id"]), 404, "not_found")

    @pytest.mark.parametrize("reason", [None, "", "no"])
    def test_ending_needs_a_reason(self, clinic: Clinic, reason: str | None) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        relationship = started(clinic, admin, patient, doctor)

        expect(end(clinic, admin, patient, relationship["id"], reason), 422, "invalid_request", "reason")


class TestTemporaryCare:
    def test_a_temporary_relationship_gives_access_until_it_expires_and_then_frees_its_kind(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        locum, patient = clinic.doctor(admin), clinic.patient()
        expires_at = clinic.clock.now + timedelta(hours=2)

        answer = started(clinic, admin, patient, locum, "temporary", expires_at=iso(expires_at))

        assert opens(clinic, locum, patient, after=position(answer))
        assert listed(clinic, locum) == [patient.profile_id]
        clinic.clock.advance(hours=2)
        assert not opens(clinic, locum, patient)
        assert listed(clinic, locum) == []
        [expired] = clinic.read(admin, relationships(patient))
        assert (expired["active"], expired["ended_at"]) == (False, None)
        expect(start(clinic, admin, patient, locum, "temporary", expires_at=iso(clinic.clock.now + timedelta(hours=1))), 201)


class TestReadingRelationships:
    def test_whoever_may_open_the_record_reads_its_relationships(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        answer = started(clinic, admin, patient, doctor)
        after = position(answer)

        for reader in (admin, clinic.staff(admin, "auditor"), patient, doctor):
            assert [r["id"] for r in clinic.read(reader, relationships(patient), after=after)] == [answer["id"]]

    def test_others_are_told_the_patient_is_not_found(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, stranger, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        started(clinic, admin, patient, doctor)

        for reader in (stranger, clinic.patient(), clinic.staff(admin, "analyst")):
            expect(clinic.get(reader, relationships(patient)), 404, "not_found")
        expect(clinic.get(admin, f"/patients/{UNKNOWN}/care-relationships"), 404, "not_found")
        expect(clinic.client.get(relationships(patient)), 401)


class TestBreakingTheGlass:
    def test_a_doctor_breaks_the_glass_opens_the_record_until_it_expires_and_the_patient_sees_it(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        assert not opens(clinic, doctor, patient, after=clinic.latest())

        answer = expect(break_glass(clinic, doctor, patient, minutes=30), 201)

        assert opens(clinic, doctor, patient, after=position(answer))
        assert listed(clinic, doctor) == [patient.profile_id]
        [grant] = clinic.read(patient, emergency(patient))
        assert (grant["id"], grant["doctor_id"], grant["reason"], grant["active"]) == (answer["id"], doctor.profile_id, EMERGENCY, True)
        granted_at = grant["granted_at"]
        assert datetime.fromisoformat(granted_at) == clinic.clock.now
        assert datetime.fromisoformat(grant["expires_at"]) == clinic.clock.now + timedelta(minutes=30)
        clinic.clock.advance(minutes=29)
        assert opens(clinic, doctor, patient)
        clinic.clock.advance(minutes=1)
        assert not opens(clinic, doctor, patient)
        assert listed(clinic, doctor) == []
        [expired] = clinic.read(patient, emergency(patient))
        assert (expired["granted_at"], expired["active"]) == (granted_at, False)

    def test_emergency_access_lasts_an_hour_unless_asked_otherwise(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        answer = expect(break_glass(clinic, doctor, patient), 201)

        clinic.clock.advance(minutes=59)
        assert opens(clinic, doctor, patient, after=position(answer))
        clinic.clock.advance(minutes=1)
        assert not opens(clinic, doctor, patient)

    @pytest.mark.parametrize("role", ["patient", "admin", "auditor", "analyst"])
    def test_only_doctors_break_the_glass(self, clinic: Clinic, role: str) -> None:
        admin = clinic.admin()
        patient = clinic.patient()
        caller = {"patient": patient, "admin": admin}.get(role) or clinic.staff(admin, role)

        expect(break_glass(clinic, caller, patient), 403, "forbidden")

    def test_an_unknown_patient_is_404_and_no_token_401(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        expect(clinic.client.post(f"/patients/{UNKNOWN}/emergency-access", headers=doctor.headers, json={"reason": EMERGENCY}), 404, "not_found")
        expect(clinic.client.post(emergency(patient), json={"reason": EMERGENCY}), 401, "not_authenticated")

    @pytest.mark.parametrize(
        "payload, code, field",
        [
            ({"reason": "too short"}, "invalid_request", "reason"),
            ({"reason": "ok"}, "invalid_request", "reason"),
            ({}, "invalid_request", "reason"),
            ({"reason": EMERGENCY, "minutes": 0}, "invalid_request", "minutes"),
            ({"reason": EMERGENCY, "minutes": 1441}, "invalid_request", "minutes"),
            ({"reason": EMERGENCY, "minutes": 10**30}, "invalid_request", "minutes"),
            ({"reason": EMERGENCY, "until": "forever"}, "invalid_request", "until"),
        ],
        ids=["reason-under-ten", "reason-under-three", "no-reason", "zero-minutes", "over-a-day", "huge", "unknown-field"],
    )
    def test_a_malformed_request_is_422_naming_the_field(self, clinic: Clinic, payload: dict[str, Any], code: str, field: str) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()

        response = clinic.client.post(emergency(patient), headers=doctor.headers, json=payload)

        expect(response, 422, code, field)
        assert not opens(clinic, doctor, patient, after=clinic.latest())

    def test_the_patient_admins_and_auditors_see_every_grant_and_doctors_their_own(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        first, second, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        auditor = clinic.staff(admin, "auditor")
        a = expect(break_glass(clinic, first, patient), 201)
        clinic.clock.advance(minutes=5)
        b = expect(break_glass(clinic, second, patient, "Anaphylaxis, checking allergy history"), 201)
        after = clinic.latest()

        for reader in (patient, admin, auditor):
            assert [g["id"] for g in clinic.read(reader, emergency(patient), after=after)] == [b["id"], a["id"]]
        assert [g["id"] for g in clinic.read(first, emergency(patient))] == [a["id"]]
        assert [g["id"] for g in clinic.read(second, emergency(patient))] == [b["id"]]

    def test_others_do_not_see_the_grants(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, stranger, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        expect(break_glass(clinic, doctor, patient), 201)

        for reader in (stranger, clinic.patient(), clinic.staff(admin, "analyst")):
            expect(clinic.get(reader, emergency(patient), after=clinic.latest()), 404, "not_found")
        expect(clinic.client.get(emergency(patient)), 401)



class TestPatientIdSpellings:
    """A UUID has several spellings (capitals, braces, a URN); each names the patient's one record and audit trail."""

    @pytest.mark.parametrize("spelling", [str.upper, lambda pid: f"urn:uuid:{pid}", lambda pid: "{" + pid + "}"])
    def test_another_spelling_of_the_patient_id_names_the_same_care_record(self, clinic: Clinic, spelling) -> None:
        admin = clinic.admin()
        gp, other_gp, doctor, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
        pid = patient.profile_id
        assert pid is not None
        spelled = f"/patients/{spelling(pid)}"
        payload = {"doctor_id": gp.profile_id, "kind": "primary_care", "reason": "Registered with the practice"}
        relationship = expect(clinic.client.post(f"{spelled}/care-relationships", headers=admin.headers, json=payload), 201)

        grant = expect(clinic.client.post(f"{spelled}/emergency-access", headers=doctor.headers, json={"reason": EMERGENCY}), 201)

        after = clinic.latest()
        assert opens(clinic, gp, patient, after=after)
        assert [g["id"] for g in clinic.read(patient, emergency(patient), after=after)] == [grant["id"]]
        assert [r["id"] for r in clinic.read(admin, f"{spelled}/care-relationships", after=after)] == [relationship["id"]]
        expect(start(clinic, admin, patient, other_gp), 409, "primary_care_taken")
        expect(clinic.client.post(f"{spelled}/care-relationships/{relationship['id']}/end", headers=admin.headers, json={"reason": "Moved away"}), 200)

class TestDoctorsPatients:
    def test_a_cancelled_appointment_no_longer_lets_the_doctor_open_the_patient(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        booked = clinic.booked(patient, doctor, clinic.at(2, 10))
        assert opens(clinic, doctor, patient, after=position(booked))

        answer = expect(clinic.act(patient, booked["id"], "cancel", reason="Feeling better"), 200)

        assert not opens(clinic, doctor, patient, after=position(answer))
        assert listed(clinic, doctor) == []

    def test_a_completed_visit_keeps_access_for_the_post_visit_window_only(self, clinic: Clinic) -> None:
        admin = clinic.admin()
        doctor, patient = clinic.doctor(admin), clinic.patient()
        start_at = clinic.at(1, 10)
        booked = clinic.booked(patient, doctor, start_at)
        clinic.move_clock_to(start_at + timedelta(minutes=20))
        answer = expect(clinic.act(doctor, booked["id"], "complete"), 200)
        end_at = start_at + timedelta(minutes=30)

        clinic.move_clock_to(end_at + timedelta(hours=23, minutes=59))
        assert opens(clinic, doctor, patient, after=position(answer))
        clinic.move_clock_to(end_at + timedelta(hours=24))
        assert not opens(clinic, doctor, patient)
        assert listed(clinic, doctor) == []


class TestPatientSearch:
    @pytest.fixture
    def people(self, clinic: Clinic) -> dict[str, User]:
        return {
            "grace": clinic.patient(full_name="Grace Hopper", date_of_birth="1946-12-09", phone="+44 20 7946 0001"),
            "ada": clinic.patient(full_name="Ada Lovelace", date_of_birth="1955-12-10", phone="(020) 7946-0002"),
            "alan": clinic.patient(full_name="Alan Turing", date_of_birth="1912-06-23", phone="+44 161 496 0003"),
        }

    @pytest.mark.parametrize(
        "params, expected",
        [
            ({"name": "LOVE"}, ["ada"]),
            ({"date_of_birth": "1912-06-23"}, ["alan"]),
            ({"phone": "7946 0001"}, ["grace"]),
            ({"phone": "+44 20 7946 0001"}, ["grace"]),
            ({"phone": "020 7946"}, ["ada"]),
            ({"phone": "7946"}, ["ada", "grace"]),
            ({"phone": "79460002"}, ["ada"]),
            ({"name": "a", "phone": "7946"}, ["ada", "grace"]),
            ({"name": "grace", "date_of_birth": "1955-12-10"}, []),
        ],
        ids=["name", "date-of-birth", "phone-part", "phone-whole", "phone-national", "phone-shared", "phone-bare", "name-and-phone", "no-match"],
    )
    def test_staff_search_by_name_date_of_birth_and_phone_digits(
        self, clinic: Clinic, people: dict[str, User], params: dict[str, str], expected: list[str]
    ) -> None:
        admin = clinic.admin()
        auditor = clinic.staff(admin, "auditor")
        ids = {p.profile_id: name for name, p in people.items()}

        for reader in (admin, auditor):
            found = [ids[i] for i in listed(clinic, reader, after=clinic.latest(), **params) if i in ids]
            assert found == expected

    def test_a_doctor_searches_only_the_patients_they_may_open(self, clinic: Clinic, people: dict[str, User]) -> None:
        admin = clinic.admin()
        doctor = clinic.doctor(admin)
        started(clinic, admin, people["grace"], doctor)
        expect(break_glass(clinic, doctor, people["alan"]), 201)
        after = clinic.latest()

        assert listed(clinic, doctor, after=after) == [people["alan"].profile_id, people["grace"].profile_id]
        assert listed(clinic, doctor, phone="7946") == [people["grace"].profile_id]
        assert listed(clinic, doctor, date_of_birth="1955-12-10") == []
        assert listed(clinic, doctor, name="ada") == []

    @pytest.mark.parametrize(
        "params, field",
        [({"phone": "abc"}, "phone"), ({"phone": "+-"}, "phone"), ({"date_of_birth": "1990-02-30"}, "date_of_birth")],
        ids=["letters", "no-digits", "bad-date"],
    )
    def test_a_malformed_search_is_422(self, clinic: Clinic, params: dict[str, str], field: str) -> None:
        admin = clinic.admin()

        expect(clinic.get(admin, "/patients", **params), 422, "invalid_request", field)

    def test_patients_and_analysts_do_not_search(self, clinic: Clinic) -> None:
        admin = clinic.admin()

        expect(clinic.get(clinic.patient(), "/patients", phone="7946"), 403, "forbidden")
        expect(clinic.get(clinic.staff(admin, "analyst"), "/patients", name="a"), 403, "forbidden")
        expect(clinic.client.get("/patients", params={"phone": "7946"}, headers=bearer("not-a-token")), 401)


JUNK: list[Any] = [None, 0, -1, 10**30, 1.5e308, True, "", " ", "x" * 5_000, [], {}, "2025-13-45", "0001-01-01T00:00:00+05:00", "\x00", "🎉" * 50]
GARBAGE_IDS = ["not-a-uuid", UNKNOWN, "x" * 2_000, "..", "' OR '1'='1", "🎉", "%2e%2e%2f"]


def test_no_garbage_body_id_or_query_gets_a_5xx(clinic: Clinic) -> None:
    admin = clinic.admin()
    doctor, gp, patient = clinic.doctor(admin), clinic.doctor(admin), clinic.patient()
    relationship = started(clinic, admin, patient, gp)
    valid = {
        relationships(patient): {
            "doctor_id": doctor.profile_id,
            "kind": "temporary",
            "reason": "Covering a colleague",
            "referring_doctor_id": None,
            "expires_at": iso(clinic.clock.now + timedelta(days=1)),
        },
        f"{relationships(patient)}/{relationship['id']}/end": {"reason": "Sweep"},
        emergency(patient): {"reason": EMERGENCY, "minutes": 5},
    }
    statuses = set()
    for path, payload in valid.items():
        for key in payload:
            for junk in JUNK:
                for caller in (admin, doctor):
                    statuses.add(clinic.client.post(path, headers=caller.headers, json={**payload, key: junk}).status_code)
    for garbage in GARBAGE_IDS:
        for path in (f"/patients/{garbage}/care-relationships", f"/patients/{garbage}/emergency-access"):
            statuses.add(clinic.client.get(path, headers=admin.headers).status_code)
            statuses.add(clinic.client.post(path, headers=doctor.headers, json=valid[emergency(patient)]).status_code)
        end_path = f"/patients/{patient.profile_id}/care-relationships/{garbage}/end"
        statuses.add(clinic.client.post(end_path, headers=admin.headers, json={"reason": "Sweep"}).status_code)
    for junk in ("%", "_", "\\", "x" * 5_000, "2025-02-30", "🎉", "' OR 1=1 --"):
        for name in ("name", "date_of_birth", "phone"):
            statuses.add(clinic.client.get("/patients", headers=admin.headers, params={name: junk}).status_code)
        statuses.add(clinic.client.get(relationships(patient), headers=admin.headers, params={"active": junk}).status_code)

    assert statuses <= {200, 201, 403, 404, 409, 422}, statuses
