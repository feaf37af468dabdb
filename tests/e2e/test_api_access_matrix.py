"""The access matrix over HTTP: every kind of caller against every read, search filter and write of two patients'
records, in one clinic built once per backend. No record a caller may not open shows through, not even in a total."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest

from e2e_helpers import ALL_DAY_EVERY_DAY, Clinic, User, expect, iso, module_clinic, position

CLINICAL, ADMINISTRATIVE, NONE = "clinical", "administrative", "none"
A, B = "A", "B"

# What each caller may open of each patient's record: all of it, its administrative side only, or nothing (404).
ACCESS: dict[str, dict[str, str]] = {
    "patient_a": {A: CLINICAL, B: NONE},
    "patient_b": {A: NONE, B: CLINICAL},
    "primary_care_doctor": {A: CLINICAL, B: NONE},  # A's primary care; wrote A's consultation and prescription
    "referred_doctor": {A: CLINICAL, B: NONE},  # A was referred to them
    "temporary_doctor": {A: CLINICAL, B: NONE},  # temporary care of A for another month
    "expired_temporary_doctor": {A: NONE, B: NONE},  # temporary care of A that ended an hour after it began
    "booked_doctor": {A: CLINICAL, B: NONE},  # nothing but a booked appointment with A
    "doctor_seen_long_ago": {A: NONE, B: NONE},  # saw A (and wrote it up) longer ago than the post-visit window
    "emergency_doctor": {A: CLINICAL, B: NONE},  # broke the glass on A just now, for an hour
    "expired_emergency_doctor": {A: NONE, B: NONE},  # broke the glass on A for a minute, two days ago
    "former_doctor": {A: NONE, B: NONE},  # A's referral to them was ended
    "stranger_doctor": {A: NONE, B: NONE},
    "doctor_b": {A: NONE, B: CLINICAL},  # B's primary care; wrote B's consultation and prescription
    "admin": {A: ADMINISTRATIVE, B: ADMINISTRATIVE},
    "auditor": {A: CLINICAL, B: CLINICAL},  # reads everything, writes nothing
    "analyst": {A: NONE, B: NONE},
}
CALLERS = list(ACCESS)
DOCTORS = [caller for caller in CALLERS if "doctor" in caller]
DOCTORS_WITH_HOURS = {"booked_doctor", "doctor_seen_long_ago", "doctor_b"}

# Appointments follow the appointment book's own rule: the patient, the doctor, and staff who read the whole book.
APPOINTMENT_READERS: dict[str, set[str]] = {
    "booked appointment A": {"patient_a", "booked_doctor", "admin", "auditor", "analyst"},
    "earlier appointment A": {"patient_a", "doctor_seen_long_ago", "admin", "auditor", "analyst"},
    "appointment B": {"patient_b", "doctor_b", "admin", "auditor", "analyst"},
}

# Whose record each named record belongs to.
OWNER = {
    "patient A": A,
    "consultation A": A,
    "earlier consultation A": A,
    "attachment A": A,
    "prescription A": A,
    "booked appointment A": A,
    "earlier appointment A": A,
    "patient B": B,
    "consultation B": B,
    "attachment B": B,
    "prescription B": B,
    "appointment B": B,
}
CLINICAL_KEYS = {"chief_complaint", "symptoms", "vital_signs", "diagnoses", "notes", "attachments", "amendments"}
PDF = {A: b"%PDF-1.7\n% ECG of patient A\n%%EOF\n", B: b"%PDF-1.7\n% throat swab of patient B\n%%EOF\n"}
PULSE = {A: 88, B: 104}
LABEL = {A: "Patient-A", B: "Patient-B"}  # begins every clinical text and file name of that patient's record


@dataclass(frozen=True)
class Read:
    """A read of one patient's record; `opens` are the access levels that get a 200, everyone else a 404."""

    name: str
    path: str
    opens: frozenset[str]
    params: dict[str, str] = field(default_factory=dict)


BOTH = frozenset({CLINICAL, ADMINISTRATIVE})
CLINICAL_ONLY = frozenset({CLINICAL})
READS = [
    Read("patient", "/patients/{patient}", BOTH),
    Read("chart", "/patients/{patient}/chart", CLINICAL_ONLY),
    Read("care relationships", "/patients/{patient}/care-relationships", BOTH),
    Read("emergency access", "/patients/{patient}/emergency-access", BOTH),
    Read("reminders", "/patients/{patient}/reminders", CLINICAL_ONLY),
    Read("consultation", "/consultations/{consultation}", BOTH),
    Read("consultation as recorded", "/consultations/{consultation}", BOTH, {"view": "as_recorded"}),
    Read("earlier consultation", "/consultations/{earlier}", BOTH),
    Read("attachment", "/consultations/{consultation}/attachments/{attachment}", CLINICAL_ONLY),
    Read("the other patient's attachment", "/consultations/{consultation}/attachments/{other_attachment}", frozenset()),
    Read("prescription", "/prescriptions/{prescription}", BOTH),
]


@dataclass(frozen=True)
class Search:
    path: str
    params: dict[str, str]
    matches: frozenset[str]

    def __str__(self) -> str:
        return f"{self.path}?{'&'.join(f'{k}={v}' for k, v in self.params.items())}"


def search(path: str, matches: set[str], **params: str) -> Search:
    return Search(path, params, frozenset(matches))


CONSULTATIONS = {"consultation A", "earlier consultation A", "consultation B"}
PRESCRIPTIONS = {"prescription A", "prescription B"}
APPOINTMENTS = set(APPOINTMENT_READERS)
EVERYTHING = {"from": "before everything", "to": "after everything"}
B_VISIT_DAY = {"from": "B's visit", "to": "the day after B's visit"}
# Each search and the records it matches whoever asks; a caller must get exactly those of them they may open.
# Parameter values naming a record or a caller stand for its id.
SEARCHES = [
    search("/patients", {"patient A", "patient B"}),
    search("/patients", {"patient A", "patient B"}, name="a"),
    search("/patients", {"patient A"}, name="LOVELACE"),
    search("/patients", {"patient B"}, name="seacole"),
    search("/patients", {"patient A"}, phone="7946 0001"),
    search("/patients", {"patient B"}, phone="555 0142"),
    search("/patients", {"patient B"}, date_of_birth="1971-03-04"),
    search("/consultations", CONSULTATIONS),
    search("/consultations", {"consultation A", "earlier consultation A"}, patient_id="patient A"),
    search("/consultations", {"consultation B"}, patient_id="patient B"),
    search("/consultations", {"consultation A"}, doctor_id="primary_care_doctor"),
    search("/consultations", {"earlier consultation A"}, doctor_id="doctor_seen_long_ago"),
    search("/consultations", {"consultation B"}, doctor_id="doctor_b"),
    search("/consultations", {"consultation A"}, diagnosis_code="I20"),
    search("/consultations", {"consultation B"}, diagnosis_code="J06.9"),
    search("/consultations", {"consultation B"}, patient_id="patient B", diagnosis_code="J06"),
    search("/consultations", CONSULTATIONS, **EVERYTHING),
    search("/consultations", {"consultation B"}, **B_VISIT_DAY),
    search("/consultations", CONSULTATIONS, status="signed"),
    search("/consultations", {"consultation A"}, kind="video"),
    search("/prescriptions", PRESCRIPTIONS),
    search("/prescriptions", {"prescription A"}, patient_id="patient A"),
    search("/prescriptions", {"prescription B"}, patient_id="patient B"),
    search("/prescriptions", {"prescription B"}, doctor_id="doctor_b"),
    search("/prescriptions", {"prescription A"}, medication="ATORVA"),
    search("/prescriptions", {"prescription B"}, medication="amoxi"),
    search("/prescriptions", PRESCRIPTIONS, **EVERYTHING),
    search("/prescriptions", {"prescription B"}, **B_VISIT_DAY),
    search("/prescriptions", PRESCRIPTIONS, status="issued"),
    search("/appointments", APPOINTMENTS),
    search("/appointments", {"booked appointment A", "earlier appointment A"}, patient_id="patient A"),
    search("/appointments", {"appointment B"}, patient_id="patient B"),
    search("/appointments", {"appointment B"}, doctor_id="doctor_b"),
    search("/appointments", {"booked appointment A"}, doctor_id="booked_doctor"),
    search("/appointments", APPOINTMENTS, **EVERYTHING),
    search("/appointments", {"appointment B"}, **B_VISIT_DAY),
    search("/appointments", {"earlier appointment A", "appointment B"}, status="completed"),
]
# Searches that are not the caller's to make at all (403), whatever the filter.
SEARCHERS_REFUSED = {
    "/patients": {"patient_a", "patient_b", "analyst"},
    "/consultations": {"analyst"},
    "/prescriptions": {"analyst"},
    "/appointments": set(),
}

PARACETAMOL = {
    "item_id": "p1",
    "medication": {"name": "Paracetamol", "strength": "500 mg", "form": "tablet"},
    "dose": "1 tablet",
    "route": "oral",
    "frequency": "four_times_daily",
    "duration_days": 3,
    "quantity": 12,
    "refills": 0,
    "instructions": "After food.",
}


@dataclass(frozen=True)
class Write:
    """A write to a consultation or a prescription. `allowed` names who gets past the access rules ("its doctor",
    "treating doctors" or a caller) and what they then get: a status, or None when it would change the record,
    so it is not tried here. Everyone else gets 404 if they may not open the record, else 403."""

    name: str
    method: str
    path: str
    payload: dict[str, Any] | None
    allowed: dict[str, int | None]

    @property
    def on(self) -> str:
        return "prescription" if "{prescription}" in self.path else "consultation"


WRITES = [
    Write("note", "POST", "/consultations/{consultation}/notes", {"text": "Slipped into someone's record"}, {"its doctor": 409}),
    Write("vital signs", "POST", "/consultations/{consultation}/vitals", {"pulse": 71}, {"its doctor": 409}),
    Write(
        "amendment",
        "POST",
        "/consultations/{consultation}/amendments",
        {"entry_id": "{complaint}", "changes": {"text": "Rewritten"}, "reason": "Correcting the record"},
        {"its doctor": None},
    ),
    Write(
        "prescription", "POST", "/prescriptions", {"consultation_id": "{consultation}", "items": [PARACETAMOL]}, {"its doctor": None}
    ),
    Write("revise items", "PUT", "/prescriptions/{prescription}/items", {"items": [PARACETAMOL]}, {"its doctor": None}),
    Write("check", "POST", "/prescriptions/{prescription}/check", None, {"its doctor": None}),
    Write("issue", "POST", "/prescriptions/{prescription}/issue", None, {"its doctor": None}),
    Write("dispense", "POST", "/prescriptions/{prescription}/dispense", {"item_id": "{item}", "quantity": 1}, {"admin": None}),
    Write("cancel", "POST", "/prescriptions/{prescription}/cancel", {"reason": "Not wanted"}, {"its doctor": None, "admin": None}),
    Write("renew", "POST", "/prescriptions/{prescription}/renew", None, {"treating doctors": None}),
]
AUTHORS = {
    "consultation A": "primary_care_doctor",
    "earlier consultation A": "doctor_seen_long_ago",
    "consultation B": "doctor_b",
    "prescription A": "primary_care_doctor",
    "prescription B": "doctor_b",
}
REFUSAL_CODES = {404: "not_found", 403: "forbidden", 409: "consultation_signed"}


def swap(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def fill(template: str, values: dict[str, str]) -> str:
    return swap(template, {f"{{{key}}}": value for key, value in values.items()})


def expected_write(caller: str, record: str, write: Write) -> int | None:
    if ACCESS[caller][OWNER[record]] == NONE:
        return 404
    for who, answer in write.allowed.items():
        its_doctor = who == "its doctor" and caller == AUTHORS[record]
        if who == caller or its_doctor or (who == "treating doctors" and caller in DOCTORS):
            return answer
    return 403


# The world


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    payload: Any = None
    params: dict[str, str] = field(default_factory=dict)

    def swapping(self, replacements: dict[str, str]) -> Request:
        payload = json.loads(swap(json.dumps(self.payload), replacements))
        return Request(self.method, swap(self.path, replacements), payload, self.params)


@dataclass
class World:
    clinic: Clinic
    users: dict[str, User]
    ids: dict[str, str]
    entries: dict[str, str]
    clinical_texts: list[str]
    after: int

    def id(self, name: str) -> str:
        """The id a table's name stands for: a record, a caller's profile, or a moment; any other value as it is."""
        if name in self.ids:
            return self.ids[name]
        if name in self.users:
            return self.users[name].profile_id or ""
        return name

    def get(self, caller: str, path: str, **params: Any) -> httpx.Response:
        return self.clinic.get(self.users[caller], path, after=self.after, **params)

    def send(self, caller: str, request: Request) -> httpx.Response:
        if request.method == "GET":
            return self.get(caller, request.path, **request.params)
        return self.clinic.client.request(request.method, request.path, headers=self.users[caller].headers, json=request.payload)

    def paths(self, patient: str) -> dict[str, str]:
        other = B if patient == A else A
        names = {
            "patient": f"patient {patient}",
            "consultation": f"consultation {patient}",
            "earlier": f"earlier consultation {patient}",
            "attachment": f"attachment {patient}",
            "other_attachment": f"attachment {other}",
            "prescription": f"prescription {patient}",
        }
        return {key: self.ids[name] for key, name in names.items() if name in self.ids}

    def name(self, record_id: str) -> str:
        return next((name for name, known in self.ids.items() if known == record_id), record_id)

    def foreign_ids(self, caller: str) -> dict[str, str]:
        """The ids of every record of the patients this caller may not open."""
        return {name: self.ids[name] for name, owner in OWNER.items() if ACCESS[caller][owner] == NONE}


def post(clinic: Clinic, user: User, path: str, payload: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    return expect(clinic.client.post(path, headers=user.headers, json=payload), status)


def start_care(clinic: Clinic, admin: User, patient: User, doctor: User, kind: str, **extra: Any) -> dict[str, Any]:
    payload = {"doctor_id": doctor.profile_id, "kind": kind, "reason": "Arranged by the practice", **extra}
    return post(clinic, admin, f"/patients/{patient.profile_id}/care-relationships", payload, 201)


def break_glass(clinic: Clinic, doctor: User, patient: User, minutes: int) -> dict[str, Any]:
    payload = {"reason": "Found unconscious in the waiting room", "minutes": minutes}
    return post(clinic, doctor, f"/patients/{patient.profile_id}/emergency-access", payload, 201)


@dataclass(frozen=True)
class Record:
    consultation_id: str
    attachment_id: str
    complaint_entry: str
    texts: list[str]


def full_consultation(clinic: Clinic, doctor: User, start: dict[str, str], label: str, code: str, pdf: bytes, pulse: int) -> Record:
    """A consultation with a complaint, symptom, vital signs, diagnosis, note and attachment, signed, then amended."""
    cid = post(clinic, doctor, "/consultations", start, 201)["id"]
    complaint, symptom, note = f"{label} complaint: tight chest", f"{label} symptom: breathlessness", f"{label} note: as first written"
    diagnosis, amended, filename = f"{label} diagnosis description", f"{label} note: as amended", f"{label} results.pdf"
    post(clinic, doctor, f"/consultations/{cid}/complaint", {"text": complaint})
    post(clinic, doctor, f"/consultations/{cid}/symptoms", {"name": symptom, "severity": "moderate", "duration": "2 days"})
    post(clinic, doctor, f"/consultations/{cid}/vitals", {"systolic": 150, "diastolic": 95, "pulse": pulse, "spo2": 97})
    post(clinic, doctor, f"/consultations/{cid}/diagnoses", {"code": code, "description": diagnosis, "rank": "primary", "status": "confirmed"})
    post(clinic, doctor, f"/consultations/{cid}/notes", {"text": note})
    attachment = expect(
        clinic.client.post(
            f"/consultations/{cid}/attachments",
            headers=doctor.headers,
            data={"kind": "lab_report"},
            files={"file": (filename, pdf, "application/pdf")},
        ),
        201,
    )["id"]
    post(clinic, doctor, f"/consultations/{cid}/sign")
    view = clinic.read(doctor, f"/consultations/{cid}")
    [note_entry] = view["notes"]
    correction = {"entry_id": note_entry["entry_id"], "changes": {"text": amended}, "reason": "Typed in haste"}
    post(clinic, doctor, f"/consultations/{cid}/amendments", correction)
    return Record(cid, attachment, view["chief_complaint"]["entry_id"], [complaint, symptom, note, diagnosis, amended, filename])


def brief_consultation(clinic: Clinic, doctor: User, appointment_id: str, label: str) -> Record:
    """A consultation started from an appointment, with a complaint and a diagnosis, signed (which completes the visit)."""
    cid = post(clinic, doctor, "/consultations", {"appointment_id": appointment_id, "kind": "in_person"}, 201)["id"]
    complaint = f"{label} complaint: headaches"
    post(clinic, doctor, f"/consultations/{cid}/complaint", {"text": complaint})
    post(clinic, doctor, f"/consultations/{cid}/diagnoses", {"code": "I10", "description": f"{label} hypertension", "rank": "primary"})
    post(clinic, doctor, f"/consultations/{cid}/sign")
    entry = clinic.read(doctor, f"/consultations/{cid}")["chief_complaint"]["entry_id"]
    return Record(cid, "", entry, [complaint, f"{label} hypertension"])


def issued_prescription(clinic: Clinic, doctor: User, consultation_id: str, medication: str, frequency: str, days: int) -> str:
    item = {
        "item_id": medication.lower(),
        "medication": {"name": medication, "strength": "20 mg", "form": "tablet"},
        "dose": "1 tablet",
        "route": "oral",
        "frequency": frequency,
        "duration_days": days,
        "quantity": days * 3,
        "refills": 0,
        "instructions": "With water.",
    }
    prescription_id = post(clinic, doctor, "/prescriptions", {"consultation_id": consultation_id, "items": [item]}, 201)["id"]
    post(clinic, doctor, f"/prescriptions/{prescription_id}/issue")
    return prescription_id


def build_world(clinic: Clinic) -> World:
    """Everyone logs in first (tokens are checked against the real time); then, over two days of the fake clock:
    day 0 the relationships, a one-minute emergency access, the bookings, and A's record by the primary care doctor;
    day 1 10:05 the doctor seen long ago writes up their visit; 11:05 B's doctor writes B's record;
    day 2 12:00 (now) the visit of day 1 is past the post-visit window, the emergency doctor breaks the glass,
    and the former doctor's referral is ended."""
    admin = clinic.admin()
    users = {"admin": admin, "auditor": clinic.staff(admin, "auditor"), "analyst": clinic.staff(admin, "analyst")}
    users["patient_a"] = clinic.patient(full_name="Ada Lovelace", date_of_birth="1955-12-10", phone="+44 20 7946 0001")
    users["patient_b"] = clinic.patient(full_name="Mary Seacole", date_of_birth="1971-03-04", phone="+1 212 555 0142")
    for name in DOCTORS:
        hours = ALL_DAY_EVERY_DAY if name in DOCTORS_WITH_HOURS else None
        users[name] = clinic.doctor(admin, availability=hours, name=f"Dr {name.replace('_', ' ').title()}")
    patient_a, patient_b, gp = users["patient_a"], users["patient_b"], users["primary_care_doctor"]
    start = clinic.clock.now
    earlier_visit, b_visit, booked_visit = clinic.at(1, 10), clinic.at(1, 11), clinic.at(5, 10)
    b_visit_day_over, final = clinic.at(2, 0), clinic.at(2, 12)

    start_care(clinic, admin, patient_a, gp, "primary_care")
    start_care(clinic, admin, patient_a, users["referred_doctor"], "referral", referring_doctor_id=gp.profile_id)
    start_care(clinic, admin, patient_a, users["temporary_doctor"], "temporary", expires_at=iso(start + timedelta(days=30)))
    start_care(clinic, admin, patient_a, users["expired_temporary_doctor"], "temporary", expires_at=iso(start + timedelta(hours=1)))
    former = start_care(clinic, admin, patient_a, users["former_doctor"], "referral", referring_doctor_id=gp.profile_id)
    start_care(clinic, admin, patient_b, users["doctor_b"], "primary_care")
    break_glass(clinic, users["expired_emergency_doctor"], patient_a, minutes=1)
    ids = {
        "patient A": patient_a.profile_id or "",
        "patient B": patient_b.profile_id or "",
        "booked appointment A": clinic.booked(patient_a, users["booked_doctor"], booked_visit)["id"],
        "earlier appointment A": clinic.booked(patient_a, users["doctor_seen_long_ago"], earlier_visit)["id"],
        "appointment B": clinic.booked(patient_b, users["doctor_b"], b_visit)["id"],
    }

    record_a = full_consultation(clinic, gp, {"patient_id": ids["patient A"], "kind": "video"}, LABEL[A], "i209", PDF[A], PULSE[A])
    ids["prescription A"] = issued_prescription(clinic, gp, record_a.consultation_id, "Atorvastatin", "once_daily", 30)

    clinic.read(admin, "/appointments", after=clinic.latest())  # a visit opens the record once the appointment book has it
    clinic.move_clock_to(earlier_visit + timedelta(minutes=5))
    earlier = brief_consultation(clinic, users["doctor_seen_long_ago"], ids["earlier appointment A"], f"{LABEL[A]} earlier")

    clinic.move_clock_to(b_visit + timedelta(minutes=5))
    start_b = {"appointment_id": ids["appointment B"], "kind": "in_person"}
    record_b = full_consultation(clinic, users["doctor_b"], start_b, LABEL[B], "J06.9", PDF[B], PULSE[B])
    ids["prescription B"] = issued_prescription(
        clinic, users["doctor_b"], record_b.consultation_id, "Amoxicillin", "three_times_daily", 7
    )

    clinic.move_clock_to(final)
    break_glass(clinic, users["emergency_doctor"], patient_a, minutes=60)
    post(clinic, admin, f"/patients/{patient_a.profile_id}/care-relationships/{former['id']}/end", {"reason": "Referral closed"})

    ids.update(
        {
            "consultation A": record_a.consultation_id,
            "attachment A": record_a.attachment_id,
            "earlier consultation A": earlier.consultation_id,
            "consultation B": record_b.consultation_id,
            "attachment B": record_b.attachment_id,
            "before everything": iso(start - timedelta(days=1)),
            "after everything": iso(start + timedelta(days=30)),
            "B's visit": iso(b_visit),
            "the day after B's visit": iso(b_visit_day_over),
        }
    )
    entries = {
        "consultation A": record_a.complaint_entry,
        "earlier consultation A": earlier.complaint_entry,
        "consultation B": record_b.complaint_entry,
        "prescription A": "atorvastatin",
        "prescription B": "amoxicillin",
    }
    return World(clinic, users, ids, entries, record_a.texts + earlier.texts + record_b.texts, clinic.latest())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One clinic per backend for the whole module: every test here only reads it or is refused."""
    with module_clinic(request.param, tmp_path_factory.mktemp("access-matrix")) as clinic:
        yield build_world(clinic)


# What a 200 must and must not show


def leaks(world: World, caller: str, response: httpx.Response) -> list[str]:
    """Ids and clinical texts of records the caller may not open, and clinical content shown to an admin."""
    text = response.text
    found = [f"shows {name}" for name, record_id in world.foreign_ids(caller).items() if record_id in text]
    found += [f"shows {label} texts" for patient, label in LABEL.items() if ACCESS[caller][patient] == NONE and label in text]
    if caller == "admin":
        found += [f"shows clinical text {t!r}" for t in world.clinical_texts if t in text]
    return found


def content_problems(world: World, caller: str, read: Read, patient: str, response: httpx.Response) -> list[str]:
    level, ids = ACCESS[caller][patient], world.paths(patient)
    problems = leaks(world, caller, response)
    if read.name == "attachment":
        return problems + ([] if response.content == PDF[patient] else ["another file's bytes"])
    answer = response.json()
    if read.name in ("consultation", "consultation as recorded", "earlier consultation"):
        wanted = {CLINICAL: read.params.get("view", "current"), ADMINISTRATIVE: "administrative"}[level]
        if answer["view"] != wanted:
            problems.append(f"the {answer['view']} view, not the {wanted} one")
        if level == ADMINISTRATIVE and CLINICAL_KEYS & set(answer):
            problems.append(f"clinical fields {sorted(CLINICAL_KEYS & set(answer))}")
        note = {"consultation": "note: as amended", "consultation as recorded": "note: as first written"}.get(read.name)
        if level == CLINICAL and note and note not in answer["notes"][0]["text"]:
            problems.append(f"not the {note}")
    if read.name == "chart":
        timeline = {item["id"] for item in answer["timeline"]["items"]}
        pulses = [reading["value"] for reading in answer["vitals"]["pulse"]["readings"]]
        if answer["patient_id"] != ids["patient"] or ids["consultation"] not in timeline or pulses != [PULSE[patient]]:
            problems.append("not this patient's chart")
    if read.name == "reminders" and (not answer or {dose["prescription_id"] for dose in answer} != {ids["prescription"]}):
        problems.append(f"reminders {answer!r}")
    if read.name == "emergency access" and caller in DOCTORS:
        others = {grant["doctor_id"] for grant in answer} - {world.users[caller].profile_id}
        if others:
            problems.append("other doctors' emergency access")
    return problems


def hidden_like_missing(world: World, caller: str, request: Request, response: httpx.Response) -> list[str]:
    """A record the caller may not open answers exactly as one that does not exist, and records nothing either."""
    sent = f"{request.path} {json.dumps(request.payload)}"
    hidden = {record_id: str(uuid4()) for record_id in set(world.ids.values()) if record_id in sent}
    before = world.clinic.latest()
    missing = world.send(caller, request.swapping(hidden))
    if world.clinic.latest() != before:
        return ["a write to a missing record recorded something"]
    shown, expected = response.text, missing.text
    for n, (record_id, unknown) in enumerate(hidden.items()):
        shown, expected = shown.replace(record_id, f"<id {n}>"), expected.replace(unknown, f"<id {n}>")
    if (response.status_code, shown) != (missing.status_code, expected):
        return [f"answers {response.status_code} {shown} where a missing record answers {missing.status_code} {expected}"]
    return []


# The matrix


@pytest.mark.parametrize("caller", CALLERS)
def test_every_read_of_either_record_answers_200_or_404_as_the_access_rules_say(world: World, caller: str) -> None:
    wrong = []
    for patient in (A, B):
        level = ACCESS[caller][patient]
        for read in READS:
            try:
                request = Request("GET", read.path.format_map(world.paths(patient)), params=read.params)
            except KeyError:
                continue
            expected = 200 if level in read.opens else 404
            response = world.send(caller, request)
            cell = f"{read.name} of {patient}"
            if response.status_code != expected:
                wrong.append(f"{cell}: {response.status_code} {response.text[:200]}, expected {expected}")
            elif expected == 200:
                wrong += [f"{cell}: {problem}" for problem in content_problems(world, caller, read, patient, response)]
            elif level == NONE:
                wrong += [f"{cell}: {problem}" for problem in hidden_like_missing(world, caller, request, response)]
    assert wrong == []


@pytest.mark.parametrize("caller", CALLERS)
def test_every_appointment_is_seen_by_its_patient_its_doctor_and_staff_only(world: World, caller: str) -> None:
    wrong = []
    for appointment, readers in APPOINTMENT_READERS.items():
        request = Request("GET", f"/appointments/{world.ids[appointment]}")
        response = world.send(caller, request)
        expected = 200 if caller in readers else 404
        if response.status_code != expected:
            wrong.append(f"{appointment}: {response.status_code}, expected {expected}")
        elif expected == 404:
            wrong += [f"{appointment}: {problem}" for problem in hidden_like_missing(world, caller, request, response)]
    assert wrong == []


def visible(caller: str, path: str) -> set[str]:
    if path == "/appointments":
        return {name for name, readers in APPOINTMENT_READERS.items() if caller in readers}
    return {name for name, owner in OWNER.items() if ACCESS[caller][owner] != NONE}


@pytest.mark.parametrize("caller", CALLERS)
def test_every_search_and_filter_finds_exactly_the_records_the_caller_may_open_and_counts_no_others(world: World, caller: str) -> None:
    wrong = []
    for case in SEARCHES:
        params = {key: world.id(value) for key, value in case.params.items()}
        response = world.get(caller, case.path, page_size=100, **params)
        refused = caller in SEARCHERS_REFUSED[case.path] or (caller == "admin" and "diagnosis_code" in params)
        if refused:
            if response.status_code != 403:
                wrong.append(f"{case}: {response.status_code}, expected 403")
            continue
        if response.status_code != 200:
            wrong.append(f"{case}: {response.status_code} {response.text[:200]}, expected 200")
            continue
        page = response.json()
        found = {world.name(item["id"]) for item in page["items"]}
        expected = case.matches & visible(caller, case.path)
        if found != expected or page["total"] != len(expected):
            wrong.append(f"{case}: found {sorted(found)} of {page['total']}, expected {sorted(expected)}")
        if case.path != "/appointments":
            wrong += [f"{case}: {problem}" for problem in leaks(world, caller, response)]
        if caller == "admin" and case.path == "/consultations":
            wrong += [f"{case}: not the administrative view" for item in page["items"] if item["view"] != "administrative"]
    assert wrong == []


@pytest.mark.parametrize("caller", CALLERS)
def test_no_one_writes_to_a_record_but_its_own_doctor_or_the_dispensing_desk_and_refusals_record_nothing(world: World, caller: str) -> None:
    wrong = []
    for record in AUTHORS:
        for write in WRITES:
            expected = expected_write(caller, record, write)
            if write.on not in record or expected is None:
                continue
            values = {write.on: world.ids[record], "complaint": world.entries.get(record, ""), "item": world.entries.get(record, "")}
            request = Request(write.method, fill(write.path, values), json.loads(fill(json.dumps(write.payload), values)))
            before = world.clinic.latest()
            response = world.send(caller, request)
            cell = f"{write.name} on {record}"
            if response.status_code != expected or response.json().get("code") != REFUSAL_CODES[expected]:
                wrong.append(f"{cell}: {response.status_code} {response.text[:200]}, expected {expected}")
            if world.clinic.latest() != before:
                wrong.append(f"{cell}: refused, yet something was recorded")
            elif expected == 404:
                wrong += [f"{cell}: {problem}" for problem in hidden_like_missing(world, caller, request, response)]
    assert wrong == []


def test_the_world_holds_what_the_matrix_assumes(world: World) -> None:
    """The matrix is only as good as its world: every record exists and the auditor sees each one."""
    auditor = "auditor"
    assert world.get(auditor, f"/consultations/{world.ids['earlier consultation A']}").json()["status"] == "signed"
    assert world.get(auditor, f"/appointments/{world.ids['earlier appointment A']}").json()["status"] == "completed"
    assert world.get(auditor, f"/appointments/{world.ids['booked appointment A']}").json()["status"] == "booked"
    for patient in (A, B):
        record = world.get(auditor, f"/consultations/{world.ids[f'consultation {patient}']}").json()
        assert record["status"] == "signed" and record["amendments"] and record["attachments"] and record["vital_signs"]
        assert world.get(auditor, f"/prescriptions/{world.ids[f'prescription {patient}']}").json()["status"] == "issued"
    relationships = world.get(auditor, f"/patients/{world.ids['patient A']}/care-relationships").json()
    active = {r["doctor_id"]: r["active"] for r in relationships}
    assert active == {
        world.id("primary_care_doctor"): True,
        world.id("referred_doctor"): True,
        world.id("temporary_doctor"): True,
        world.id("expired_temporary_doctor"): False,
        world.id("former_doctor"): False,
    }
    grants = world.get(auditor, f"/patients/{world.ids['patient A']}/emergency-access").json()
    assert {g["doctor_id"]: g["active"] for g in grants} == {world.id("emergency_doctor"): True, world.id("expired_emergency_doctor"): False}


# Ending a relationship


def test_ending_a_relationship_closes_every_read_search_and_write_of_the_record(clinic: Clinic) -> None:
    admin = clinic.admin()
    gp, cardiologist, patient = clinic.doctor(admin, availability=None), clinic.doctor(admin, availability=None), clinic.patient()
    start_care(clinic, admin, patient, gp, "primary_care")
    referral = start_care(clinic, admin, patient, cardiologist, "referral", referring_doctor_id=gp.profile_id)
    record = full_consultation(clinic, gp, {"patient_id": patient.profile_id or ""}, "Referred", "I20.9", PDF[A], PULSE[A])
    ids = {
        "patient": patient.profile_id or "",
        "consultation": record.consultation_id,
        "attachment": record.attachment_id,
        "prescription": issued_prescription(clinic, gp, record.consultation_id, "Atorvastatin", "once_daily", 30),
    }
    reads = {read.name: (read.path.format_map(ids), read.params) for read in READS if read.opens and "{earlier}" not in read.path}
    searches = {"/patients": {}, "/consultations": {"patient_id": ids["patient"]}, "/prescriptions": {"medication": "atorva"}}

    def statuses(after: int) -> dict[str, int]:
        return {name: clinic.get(cardiologist, path, after=after, **params).status_code for name, (path, params) in reads.items()}

    def totals(after: int) -> dict[str, int]:
        return {path: clinic.read(cardiologist, path, after=after, **params)["total"] for path, params in searches.items()}

    def write_a_note() -> httpx.Response:
        return clinic.client.post(f"/consultations/{record.consultation_id}/notes", headers=cardiologist.headers, json={"text": "Seen"})

    assert statuses(clinic.latest()) == dict.fromkeys(reads, 200)
    assert totals(clinic.latest()) == dict.fromkeys(searches, 1)
    expect(write_a_note(), 403, "forbidden")

    ended = post(clinic, admin, f"/patients/{ids['patient']}/care-relationships/{referral['id']}/end", {"reason": "Referral closed"})

    assert statuses(position(ended)) == dict.fromkeys(reads, 404)
    assert totals(position(ended)) == dict.fromkeys(searches, 0)
    expect(write_a_note(), 404, "not_found")
