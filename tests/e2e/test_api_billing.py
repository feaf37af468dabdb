"""Billing commands over HTTP: the price list, drafting, discounts, issuing, credit notes, payments, refunds, void and
write-off; each endpoint's success and its 401/403/404/409/422."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from e2e_helpers import Clinic, User, expect

STANDARD = {"rate": "19"}
ECG = {"name": "Electrocardiogram", "kind": "test", "price": "40.00", "currency": "EUR", "tax_category": "standard"}
VISIT = {"name": "Consultation", "kind": "consultation", "price": "80.00", "currency": "EUR", "tax_category": "exempt"}


@pytest.fixture
def desk(clinic: Clinic) -> tuple[Clinic, User, User]:
    """A clinic with a price list, its admin and a patient."""
    admin = clinic.admin()
    expect(clinic.client.put("/billing/tax-categories/standard", headers=admin.headers, json=STANDARD), 200)
    expect(clinic.client.put("/billing/tax-categories/exempt", headers=admin.headers, json={"rate": "0"}), 200)
    expect(clinic.client.put("/billing/services/ecg", headers=admin.headers, json=ECG), 200)
    expect(clinic.client.put("/billing/services/visit", headers=admin.headers, json=VISIT), 200)
    return clinic, admin, clinic.patient()


def drafted(clinic: Clinic, admin: User, patient: User, *lines: dict[str, Any]) -> str:
    payload = {"patient_id": patient.profile_id, "lines": list(lines or ({"service_code": "visit"}, {"service_code": "ecg", "quantity": "2"}))}
    return expect(clinic.client.post("/invoices", headers=admin.headers, json=payload), 201)["id"]


def issued(clinic: Clinic, admin: User, patient: User, *lines: dict[str, Any]) -> tuple[str, str]:
    invoice_id = drafted(clinic, admin, patient, *lines)
    return invoice_id, expect(clinic.client.post(f"/invoices/{invoice_id}/issue", headers=admin.headers), 200)["number"]


def stored(clinic: Clinic, invoice_id: str) -> dict[str, Any]:
    from domain.invoice import Invoice

    invoice = clinic.medledger.services.store.find(Invoice, invoice_id)
    assert invoice is not None
    return invoice.view()


def payment(reference: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {"reference": reference, "method": "card", "amount": amount, "currency": "EUR", **extra}


def test_the_price_list_is_kept_by_admins_and_read_by_staff_and_patients(desk: tuple[Clinic, User, User]) -> None:
    clinic, admin, patient = desk
    listed = expect(clinic.client.get("/billing/price-list", headers=patient.headers), 200)
    assert {"code": "ecg", "price": "40.00", "tax_rate": "19.00"}.items() <= next(s for s in listed["services"] if s["code"] == "ecg").items()
    expect(clinic.client.put("/billing/services/ecg", headers=patient.headers, json=ECG), 403)
    expect(clinic.client.put("/billing/services/ecg", json=ECG), 401)
    expect(clinic.client.put("/billing/services/ecg", headers=admin.headers, json={**ECG, "tax_category": "luxury"}), 422, field="tax_category")
    expect(clinic.client.put("/billing/services/ecg", headers=admin.headers, json={**ECG, "price": "40.001"}), 422, field="price")
    expect(clinic.client.put("/billing/services/ecg", headers=admin.headers, json={**ECG, "currency": "XXX"}), 422, field="currency")
    expect(clinic.client.put("/billing/tax-categories/standard", headers=admin.headers, json={"rate": "101"}), 422, field="rate")
    analyst = clinic.staff(admin, "analyst")
    expect(clinic.client.get("/billing/price-list", headers=analyst.headers), 403)


def test_a_draft_keeps_the_price_it_was_drafted_with(desk: tuple[Clinic, User, User]) -> None:
    clinic, admin, patient = desk
    invoice_id = drafted(clinic, admin, patient, {"service_code": "ecg"})
    expect(clinic.client.put("/billing/services/ecg", headers=admin.headers, json={**ECG, "price": "55.00"}), 200)
    assert stored(clinic, invoice_id)["lines"][0]["unit_price"] == "40.00"
    later = drafted(clinic, admin, patient, {"service_code": "ecg"})
    assert stored(clinic, later)["lines"][0]["unit_price"] == "55.00"
    expect(clinic.client.put("/billing/services/ecg", headers=admin.headers, json=ECG), 200)


def test_drafting_lines_and_discounts_then_issuing_freezes_them(desk: tuple[Clinic, User, User]) -> None:
    clinic, admin, patient = desk
    invoice_id = drafted(clinic, admin, patient)
    added = expect(clinic.client.post(f"/invoices/{invoice_id}/lines", headers=admin.headers, json={"service_code": "ecg"}), 201)
    expect(clinic.client.delete(f"/invoices/{invoice_id}/lines/{added['line_id']}", headers=admin.headers), 200)
    line_id = stored(clinic, invoice_id)["lines"][1]["line_id"]
    discount = {"kind": "percent", "value": "10", "reason": "staff member"}
    expect(clinic.client.put(f"/invoices/{invoice_id}/lines/{line_id}/discount", headers=admin.headers, json=discount), 200)
    expect(clinic.client.put(f"/invoices/{invoice_id}/discount", headers=admin.headers, json={"kind": "amount", "value": "8.00", "reason": "loyalty"}), 200)
    view = stored(clinic, invoice_id)
    # 80.00 exempt + 2 x 40.00 at 19% less 10%: nets 80.00 and 72.00; 8.00 off shared 4.21 / 3.79; tax 19% of 68.21.
    assert (view["net"], view["tax"], view["total"]) == ("144.00", "12.96", "156.96")
    answer = expect(clinic.client.post(f"/invoices/{invoice_id}/issue", headers=admin.headers), 200)
    assert answer["number"].startswith(f"{clinic.clock.now.year}-")
    again = expect(clinic.client.post(f"/invoices/{invoice_id}/issue", headers=admin.headers), 200)
    assert again["number"] == answer["number"]
    expect(clinic.client.post(f"/invoices/{invoice_id}/lines", headers=admin.headers, json={"service_code": "ecg"}), 409, "invalid_transition")
    expect(clinic.client.delete(f"/invoices/{invoice_id}/discount", headers=admin.headers), 409)


def test_drafting_refuses_what_it_cannot_bill(desk: tuple[Clinic, User, User]) -> None:
    clinic, admin, patient = desk
    post = clinic.client.post
    expect(post("/invoices", headers=admin.headers, json={"patient_id": str(uuid4())}), 422, field="patient_id")
    expect(post("/invoices", headers=admin.headers, json={"patient_id": patient.profile_id, "lines": [{"service_code": "nope"}]}), 422, "unknown_service")
    usd = {"patient_id": patient.profile_id, "currency": "USD", "lines": [{"service_code": "ecg"}]}
    expect(post("/invoices", headers=admin.headers, json=usd), 422, "mixed_currencies", field="currency")
    expect(post("/invoices", headers=admin.headers, json={"patient_id": patient.profile_id, "lines": [{"service_code": "ecg", "quantity": "0"}]}), 422)
    expect(post("/invoices", headers=admin.headers, json={"patient_id": patient.profile_id, "total": "1.00"}), 422)
    expect(post("/invoices", headers=patient.headers, json={"patient_id": patient.profile_id}), 403)
    expect(post("/invoices", json={"patient_id": patient.profile_id}), 401)
    empty = drafted(clinic, admin, patient, {"service_code": "ecg"})
    line_id = stored(clinic, empty)["lines"][0]["line_id"]
    too_much = {"kind": "amount", "value": "40.01", "reason": "too generous"}
    expect(clinic.client.put(f"/invoices/{empty}/lines/{line_id}/discount", headers=admin.headers, json=too_much), 422, field="value")
    expect(clinic.client.put(f"/invoices/{empty}/lines/{line_id}/discount", headers=patient.headers, json={**too_much, "value": "1"}), 403)
    expect(clinic.client.delete(f"/invoices/{empty}/lines/{line_id}", headers=admin.headers), 200)
    expect(clinic.client.post(f"/invoices/{empty}/issue", headers=admin.headers), 409, "invalid_transition")
    expect(clinic.client.post(f"/invoices/{uuid4()}/issue", headers=admin.headers), 404)


def test_payments_partial_full_idempotent_and_no_overpayment(desk: tuple[Clinic, User, User]) -> None:
    clinic, admin, patient = desk
    invoice_id, _ = issued(clinic, admin, patient, {"service_code": "visit"})
    pay = lambda body: clinic.client.post(f"/invoices/{invoice_id}/payments", headers=admin.headers, json=body)  # noqa: E731
    first = expect(pay(payment("card-1", "30.00")), 201)
    assert first["balance"] == "50.00"
    repeated = expect(pay(payment("card-1", "30.00")), 200)
    assert repeated["payment_id"] == first["payment_id"]
    expect(pay(payment("card-1", "31.00")), 409, "payment_reference_reused")
    over = expect(pay(payment("card-2", "50.01")), 409, "overpayment")
    assert over["current"]["balance"] == "50.00"
    expect(pay(payment("card-2", "50.00", currency="USD")), 422, "mixed_currencies")
    expect(pay(payment("card-2", "10.001")), 422, field="amount")
    expect(pay({**payment("claim-1", "10.00"), "method": "insurance"}), 422, field="payer")
    expect(pay({**payment("claim-1", "10.00"), "method": "insurance", "payer": "Acme Health", "claim_reference": "CL-77"}), 201)
    credit = expect(pay(payment("card-3", "45.00", as_account_credit=True)), 201)
    assert credit["balance"] == "-5.00"
    assert stored(clinic, invoice_id)["status"] == "paid"
    other, _ = issued(clinic, admin, patient, {"service_code": "visit"})
    expect(clinic.client.post(f"/invoices/{other}/payments", headers=admin.headers, json=payment("card-1", "30.00")), 409, "payment_reference_reused")
    expect(clinic.client.post(f"/invoices/{other}/payments", headers=patient.headers, json=payment("card-9", "1.00")), 403)
    expect(clinic.client.post(f"/invoices/{uuid4()}/payments", headers=admin.headers, json=payment("card-9", "1.00")), 404)
    expect(clinic.client.post(f"/invoices/{other}/payments", json=payment("card-9", "1.00")), 401)


def test_refunds_credit_notes_void_and_write_off(desk: tuple[Clinic, User, User]) -> None:
    clinic, admin, patient = desk
    post = clinic.client.post
    invoice_id, number = issued(clinic, admin, patient)
    expect(post(f"/invoices/{invoice_id}/payments", headers=admin.headers, json=payment(f"r-{uuid4()}", "100.00")), 201)
    expect(post(f"/invoices/{invoice_id}/refunds", headers=admin.headers, json={"amount": "100.01", "method": "card", "reason": "too much"}), 409, "refund_exceeds_paid")
    expect(post(f"/invoices/{invoice_id}/refunds", headers=admin.headers, json={"amount": "20.00", "method": "card"}), 422, field="reason")
    expect(post(f"/invoices/{invoice_id}/refunds", headers=admin.headers, json={"amount": "20.00", "method": "cash", "reason": "goodwill"}), 200)
    expect(post(f"/invoices/{invoice_id}/void", headers=admin.headers, json={"reason": "duplicate"}), 409, "invalid_transition")
    ecg_line = stored(clinic, invoice_id)["lines"][1]["line_id"]
    note = expect(post(f"/invoices/{invoice_id}/credit-notes", headers=admin.headers, json={"reason": "one ECG not done", "lines": [{"line_id": ecg_line, "quantity": "1"}]}), 201)
    assert note["number"].startswith("CN-") and note["total"] == "47.60"
    expect(post(f"/invoices/{invoice_id}/credit-notes", headers=admin.headers, json={"reason": "again", "lines": [{"line_id": ecg_line, "quantity": "2"}]}), 409, "credit_exceeds_invoice")
    expect(post(f"/invoices/{invoice_id}/credit-notes", headers=admin.headers, json={"reason": "unknown", "lines": [{"line_id": "nope", "quantity": "1"}]}), 422, field="line_id")
    expect(post(f"/invoices/{invoice_id}/credit-notes", headers=patient.headers, json={"reason": "mine"}), 403)
    view = stored(clinic, invoice_id)
    assert view["number"] == number
    assert view["balance"] == "47.60"  # 175.20 charged - 100.00 paid + 20.00 refunded - 47.60 credited
    expect(post(f"/invoices/{invoice_id}/write-off", headers=admin.headers, json={"reason": "uncollectable"}), 200)
    assert stored(clinic, invoice_id)["status"] == "written_off"
    expect(post(f"/invoices/{invoice_id}/write-off", headers=admin.headers, json={"reason": "uncollectable"}), 200)
    unpaid, _ = issued(clinic, admin, patient)
    expect(post(f"/invoices/{unpaid}/void", headers=admin.headers, json={"reason": "x"}), 422, field="reason")
    expect(post(f"/invoices/{unpaid}/void", headers=patient.headers, json={"reason": "mine now"}), 403)
    expect(post(f"/invoices/{unpaid}/void", headers=admin.headers, json={"reason": "issued twice"}), 200)
    assert stored(clinic, unpaid)["status"] == "void"
    expect(post(f"/invoices/{unpaid}/payments", headers=admin.headers, json=payment(f"r-{uuid4()}", "1.00")), 409, "invalid_transition")
    expect(post(f"/invoices/{uuid4()}/write-off", headers=admin.headers, json={"reason": "unknown"}), 404)


def test_an_invoice_has_a_history_for_auditors_and_its_patient_and_is_sealed_with_the_patients_key(desk: tuple[Clinic, User, User]) -> None:
    from infrastructure.encryption import sealed_by

    clinic, admin, patient = desk
    invoice_id, _ = issued(clinic, admin, patient, {"service_code": "visit"})
    expect(clinic.client.post(f"/invoices/{invoice_id}/payments", headers=admin.headers, json=payment(f"r-{uuid4()}", "80.00")), 201)
    auditor = clinic.staff(admin, "auditor")
    history = expect(clinic.client.get(f"/audit/records/{invoice_id}/history", headers=auditor.headers), 200)
    assert [row["event_type"] for row in history["items"]] == ["Invoice.Drafted", "Invoice.LineAdded", "Invoice.Issued", "Invoice.PaymentRecorded"]
    assert history["items"][-1]["actor_user_id"] == admin.account_id
    own = expect(clinic.client.get(f"/audit/records/{invoice_id}/history", headers=patient.headers), 200)
    assert own["total"] == 4
    stranger = clinic.patient()
    expect(clinic.client.get(f"/audit/records/{invoice_id}/history", headers=stranger.headers), 404)
    recorder = clinic.medledger.store.recorder
    stored = [n for n in recorder.select_notifications(start=1, limit=1_000_000) if str(n.originator_id) == invoice_id]
    assert len(stored) == 4 and {sealed_by(n.state) for n in stored} == {patient.profile_id}


WRITES = [
    ("PUT", "/billing/tax-categories/reduced", {"rate": "7"}),
    ("PUT", "/billing/services/xray", {**ECG, "name": "X-ray"}),
    ("DELETE", "/billing/services/xray", None),
    ("POST", "/invoices", {"patient_id": "{patient}"}),
    ("POST", "/invoices/{invoice}/lines", {"service_code": "ecg"}),
    ("DELETE", "/invoices/{invoice}/lines/{line}", None),
    ("PUT", "/invoices/{invoice}/discount", {"kind": "percent", "value": "5", "reason": "promo"}),
    ("DELETE", "/invoices/{invoice}/discount", None),
    ("PUT", "/invoices/{invoice}/lines/{line}/discount", {"kind": "percent", "value": "5", "reason": "promo"}),
    ("DELETE", "/invoices/{invoice}/lines/{line}/discount", None),
    ("POST", "/invoices/{invoice}/issue", None),
    ("POST", "/invoices/{invoice}/credit-notes", {"reason": "wrong"}),
    ("POST", "/invoices/{invoice}/payments", payment("guard-1", "1.00")),
    ("POST", "/invoices/{invoice}/refunds", {"amount": "1.00", "method": "cash", "reason": "asked"}),
    ("POST", "/invoices/{invoice}/void", {"reason": "mistake"}),
    ("POST", "/invoices/{invoice}/write-off", {"reason": "uncollectable"}),
]


def test_every_billing_write_is_for_admins_and_hides_unknown_invoices(desk: tuple[Clinic, User, User]) -> None:
    clinic, admin, patient = desk
    invoice_id = drafted(clinic, admin, patient)
    line_id = stored(clinic, invoice_id)["lines"][0]["line_id"]
    others = {role: clinic.member(admin, role) for role in ("doctor", "auditor", "analyst")} | {"patient": patient}
    wrong: list[str] = []
    for method, template, payload in WRITES:
        def send(user: User | None, invoice: str = invoice_id, template: str = template, method: str = method, payload: Any = payload) -> Any:
            path = template.format(invoice=invoice, line=line_id, patient=patient.profile_id)
            body = {k: (v.format(patient=patient.profile_id) if isinstance(v, str) else v) for k, v in payload.items()} if payload else None
            return clinic.client.request(method, path, headers=user.headers if user else {}, json=body)

        if (status := send(None).status_code) != 401:
            wrong.append(f"{method} {template} anonymous: {status}")
        for role, user in others.items():
            if (status := send(user).status_code) != 403:
                wrong.append(f"{method} {template} as {role}: {status}")
        if "{invoice}" in template and (status := send(admin, str(uuid4())).status_code) != 404:
            wrong.append(f"{method} {template} unknown invoice: {status}")
    assert wrong == []
    expect(clinic.client.put("/billing/services/xray", headers=admin.headers, json={**ECG, "name": "X-ray"}), 200)
    expect(clinic.client.delete("/billing/services/xray", headers=admin.headers), 200)
    assert "xray" not in {s["code"] for s in expect(clinic.client.get("/billing/price-list", headers=admin.headers), 200)["services"]}
    expect(clinic.client.delete("/billing/services/nothing", headers=admin.headers), 422, "unknown_service")
    expect(clinic.client.put(f"/invoices/{invoice_id}/lines/{line_id}/discount", headers=admin.headers, json={"kind": "amount", "value": "5.00", "reason": "promo"}), 200)
    expect(clinic.client.delete(f"/invoices/{invoice_id}/lines/{line_id}/discount", headers=admin.headers), 200)
    expect(clinic.client.put(f"/invoices/{invoice_id}/discount", headers=admin.headers, json={"kind": "percent", "value": "5", "reason": "promo"}), 200)
    expect(clinic.client.delete(f"/invoices/{invoice_id}/discount", headers=admin.headers), 200)
    view = stored(clinic, invoice_id)
    assert view["discount"] is None and view["lines"][0]["discount"] is None and view["invoice_discount"] == "0.00"
