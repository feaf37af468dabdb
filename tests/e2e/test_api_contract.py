"""The OpenAPI document is the contract: schemathesis drives every operation of a live server on PostgreSQL, with a
token of each role and anonymously, and every answer must be one the document declares.

Checks: no 5xx; only declared statuses, content types, headers and bodies; and no schema-valid request refused
(422) for a reason the operation does not declare (the schema's own rules, or the refusals listed in its 422
response, `x-refusals`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import schemathesis
from e2e_helpers import (
    OPERATOR,
    PASSWORD,
    WEEKDAYS,
    doctor_profile,
    patient_profile,
    running_server,
    unique_email,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from commands import billing, profiles
from commands.accounts import CreateAccount, create_account
from domain.accounts import Account
from domain.doctors import WeeklyAvailability
from domain.price_list import ServiceKind
from domain.shared import Role
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings

pytestmark = pytest.mark.postgres

ROLES = ("anonymous", *(role.value for role in Role))
# Examples per operation and caller: valid data on the seeded records, valid data on generated ids, invalid data.
EXAMPLES = {"seeded": 3, "generated": 1, "negative": 2}
MIN_REQUESTS_PER_ROLE = 350


class UndeclaredRefusal(Failure):
    """A schema-valid request was refused with a 422 that neither the schema nor the operation declares."""

    kind_title = "Schema-valid request refused for an undeclared reason"


def _names(field_path: str, declared: str) -> bool:
    path = "." + field_path.replace("[", ".").replace("]", "") + "."
    return declared == "*" or f".{declared}." in path


def no_undeclared_refusal(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 422 to a request generated as valid must be one of the operation's declared refusals."""
    if response.status_code != 422 or case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    answer = response.json()
    declared = case.operation.definition.raw["responses"]["422"].get("x-refusals", [])
    faults = [(answer["code"], error["field"]) for error in answer.get("errors") or [{"field": ""}]]
    undeclared = [
        (code, name) for code, name in faults if not any(r["code"] == code and _names(name, r["field"]) for r in declared)
    ]
    if undeclared:
        raise UndeclaredRefusal(operation=case.operation.label, message=f"{answer}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    no_undeclared_refusal,
]


@dataclass
class Seeded:
    """The clinic the server serves: one account per role, and one record of each kind to aim at."""

    emails: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)


def _accounts(settings: Settings) -> Seeded:
    system = bootstrap(settings)
    try:
        svc = system.services
        emails: dict[str, str] = {}
        profile_ids: dict[str, str | None] = {}
        for name, role, profile in [
            ("admin", Role.ADMIN, {}),
            ("auditor", Role.AUDITOR, {}),
            ("analyst", Role.ANALYST, {}),
            ("doctor", Role.DOCTOR, doctor_profile()),
            ("patient", Role.PATIENT, patient_profile()),
            ("victim", Role.PATIENT, patient_profile(full_name="Victor Victim")),
        ]:
            emails[name] = unique_email(name)
            create_account(svc, CreateAccount(emails[name], PASSWORD, role, profile), OPERATOR)
            found = system.store.find(Account, Account.create_id(emails[name]))
            assert found is not None
            profile_ids[name] = found.profile_id
        every_day = WeeklyAvailability("UTC", 30, {day: ((time(0), time(23, 30)),) for day in WEEKDAYS})
        doctor_id = profile_ids["doctor"]
        assert doctor_id is not None
        profiles.set_availability(svc, profiles.SetAvailability(doctor_id, every_day), OPERATOR)
        victim = system.store.find(Account, Account.create_id(emails["victim"]))
        doctor = system.store.find(Account, Account.create_id(emails["doctor"]))
        assert victim is not None and doctor is not None
        ids = {"doctor_id": doctor_id, "patient_id": profile_ids["patient"] or "", "account_id": str(victim.id), "user_id": str(doctor.id)}
        ids["invoice_id"] = _issued_invoice(svc, ids["patient_id"])
        return Seeded(emails, ids)
    finally:
        system.close()


def _issued_invoice(svc: Any, patient_id: str) -> str:
    billing.set_tax_category(svc, billing.SetTaxCategory("standard", Decimal("0")), OPERATOR)
    visit = billing.PriceService("visit", "Visit", ServiceKind.CONSULTATION, Decimal("120.00"), "EUR", "standard")
    billing.price_service(svc, visit, OPERATOR)
    drafted = billing.draft_invoice(svc, billing.DraftInvoice(patient_id, (billing.LineSpec("visit"),)), OPERATOR)
    billing.issue_invoice(svc, billing.IssueInvoice(drafted.id), OPERATOR)
    return drafted.id


def _token(http: httpx.Client, email: str) -> str:
    answer = http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _created(answer: httpx.Response) -> str:
    assert answer.status_code in (200, 201), f"{answer.request.method} {answer.request.url.path}: {answer.text}"
    return answer.json()["id"]


def _records(http: httpx.Client, seeded: Seeded, tokens: dict[str, str]) -> None:
    """A booking, a consultation with a complaint and an attachment, a prescription, care and leave, over HTTP."""
    ids = seeded.ids

    def call(role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        return http.request(method, path, headers=headers, **kwargs)

    tomorrow = datetime.combine(date.today() + timedelta(days=1), time(10), tzinfo=timezone.utc)
    ids["appointment_id"] = _created(
        call("patient", "POST", "/appointments", json={"doctor_id": ids["doctor_id"], "start": tomorrow.isoformat()})
    )
    later = tomorrow + timedelta(days=1)
    _created(call("patient", "POST", "/appointments", json={"doctor_id": ids["doctor_id"], "start": later.isoformat()}))
    ids["consultation_id"] = _created(call("doctor", "POST", "/consultations", json={"appointment_id": ids["appointment_id"]}))
    consultation = f"/consultations/{ids['consultation_id']}"
    _created(call("doctor", "POST", f"{consultation}/complaint", json={"text": "Cough for three days"}))
    files = {"file": ("note.txt", b"Chest clear on auscultation.\n", "text/plain")}
    _created(call("doctor", "POST", f"{consultation}/attachments", data={"kind": "document"}, files=files))
    item = {
        "medication": {"name": "amoxicillin", "strength": "500 mg", "form": "capsule"},
        "dose": "1 capsule",
        "route": "oral",
        "frequency": "three_times_daily",
        "duration_days": 7,
        "quantity": 21,
    }
    payload = {"consultation_id": ids["consultation_id"], "items": [item]}
    ids["prescription_id"] = _created(call("doctor", "POST", "/prescriptions", json=payload))
    care = {"doctor_id": ids["doctor_id"], "kind": "primary_care", "reason": "Registered with the practice"}
    ids["relationship_id"] = _created(call("admin", "POST", f"/patients/{ids['patient_id']}/care-relationships", json=care))
    leave_day = (date.today() + timedelta(days=20)).isoformat()
    _created(call("doctor", "POST", f"/doctors/{ids['doctor_id']}/leave", json={"day": leave_day, "reason": "Conference"}))
    ids["day"] = leave_day
    seen = http.get(consultation, headers={"Authorization": f"Bearer {tokens['doctor']}"})
    ids["attachment_id"] = seen.json()["attachments"][0]["attachment_id"]
    ids["record_id"] = ids["consultation_id"]
    ids["category"], ids["code"] = "standard", "visit"
    _created(call("admin", "PUT", "/billing/tax-categories/standard", json={"rate": "19"}))
    visit = {"name": "Consultation", "kind": "consultation", "price": "80.00", "currency": "EUR", "tax_category": "standard"}
    _created(call("admin", "PUT", "/billing/services/visit", json=visit))
    draft = {"patient_id": ids["patient_id"], "lines": [{"service_code": "visit"}, {"service_code": "visit", "quantity": "2"}]}
    ids["invoice_id"] = _created(call("admin", "POST", "/invoices", json=draft))
    ids["line_id"] = call("admin", "POST", f"/invoices/{ids['invoice_id']}/lines", json={"service_code": "visit"}).json()["line_id"]
    _created(call("admin", "POST", f"/invoices/{ids['invoice_id']}/issue"))
    _created(call("admin", "POST", f"/invoices/{ids['invoice_id']}/payments", json={"reference": "contract-1", "method": "card", "amount": "20.00", "currency": "EUR"}))
    credit = {"reason": "Billed in error", "lines": [{"line_id": ids["line_id"], "quantity": "1"}]}
    ids["credit_note_id"] = call("admin", "POST", f"/invoices/{ids['invoice_id']}/credit-notes", json=credit).json()["credit_note_id"]


@dataclass
class Run:
    requests: Counter[str] = field(default_factory=Counter)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)


def _explore(
    operation: Any, role: str, headers: Callable[[], dict[str, str]], seeded: Seeded, base_url: str, run: Run
) -> None:
    path_ids = {p.name: seeded.ids[p.name] for p in operation.path_parameters if p.name in seeded.ids}
    plans = [
        ("seeded", GenerationMode.POSITIVE, path_ids or None),
        ("generated", GenerationMode.POSITIVE, None),
        ("negative", GenerationMode.NEGATIVE, None),
    ]
    for plan, mode, fixed in plans:
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

        @settings(
            max_examples=EXAMPLES[plan],
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def exercise(case: Any) -> None:
            run.requests[role] += 1
            try:
                case.call_and_validate(base_url=base_url, headers=headers(), checks=CHECKS, timeout=60)
            except (Failure, BaseExceptionGroup) as failure:
                key = (operation.label, role, type(failure).__name__ + ": " + str(failure).splitlines()[0])
                run.failures.setdefault(key, f"{failure}\n{case.as_curl_command(headers=headers(), base_url=base_url)}")

        try:
            exercise()
        except Unsatisfiable:
            if mode == GenerationMode.POSITIVE:
                run.failures[(operation.label, role, f"{plan}: no request could be generated")] = ""
        except schemathesis.errors.SchemathesisError as error:  # the document itself cannot be used by a client
            run.failures[(operation.label, role, f"{plan}: {type(error).__name__}")] = str(error)[:2000]


@pytest.mark.timeout(1200)  # a few thousand requests: about two minutes on a quiet 2-core machine, more on a busy one
def test_every_operation_answers_as_the_openapi_document_declares(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings("postgres")
    seeded = _accounts(settings)
    run = Run()
    # One client for the set-up's requests and the logins: a client per request built an SSL context each time.
    gateway = {"MEDLEDGER_GATEWAY_WEBHOOK_SECRET": "contract-gateway-secret"}
    with running_server(settings, 1, tmp_path / "uvicorn.log", **gateway) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        tokens = {name: _token(http, email) for name, email in seeded.emails.items()}
        _records(http, seeded, tokens)
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 60

        for operation in operations:
            for role in ROLES:

                def headers(role: str = role, operation: Any = operation) -> dict[str, str]:
                    if role == "anonymous":
                        return {}
                    if operation.label == "POST /auth/logout":  # each logout spends a session of its own
                        return {"Authorization": f"Bearer {_token(http, seeded.emails[role])}"}
                    return {"Authorization": f"Bearer {tokens[role]}"}

                _explore(operation, role, headers, seeded, base_url, run)

    report = "\n\n".join(f"{label} as {role}: {kind}\n{detail}" for (label, role, kind), detail in sorted(run.failures.items()))
    assert not run.failures, f"{len(run.failures)} kinds of failure:\n\n{report}"
    assert all(run.requests[role] >= MIN_REQUESTS_PER_ROLE for role in ROLES), run.requests


def _answer(status: int, body: dict[str, Any], positive: bool = True) -> tuple[Any, Any]:
    refusals = [{"code": "booking_in_past", "field": "start", "when": "the start is in the past"}]
    definition = SimpleNamespace(raw={"responses": {"422": {"x-refusals": refusals}}})
    operation = SimpleNamespace(label="POST /appointments", definition=definition)
    mode = SimpleNamespace(is_positive=positive)
    case = SimpleNamespace(operation=operation, meta=SimpleNamespace(generation=SimpleNamespace(mode=mode)))
    return SimpleNamespace(status_code=status, json=lambda: body), case


@pytest.mark.parametrize(
    ("status", "body", "positive"),
    [
        (422, {"code": "booking_in_past", "errors": [{"field": "start", "reason": "in the past"}]}, True),
        (422, {"code": "booking_in_past", "errors": [{"field": "body.start", "reason": "in the past"}]}, True),
        (422, {"code": "invalid_request", "errors": [{"field": "body.start", "reason": "not a date"}]}, False),
        (409, {"code": "slot_taken"}, True),
        (201, {"id": "x"}, True),
    ],
)
def test_the_refusal_check_passes_declared_refusals_and_any_answer_to_invalid_requests(
    status: int, body: dict[str, Any], positive: bool
) -> None:
    response, case = _answer(status, body, positive)
    assert no_undeclared_refusal(None, response, case) is None


@pytest.mark.parametrize(
    "body",
    [
        {"code": "invalid_request", "errors": [{"field": "body.start", "reason": "not a date"}]},
        {"code": "off_grid", "errors": [{"field": "start", "reason": "not on the grid"}]},
        {"code": "booking_in_past", "errors": [{"field": "doctor_id", "reason": "in the past"}]},
        {"code": "invalid_input", "message": "no field named"},
    ],
)
def test_the_refusal_check_fails_a_valid_request_refused_for_an_undeclared_reason(body: dict[str, Any]) -> None:
    response, case = _answer(422, body)
    with pytest.raises(UndeclaredRefusal):
        no_undeclared_refusal(None, response, case)
