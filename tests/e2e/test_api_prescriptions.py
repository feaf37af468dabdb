"""Prescriptions over HTTP: write, check, issue (blocked, overridden, checker down), dispense, cancel, expire, renew,
re-check after a table update, reminders, and the access matrix, with no foreign record leaking through any filter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx

from domain.patients import Patient
from domain.shared import Cause, Role
from e2e_helpers import ALL_DAY_EVERY_DAY, Clinic, User, changes_nothing, expect, position
from infrastructure.interactions import shipped_table

OVERRIDE = "Benefit outweighs the bleeding risk; INR checked weekly."
LONDON_HOURS = {**ALL_DAY_EVERY_DAY, "timezone": "Europe/London"}


@dataclass
class Ward:
    """A doctor caring for a patient (primary care) with an open walk-in consultation, and everyone else a test needs."""

    admin: User
    doctor: User
    patient: User
    consultation_id: str
    auditor: User
    analyst: User
    other_doctor: User
    other_patient: User


def ward(clinic: Clinic, allergies: list[str] | None = None, admin: User | None = None) -> Ward:
    admin = admin or clinic.admin()
    doctor = clinic.doctor(admin, availability=LONDON_HOURS)
    patient = clinic.patient(allergies=allergies or [])
    relationship = {"doctor_id": doctor.profile_id, "kind": "primary_care", "reason": "registered with the practice"}
    expect(clinic.client.post(f"/patients/{patient.profile_id}/care-relationships", headers=admin.headers, json=relationship), 201)
    started = expect(clinic.client.post("/consultations", headers=doctor.headers, json={"patient_id": patient.profile_id, "kind": "in_person"}), 201)
    return Ward(
        admin,
        doctor,
        patient,
        started["id"],
        clinic.staff(admin, "auditor"),
        clinic.staff(admin, "analyst"),
        clinic.doctor(admin),
        clinic.patient(),
    )


def item(name: str, item_id: str | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "item_id": item_id or name.lower().replace(" ", "-"),
        "medication": {"name": name, "strength": "10 mg", "form": "tablet"},
        "dose": "1 tablet",
        "route": "oral",
        "frequency": "twice_daily",
        "duration_days": 10,
        "quantity": 20,
        "refills": 0,
        "instructions": "With water.",
        **changes,
    }


def post(clinic: Clinic, user: User, path: str, payload: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    return clinic.client.post(path, headers={**user.headers, **headers}, json=payload)


def write(clinic: Clinic, w: Ward, *items: dict[str, Any], user: User | None = None, **extra: Any) -> httpx.Response:
    payload = {"consultation_id": w.consultation_id, "items": list(items) or [item("Paracetamol")], **extra}
    return post(clinic, user or w.doctor, "/prescriptions", payload)


def written(clinic: Clinic, w: Ward, *items: dict[str, Any], **extra: Any) -> str:
    return expect(write(clinic, w, *items, **extra), 201)["id"]


def act(clinic: Clinic, user: User, pid: str, action: str, payload: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    return post(clinic, user, f"/prescriptions/{pid}/{action}", payload, **headers)


def view(clinic: Clinic, user: User, pid: str) -> dict[str, Any]:
    return clinic.read(user, f"/prescriptions/{pid}", after=clinic.latest())


def issued(clinic: Clinic, w: Ward, *items: dict[str, Any], override: str | None = None) -> str:
    pid = written(clinic, w, *items)
    expect(act(clinic, w.doctor, pid, "issue", {"override_reason": override} if override else None), 200)
    return pid


def table_file(tmp_path: Path, version: str, *extra_pairs: dict[str, Any]) -> Path:
    data = json.loads(shipped_table().read_text())
    data["version"] = version
    data["pairs"].extend(extra_pairs)
    path = tmp_path / "interactions.json"
    path.write_text(json.dumps(data))
    return path


class TestFullFlow:
    def test_write_check_block_override_issue_dispense_renew(self, clinic: Clinic) -> None:
        w = ward(clinic, allergies=["Sulfa"])
        answer = expect(write(clinic, w, item("Warfarin", quantity=10, refills=1), item("Ibuprofen", frequency="as_needed")), 201)
        pid = answer["id"]
        draft = clinic.read(w.doctor, f"/prescriptions/{pid}", after=position(answer))
        assert (draft["status"], draft["timezone"], draft["consultation_id"]) == ("draft", "Europe/London", w.consultation_id)
        assert [i["medication"]["name"] for i in draft["items"]] == ["Warfarin", "Ibuprofen"]

        checked = expect(act(clinic, w.doctor, pid, "check"), 200)
        shown = clinic.read(w.doctor, f"/prescriptions/{pid}", after=position(checked))["checks"]
        assert [(c["context"], c["table_version"], c["allergies_checked"]) for c in shown] == [("check", "2026.11.2", ["sulfa"])]
        assert [(f["severity"], f["drugs"]) for f in shown[0]["findings"]] == [("major", ["ibuprofen", "warfarin"])]
        changes_nothing(clinic, lambda: act(clinic, w.doctor, pid, "check"))

        blocked = expect(act(clinic, w.doctor, pid, "issue"), 409, "interaction_blocked")
        assert blocked["current"]["findings"][0]["drugs"] == ["ibuprofen", "warfarin"]
        assert view(clinic, w.doctor, pid)["status"] == "draft"
        expect(act(clinic, w.doctor, pid, "issue", {"override_reason": "because"}), 422, field="override_reason")

        expect(act(clinic, w.doctor, pid, "issue", {"override_reason": OVERRIDE}), 200)
        record = view(clinic, w.auditor, pid)
        assert (record["status"], record["override_reason"]) == ("issued", OVERRIDE)
        assert record["checks"][-1]["context"] == "issue" and record["checks"][-1]["override_reason"] == OVERRIDE
        assert record["valid_until"] == (clinic.clock.now + timedelta(days=30)).date().isoformat()
        changes_nothing(clinic, lambda: act(clinic, w.doctor, pid, "issue"))

        expect(act(clinic, w.admin, pid, "dispense", {"item_id": "warfarin", "quantity": 10}), 200)
        assert view(clinic, w.patient, pid)["status"] == "partially_dispensed"
        over = expect(act(clinic, w.admin, pid, "dispense", {"item_id": "warfarin", "quantity": 11}), 409, "dispense_exceeds_remaining")
        assert over["current"]["remaining"] == 10
        expect(act(clinic, w.admin, pid, "dispense", {"item_id": "nope", "quantity": 1}), 422, "unknown_item", "item_id")
        expect(act(clinic, w.admin, pid, "dispense", {"item_id": "warfarin", "quantity": 10}), 200)
        expect(act(clinic, w.admin, pid, "dispense", {"item_id": "ibuprofen", "quantity": 20}), 200)
        done = view(clinic, w.admin, pid)
        assert done["status"] == "dispensed"
        assert [(i["dispensed"], i["remaining"]) for i in done["items"]] == [(20, 0), (20, 0)]

        renewal = expect(act(clinic, w.doctor, pid, "renew"), 201)
        again = expect(act(clinic, w.doctor, pid, "renew"), 200)
        assert again["id"] == renewal["id"]
        new = view(clinic, w.doctor, renewal["id"])
        assert (new["status"], new["renewed_from"], new["consultation_id"]) == ("draft", pid, w.consultation_id)
        assert [i["medication"]["name"] for i in new["items"]] == ["Warfarin", "Ibuprofen"]
        assert view(clinic, w.doctor, pid)["renewed_by"] == renewal["id"]

        expect(act(clinic, w.doctor, renewal["id"], "cancel", {"reason": "Renewed for the wrong dose."}), 200)
        second = expect(act(clinic, w.doctor, pid, "renew"), 201)
        assert second["id"] != renewal["id"]
        assert view(clinic, w.doctor, pid)["renewed_by"] == second["id"]
        assert view(clinic, w.doctor, second["id"])["renewed_from"] == pid

    def test_an_allergy_blocks_issue_through_the_allergy_group(self, clinic: Clinic) -> None:
        w = ward(clinic, allergies=["Penicillin"])
        pid = written(clinic, w, item("Amoxicillin/clavulanic acid", item_id="co-amoxiclav"))
        blocked = expect(act(clinic, w.doctor, pid, "issue"), 409, "interaction_blocked")
        [finding] = blocked["current"]["findings"]
        assert (finding["kind"], finding["allergy"], finding["severe"]) == ("allergy", "penicillin", True)
        assert view(clinic, w.patient, pid)["status"] == "draft"

    def test_the_check_answers_what_it_recorded_every_finding_with_its_severity(self, clinic: Clinic) -> None:
        w = ward(clinic, allergies=["Penicillin"])
        pid = written(clinic, w, item("Warfarin"), item("Ibuprofen"), item("Amoxicillin"))

        answer = expect(act(clinic, w.doctor, pid, "check"), 200)

        assert (answer["id"], answer["table_version"], answer["allergies_checked"]) == (pid, "2026.11.2", ["penicillin"])
        assert sorted(answer["medications"]) == ["amoxicillin", "ibuprofen", "warfarin"]
        found = {(f["kind"], tuple(f["drugs"]), f["allergy"]): (f["severity"], f["severe"]) for f in answer["findings"]}
        assert found[("interaction", ("ibuprofen", "warfarin"), None)] == ("major", True)
        assert found[("allergy", ("amoxicillin",), "penicillin")][1] is True
        assert all(f["effect"] and f["sources"] and f["rule"] for f in answer["findings"])
        recorded = clinic.read(w.doctor, f"/prescriptions/{pid}", after=position(answer))["checks"]
        assert [{k: c[k] for k in ("table_version", "medications", "allergies_checked", "findings", "checked_at")} for c in recorded] == [
            {k: answer[k] for k in ("table_version", "medications", "allergies_checked", "findings", "checked_at")}
        ]
        again = changes_nothing(clinic, lambda: act(clinic, w.doctor, pid, "check"))
        assert {k: v for k, v in again.items() if k != "position"} == {k: v for k, v in answer.items() if k != "position"}

    def test_the_checks_answer_is_declared_in_the_openapi_document(self, clinic: Clinic) -> None:
        document = expect(clinic.client.get("/openapi.json"), 200)
        declared = document["paths"]["/prescriptions/{prescription_id}/check"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        schema = document["components"]["schemas"][declared["$ref"].rsplit("/", 1)[-1]]
        assert {"id", "position", "table_version", "medications", "allergies_checked", "findings", "checked_at"} <= set(schema["properties"])
        finding = document["components"]["schemas"][schema["properties"]["findings"]["items"]["$ref"].rsplit("/", 1)[-1]]
        assert {"kind", "severity", "severe", "drugs", "effect", "sources", "rule", "allergy"} <= set(finding["properties"])

    def test_moderate_findings_do_not_block_but_are_recorded(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = issued(clinic, w, item("Clopidogrel"), item("Omeprazole"))
        record = view(clinic, w.doctor, pid)
        assert record["status"] == "issued" and record["override_reason"] is None
        assert [f["severity"] for f in record["checks"][-1]["findings"]] == ["moderate"]

    def test_revising_a_draft_and_an_explicit_time_zone(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = written(clinic, w, timezone="Asia/Tokyo")
        revised = expect(clinic.client.put(f"/prescriptions/{pid}/items", headers=w.doctor.headers, json={"items": [item("Cetirizine")]}), 200)
        record = clinic.read(w.doctor, f"/prescriptions/{pid}", after=position(revised))
        assert [i["medication"]["name"] for i in record["items"]] == ["Cetirizine"] and record["timezone"] == "Asia/Tokyo"
        expect(act(clinic, w.doctor, pid, "issue"), 200)
        expect(clinic.client.put(f"/prescriptions/{pid}/items", headers=w.doctor.headers, json={"items": [item("X")]}), 409, "invalid_transition")
        expect(write(clinic, w, timezone="Mars/Olympus"), 422, field="timezone")

    def test_a_repeated_dispense_with_the_same_idempotency_key_dispenses_once(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = issued(clinic, w, item("Paracetamol", quantity=20))
        for _ in range(2):
            expect(act(clinic, w.admin, pid, "dispense", {"item_id": "paracetamol", "quantity": 5}, **{"Idempotency-Key": "desk-1"}), 200)
        assert view(clinic, w.admin, pid)["items"][0]["dispensed"] == 5


class TestChecker:
    def test_a_broken_table_answers_503_and_the_prescription_stays_draft(self, clinic_with, tmp_path: Path) -> None:
        broken = tmp_path / "broken.json"
        broken.write_text('{"version": "x", "pairs": [')
        clinic = clinic_with(interaction_table=broken)
        w = ward(clinic)
        pid = written(clinic, w, item("Paracetamol"))
        expect(act(clinic, w.doctor, pid, "issue"), 503, "checker_unavailable")
        expect(act(clinic, w.doctor, pid, "issue", {"override_reason": OVERRIDE}), 503, "checker_unavailable")
        expect(act(clinic, w.doctor, pid, "check"), 503, "checker_unavailable")
        record = view(clinic, w.doctor, pid)
        assert (record["status"], record["checks"]) == ("draft", [])

    def test_a_missing_table_answers_503(self, clinic_with, tmp_path: Path) -> None:
        clinic = clinic_with(interaction_table=tmp_path / "absent.json")
        w = ward(clinic)
        pid = written(clinic, w)
        expect(act(clinic, w.doctor, pid, "issue"), 503, "checker_unavailable")
        expect(post(clinic, w.admin, "/prescriptions/recheck"), 503, "checker_unavailable")
        assert view(clinic, w.doctor, pid)["status"] == "draft"

    def test_an_allergy_entry_that_cannot_be_read_makes_the_checker_unavailable(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = written(clinic, w, item("Co-trimoxazole"))
        patient = clinic.medledger.store.find(Patient, UUID(w.patient.profile_id))
        patient.update_profile({"allergies": ["latex", {"substance": "sulfa"}]}, Cause("operator", Role.ADMIN, "test"))
        clinic.medledger.store.save(patient)
        expect(act(clinic, w.doctor, pid, "check"), 503, "checker_unavailable")
        expect(act(clinic, w.doctor, pid, "issue", {"override_reason": OVERRIDE}), 503, "checker_unavailable")
        assert view(clinic, w.doctor, pid)["status"] == "draft"

    def test_a_recheck_passes_over_a_patient_whose_allergies_cannot_be_read_and_names_them(self, clinic_with, tmp_path: Path) -> None:
        clinic = clinic_with(interaction_table=table_file(tmp_path, "local-1"))
        unreadable, readable = ward(clinic), ward(clinic)
        held_back, checked = issued(clinic, unreadable, item("Paracetamol")), issued(clinic, readable, item("Paracetamol"))
        patient = clinic.medledger.store.find(Patient, UUID(unreadable.patient.profile_id))
        patient.update_profile({"allergies": ["latex", {"substance": "sulfa"}]}, Cause("operator", Role.ADMIN, "test"))
        clinic.medledger.store.save(patient)
        clinic.read(readable.admin, "/prescriptions", after=clinic.latest())
        table_file(tmp_path, "local-2")

        answer = expect(post(clinic, readable.admin, "/prescriptions/recheck"), 200)

        assert (answer["changed"], answer["could_not_check"]) == ([checked], [held_back])
        assert view(clinic, readable.auditor, checked)["checks"][-1]["table_version"] == "local-2"
        assert [c["table_version"] for c in view(clinic, readable.auditor, held_back)["checks"]] == ["local-1"]

    def test_a_table_update_rechecks_active_prescriptions_and_flags_only_new_hazards(self, clinic_with, tmp_path: Path) -> None:
        path = table_file(tmp_path, "local-1")
        clinic = clinic_with(interaction_table=path)
        w = ward(clinic)
        active = issued(clinic, w, item("Warfarin"), item("Naproxen"), item("Sertraline"), override=OVERRIDE)
        quiet = issued(clinic, w, item("Paracetamol"))
        draft = written(clinic, w, item("Sertraline"), item("Naproxen"))
        clinic.read(w.admin, "/prescriptions", after=clinic.latest())
        expect(post(clinic, w.doctor, "/prescriptions/recheck"), 403, "forbidden")
        changes_nothing(clinic, lambda: post(clinic, w.admin, "/prescriptions/recheck"))

        new_pair = {"a": "class:serotonergic_antidepressants", "b": "class:nsaids", "severity": "major", "effect": "GI bleeding.", "sources": ["label_warfarin"]}
        table_file(tmp_path, "local-2", new_pair)
        answer = expect(post(clinic, w.admin, "/prescriptions/recheck"), 200)
        assert (answer["id"], set(answer["changed"])) == ("local-2", {active, quiet})
        assert answer["examined"] >= 2
        flagged = clinic.read(w.auditor, f"/prescriptions/{active}", after=position(answer))
        assert flagged["hazard_flagged"] is True
        assert [h["drugs"] for h in flagged["new_hazards"]] == [["naproxen", "sertraline"]]
        assert [(c["context"], c["table_version"]) for c in flagged["checks"]] == [("issue", "local-1"), ("recheck", "local-2")]
        unflagged = view(clinic, w.auditor, quiet)
        assert unflagged["hazard_flagged"] is False and unflagged["checks"][-1]["context"] == "recheck"
        assert view(clinic, w.auditor, draft)["checks"] == []
        changes_nothing(clinic, lambda: post(clinic, w.admin, "/prescriptions/recheck"))
        listed = clinic.read(w.admin, "/prescriptions", after=clinic.latest(), patient_id=w.patient.profile_id)["items"]
        assert {p["id"]: p["hazard_flagged"] for p in listed} == {active: True, quiet: False, draft: False}


class TestLifecycle:
    def test_cancel_by_the_prescribing_doctor_or_an_admin_only(self, clinic: Clinic) -> None:
        w = ward(clinic)
        draft, active = written(clinic, w), issued(clinic, w)
        for user in (w.patient, w.auditor):
            expect(act(clinic, user, active, "cancel", {"reason": "No longer needed."}), 403, "forbidden")
        for user in (w.other_doctor, w.other_patient, w.analyst):
            expect(act(clinic, user, active, "cancel", {"reason": "No longer needed."}), 404, "not_found")
        expect(act(clinic, w.doctor, draft, "cancel", {"reason": "Written in error."}), 200)
        expect(act(clinic, w.admin, active, "cancel", {"reason": "Patient declined."}), 200)
        changes_nothing(clinic, lambda: act(clinic, w.admin, active, "cancel", {"reason": "Again."}))
        record = view(clinic, w.patient, active)
        assert (record["status"], record["cancel_reason"]) == ("cancelled", "Patient declined.")
        expect(act(clinic, w.admin, active, "dispense", {"item_id": "paracetamol", "quantity": 1}), 409, "invalid_transition")
        expect(act(clinic, w.doctor, draft, "issue"), 409, "invalid_transition")
        expect(act(clinic, w.doctor, draft, "renew"), 409, "invalid_transition")
        expect(act(clinic, w.doctor, active, "cancel", {}), 422, field="reason")

    def test_expiry_refuses_dispensing_before_the_sweep_and_the_sweep_expires(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = issued(clinic, w, item("Paracetamol", quantity=20))
        dispensed = issued(clinic, w, item("Cetirizine", quantity=1))
        expect(act(clinic, w.admin, dispensed, "dispense", {"item_id": "cetirizine", "quantity": 1}), 200)
        clinic.read(w.admin, "/prescriptions", after=clinic.latest())
        clinic.clock.advance(days=31)
        expect(act(clinic, w.admin, pid, "dispense", {"item_id": "paracetamol", "quantity": 1}), 409, "prescription_expired")
        expect(post(clinic, w.doctor, "/prescriptions/expire"), 403, "forbidden")
        expect(post(clinic, w.auditor, "/prescriptions/expire"), 403, "forbidden")
        assert expect(post(clinic, w.admin, "/prescriptions/expire"), 200)["changed"] == [pid]
        assert view(clinic, w.patient, pid)["status"] == "expired"
        assert view(clinic, w.patient, dispensed)["status"] == "dispensed"
        renewal = expect(act(clinic, w.doctor, pid, "renew"), 201)
        assert view(clinic, w.doctor, renewal["id"])["renewed_from"] == pid

    def test_another_treating_doctor_renews_into_their_own_consultation(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = issued(clinic, w)
        colleague = clinic.doctor(w.admin)
        relationship = {"doctor_id": colleague.profile_id, "kind": "temporary", "reason": "covering a colleague's leave",
                        "expires_at": (clinic.clock.now + timedelta(days=3)).isoformat()}
        expect(post(clinic, w.admin, f"/patients/{w.patient.profile_id}/care-relationships", relationship), 201)
        expect(act(clinic, colleague, pid, "renew"), 422, field="consultation_id")
        expect(act(clinic, colleague, pid, "renew", {"consultation_id": w.consultation_id}), 403, "forbidden")
        own = expect(post(clinic, colleague, "/consultations", {"patient_id": w.patient.profile_id, "kind": "video"}), 201)["id"]
        renewal = expect(act(clinic, colleague, pid, "renew", {"consultation_id": own}), 201)
        new = view(clinic, colleague, renewal["id"])
        assert (new["doctor_id"], new["consultation_id"], new["renewed_from"]) == (colleague.profile_id, own, pid)
        expect(act(clinic, w.doctor, renewal["id"], "issue"), 403, "forbidden")


class TestAccess:
    def test_without_a_token_is_401(self, clinic: Clinic) -> None:
        assert clinic.client.get("/prescriptions").status_code == 401
        assert clinic.client.post("/prescriptions", json={}).status_code == 401
        assert clinic.client.post("/prescriptions/x/issue").status_code == 401
        assert clinic.client.get("/patients/x/reminders").status_code == 401

    def test_only_the_consultations_doctor_writes(self, clinic: Clinic) -> None:
        w = ward(clinic)
        for user in (w.patient, w.admin, w.auditor):
            expect(write(clinic, w, user=user), 403, "forbidden")
        for user in (w.other_doctor, w.other_patient, w.analyst):
            expect(write(clinic, w, user=user), 404, "not_found")
        colleague = clinic.doctor(w.admin)
        expect(post(clinic, w.admin, f"/patients/{w.patient.profile_id}/care-relationships",
                    {"doctor_id": colleague.profile_id, "kind": "referral", "reason": "second opinion on therapy",
                     "referring_doctor_id": w.doctor.profile_id}), 201)
        expect(write(clinic, w, user=colleague), 403, "forbidden")
        expect(post(clinic, w.doctor, "/prescriptions", {"consultation_id": "5e0f0d8e-6a3a-4c39-9b0e-000000000000", "items": [item("X")]}), 404, "not_found")

    def test_validation_is_422_with_the_field(self, clinic: Clinic) -> None:
        w = ward(clinic)
        expect(write(clinic, w, item("X", frequency="hourly")), 422, "invalid_request", "frequency")
        expect(write(clinic, w, item("X", quantity=0)), 422, "invalid_request", "quantity")
        expect(write(clinic, w, item("X", refills=13)), 422, "invalid_request", "refills")
        expect(write(clinic, w, item("X", duration_days=400)), 422, "invalid_request", "duration_days")
        expect(write(clinic, w, item("X", route="osmosis")), 422, "invalid_request", "route")
        expect(write(clinic, w, item("X\x00")), 422, "invalid_request", "name")
        expect(write(clinic, w, item("A", item_id="same"), item("B", item_id="same")), 422, "invalid_input", "item_id")
        expect(post(clinic, w.doctor, "/prescriptions", {"consultation_id": w.consultation_id, "items": []}), 422, field="items")
        expect(post(clinic, w.doctor, "/prescriptions", {"consultation_id": "nope", "items": [item("X")]}), 422, field="consultation_id")
        pid = issued(clinic, w)
        expect(act(clinic, w.admin, pid, "dispense", {"item_id": "paracetamol", "quantity": 0}), 422, field="quantity")
        expect(act(clinic, w.admin, pid, "dispense", {"item_id": "paracetamol"}), 422, field="quantity")

    def test_who_reads_and_who_dispenses(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = issued(clinic, w)
        for user in (w.doctor, w.patient, w.admin, w.auditor):
            assert view(clinic, user, pid)["id"] == pid
        for user in (w.other_doctor, w.other_patient, w.analyst):
            expect(clinic.get(user, f"/prescriptions/{pid}", after=clinic.latest()), 404, "not_found")
            expect(act(clinic, user, pid, "dispense", {"item_id": "paracetamol", "quantity": 1}), 404, "not_found")
            expect(act(clinic, user, pid, "issue"), 404, "not_found")
        for user in (w.doctor, w.patient, w.auditor):
            expect(act(clinic, user, pid, "dispense", {"item_id": "paracetamol", "quantity": 1}), 403, "forbidden")
        for user in (w.patient, w.auditor, w.admin):
            expect(act(clinic, user, pid, "check"), 403, "forbidden")
        for path in ("/prescriptions/no-such-id", "/prescriptions/6b1d0b8e-0000-4000-8000-000000000000"):
            expect(clinic.get(w.admin, path), 404, "not_found")
            expect(post(clinic, w.admin, f"{path}/cancel", {"reason": "not there"}), 404, "not_found")

    def test_a_doctor_loses_access_with_the_care_relationship(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = issued(clinic, w)
        relationships = clinic.read(w.admin, f"/patients/{w.patient.profile_id}/care-relationships", after=clinic.latest())
        relationship_id = relationships[0]["id"] if isinstance(relationships, list) else relationships["items"][0]["id"]
        expect(post(clinic, w.admin, f"/patients/{w.patient.profile_id}/care-relationships/{relationship_id}/end",
                    {"reason": "moved to another practice"}), 200)
        expect(clinic.get(w.doctor, f"/prescriptions/{pid}", after=clinic.latest()), 404, "not_found")
        expect(act(clinic, w.doctor, pid, "cancel", {"reason": "stop it now"}), 404, "not_found")
        assert clinic.read(w.doctor, "/prescriptions", after=clinic.latest())["items"] == []


class TestSearch:
    def test_filters_never_leak_foreign_records(self, clinic: Clinic) -> None:
        mine = ward(clinic)
        theirs = ward(clinic, admin=mine.admin)
        my_warfarin = issued(clinic, mine, item("Warfarin"))
        my_draft = written(clinic, mine, item("Cetirizine"))
        their_warfarin = issued(clinic, theirs, item("Warfarin"))
        latest = clinic.latest()

        def ids(user: User, **params: Any) -> set[str]:
            return {p["id"] for p in clinic.read(user, "/prescriptions", after=latest, **params)["items"]}

        assert ids(mine.patient) == {my_warfarin, my_draft}
        assert ids(mine.patient, patient_id=theirs.patient.profile_id) == set()
        assert ids(mine.patient, medication="warf") == {my_warfarin}
        assert ids(mine.doctor) == {my_warfarin, my_draft}
        assert ids(mine.doctor, patient_id=theirs.patient.profile_id) == set()
        assert ids(mine.doctor, doctor_id=theirs.doctor.profile_id) == set()
        assert ids(mine.doctor, medication="Warfarin") == {my_warfarin}
        assert ids(mine.other_doctor) == set()
        assert ids(mine.auditor, medication="WARFARIN") >= {my_warfarin, their_warfarin}
        assert ids(mine.admin, doctor_id=theirs.doctor.profile_id) == {their_warfarin}
        assert ids(mine.admin, patient_id=mine.patient.profile_id, status="draft") == {my_draft}
        assert ids(mine.admin, patient_id=mine.patient.profile_id, status="issued") == {my_warfarin}
        expect(clinic.get(mine.analyst, "/prescriptions"), 403, "forbidden")
        expect(clinic.get(mine.admin, "/prescriptions", status="lost"), 422, field="status")

    def test_date_range_and_pages(self, clinic: Clinic) -> None:
        w = ward(clinic)
        first = written(clinic, w)
        clinic.clock.advance(hours=2)
        second = written(clinic, w)
        latest = clinic.latest()
        written_at = datetime.fromisoformat(view(clinic, w.admin, second)["written_at"])

        def ids(**params: Any) -> list[str]:
            return [p["id"] for p in clinic.read(w.admin, "/prescriptions", after=latest, patient_id=w.patient.profile_id, **params)["items"]]

        assert ids() == [second, first]
        assert ids(**{"from": written_at.isoformat()}) == [second]
        assert ids(**{"to": written_at.isoformat()}) == [first]
        page = clinic.read(w.admin, "/prescriptions", after=latest, patient_id=w.patient.profile_id, page_size=1, page=2)
        assert (page["total"], [p["id"] for p in page["items"]]) == (2, [first])
        expect(clinic.get(w.admin, "/prescriptions", **{"from": "yesterday"}), 422, field="from")


class TestReminders:
    def test_the_patients_doses_due_in_a_window(self, clinic: Clinic) -> None:
        w = ward(clinic)
        pid = issued(clinic, w, item("Paracetamol", frequency="twice_daily", duration_days=3), item("Ibuprofen", frequency="as_needed"))
        issued_at = datetime.fromisoformat(view(clinic, w.patient, pid)["issued_at"])
        path = f"/patients/{w.patient.profile_id}/reminders"
        window = {"from": issued_at.isoformat(), "to": (issued_at + timedelta(days=5)).isoformat()}
        due = clinic.read(w.patient, path, after=clinic.latest(), **window)
        assert 4 <= len(due) <= 6
        assert {d["medication"] for d in due} == {"Paracetamol"} and {d["local_time"] for d in due} <= {"08:00", "20:00"}
        assert [d["due_at"] for d in due] == sorted(d["due_at"] for d in due)
        assert clinic.read(w.doctor, path, **window) == due
        assert clinic.read(w.auditor, path, **window) == due
        for user in (w.admin, w.other_doctor, w.other_patient, w.analyst):
            expect(clinic.get(user, path, **window), 404, "not_found")
        expect(clinic.get(w.patient, path, **{"from": issued_at.isoformat(), "to": (issued_at + timedelta(days=32)).isoformat()}), 422, field="to")
        expect(clinic.get(w.patient, path, **{"from": issued_at.isoformat(), "to": issued_at.isoformat()}), 422, field="to")
        expect(act(clinic, w.doctor, pid, "cancel", {"reason": "Stopped the course."}), 200)
        assert clinic.read(w.patient, path, after=clinic.latest(), **window) == []

    def test_plain_dates_are_whole_local_days_of_each_prescription(self, clinic: Clinic) -> None:
        w = ward(clinic)
        london = issued(clinic, w, item("Paracetamol", frequency="twice_daily", duration_days=5))
        tokyo = written(clinic, w, item("Cetirizine", frequency="twice_daily", duration_days=5), timezone="Asia/Tokyo")
        expect(act(clinic, w.doctor, tokyo, "issue"), 200)
        zones = {london: ZoneInfo("Europe/London"), tokyo: ZoneInfo("Asia/Tokyo")}
        path = f"/patients/{w.patient.profile_id}/reminders"
        day = clinic.clock.now.date() + timedelta(days=2)

        def local_days(**window: str) -> dict[str, list[tuple[date, str]]]:
            due = clinic.read(w.patient, path, after=clinic.latest(), **window)
            assert [d["due_at"] for d in due] == sorted(d["due_at"] for d in due)
            doses: dict[str, list[tuple[date, str]]] = {}
            for dose in due:
                local = datetime.fromisoformat(dose["due_at"]).astimezone(zones[dose["prescription_id"]])
                assert local.strftime("%H:%M") == dose["local_time"]
                doses.setdefault(dose["prescription_id"], []).append((local.date(), dose["local_time"]))
            return doses

        one_day = {london: [(day, "08:00"), (day, "20:00")], tokyo: [(day, "08:00"), (day, "20:00")]}
        assert local_days(**{"from": day.isoformat(), "to": day.isoformat()}) == one_day
        assert local_days(**{"from": day.isoformat()}) == one_day
        next_day = day + timedelta(days=1)
        two_days = {p: doses + [(next_day, "08:00"), (next_day, "20:00")] for p, doses in one_day.items()}
        assert local_days(**{"from": day.isoformat(), "to": next_day.isoformat()}) == two_days
        until_midnight_utc = datetime.combine(next_day, time(0), tzinfo=timezone.utc).isoformat()
        assert local_days(**{"from": day.isoformat(), "to": until_midnight_utc}) == {**one_day, tokyo: two_days[tokyo][:3]}

        assert len(clinic.read(w.patient, path, **{"from": day.isoformat(), "to": (day + timedelta(days=30)).isoformat()})) >= 4
        expect(clinic.get(w.patient, path, **{"from": day.isoformat(), "to": (day + timedelta(days=31)).isoformat()}), 422, field="to")
        expect(clinic.get(w.patient, path, **{"from": next_day.isoformat(), "to": day.isoformat()}), 422, field="to")
        expect(clinic.get(w.patient, path, **{"from": f"{day.isoformat()}T10:00:00"}), 422, field="from")
        expect(clinic.get(w.patient, path, **{"from": day.isoformat(), "to": f"{next_day.isoformat()}T10:00"}), 422, field="to")
        expect(clinic.get(w.patient, path, **{"from": "2026-02-30"}), 422, field="from")
