"""Billing reads over HTTP: invoice search and one invoice, a patient's statement, receivables, cash-up, CSV exports
and PDFs; who may read what (patients their own, doctors the invoices naming them, admins and auditors all, analysts
nothing), and every invoice shown is in the patient's read log."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from api.app import create_app
from api.billing_schemas import InvoicePublic
from domain.invoice import Invoice, Method
from e2e_helpers import Clinic, User, expect
from infrastructure.bootstrap import bootstrap
from infrastructure.settings import Settings
from tests.billing_seed import credited, drafted, issued, line, paid, refunded
from tests.conftest import POSTGRES_URL, TEST_LOG_KEY, TEST_MASTER_KEY, TEST_SECRET, FakeClock, drop_schema, need_postgres


@dataclass
class Books:
    clinic: Clinic
    admin: User
    auditor: User
    analyst: User
    doctor: User
    other_doctor: User
    patient: User
    other_patient: User
    invoice: Invoice
    other_invoice: Invoice
    draft: Invoice
    credit_note_id: str
    after: int

    def get(self, user: User | None, path: str, **params: Any):
        headers = user.headers if user else {}
        return self.clinic.client.get(path, headers=headers, params={"after": self.after, **params})

    def read(self, user: User, path: str, **params: Any) -> Any:
        return expect(self.get(user, path, **params), 200)


def open_books(clinic: Clinic) -> Books:
    admin = clinic.admin()
    doctor, other_doctor = clinic.doctor(admin, availability=None), clinic.doctor(admin, availability=None)
    patient, other_patient = clinic.patient(), clinic.patient()
    store, now = clinic.medledger.store, clinic.clock.now
    invoice = drafted(patient.profile_id, line("visit", "100.00", discount="10"), line("ecg", "45.50", tax_rate="0"), doctor_id=doctor.profile_id)
    issued(store, invoice, now - timedelta(days=40))
    paid(store, invoice, "50.00", now - timedelta(minutes=30), Method.CARD)
    refunded(store, invoice, "10.00", now - timedelta(minutes=20), Method.CARD)
    note = credited(store, invoice, {"ecg": Decimal(1)}, now - timedelta(minutes=10))
    other = issued(store, drafted(other_patient.profile_id, line("visit", "80.00"), doctor_id=other_doctor.profile_id), now - timedelta(days=5))
    draft = drafted(patient.profile_id, line("visit", "70.00"), doctor_id=doctor.profile_id)
    store.save(draft)
    return Books(
        clinic, admin, clinic.staff(admin, "auditor"), clinic.staff(admin, "analyst"), doctor, other_doctor, patient, other_patient,
        invoice, other, draft, note, clinic.latest(),
    )  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def books(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Books]:
    """One clinic per backend for the whole module: the tests only read it."""
    values: dict[str, Any] = {
        "data_dir": tmp_path_factory.mktemp("billing-reads"),
        "jwt_secret": TEST_SECRET,
        "log_signing_key": TEST_LOG_KEY,
        "master_key": TEST_MASTER_KEY,
        "password_hashing": "fast",
        "projector_poll_seconds": 0.01,
        "access_token_minutes": 120,
        "clinic_name": "Linden Family Practice",
        "clinic_timezone": "Europe/Berlin",
    }
    schema = None
    if request.param == "postgres":
        need_postgres()
        schema = f"test_{uuid4().hex[:16]}"
        values.update(database_url=POSTGRES_URL, database_schema=schema, pool_size=5)
    clock = FakeClock()
    system = bootstrap(Settings(**values), clock=clock)
    try:
        system.start_projector()
        with TestClient(create_app(system)) as client:
            yield open_books(Clinic(client, system, clock))
    finally:
        system.close()
        if schema is not None:
            drop_schema(schema)


def ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


def test_each_caller_finds_the_invoices_they_may_read(books: Books) -> None:
    mine, theirs, draft = str(books.invoice.id), str(books.other_invoice.id), str(books.draft.id)
    assert ids(books.read(books.patient, "/invoices")) == {mine, draft}
    assert ids(books.read(books.patient, "/invoices", patient_id=books.other_patient.profile_id)) == set()
    assert ids(books.read(books.doctor, "/invoices")) == {mine, draft}
    assert ids(books.read(books.other_doctor, "/invoices", doctor_id=books.doctor.profile_id)) == set()
    for staff in (books.admin, books.auditor):
        assert ids(books.read(staff, "/invoices", patient_id=books.other_patient.profile_id)) == {theirs}
    assert ids(books.read(books.admin, "/invoices", number=books.invoice.number)) == {mine}
    assert ids(books.read(books.admin, "/invoices", patient_id=books.patient.profile_id, status="draft")) == {draft}
    issued_on = books.invoice.issued_at.date().isoformat()
    assert ids(books.read(books.admin, "/invoices", patient_id=books.patient.profile_id, **{"from": issued_on, "to": issued_on})) == {mine}
    expect(books.get(books.analyst, "/invoices"), 403, "forbidden")
    expect(books.get(None, "/invoices"), 401)
    expect(books.get(books.admin, "/invoices", status="unpaid"), 422, field="status")


def test_one_invoice_is_its_own_view_for_those_who_may_read_it(books: Books) -> None:
    path = f"/invoices/{books.invoice.id}"
    shown = books.read(books.patient, path)
    stored = books.clinic.medledger.store.find(Invoice, books.invoice.id).view()
    assert shown == InvoicePublic.model_validate(stored).model_dump(mode="json")
    assert (shown["total"], shown["balance"], shown["status"]) == ("153.50", "68.00", "partially_paid")
    for caller in (books.doctor, books.admin, books.auditor):
        assert books.read(caller, path)["id"] == str(books.invoice.id)
    for stranger in (books.other_patient, books.other_doctor):
        expect(books.get(stranger, path), 404, "not_found")
    expect(books.get(books.admin, f"/invoices/{uuid4()}"), 404, "not_found")
    expect(books.get(books.analyst, path), 403)
    expect(books.get(None, path), 401)
    expect(books.get(books.admin, path, after=-1), 422, field="after")


def test_every_invoice_shown_is_in_the_patients_read_log(books: Books) -> None:
    books.read(books.auditor, f"/invoices/{books.invoice.id}")
    log = books.clinic.read(books.patient, f"/patients/{books.patient.profile_id}/reads", after=books.clinic.latest(), page_size=100)
    shown = {(read["shown"], read["record_id"], read["basis"]) for read in log["items"]}
    assert ("invoice", str(books.invoice.id), "audit") in shown


def test_a_statement_balances_the_patients_account(books: Books) -> None:
    path = f"/patients/{books.patient.profile_id}/statement"
    answer = books.read(books.patient, path)
    assert [invoice["id"] for invoice in answer["invoices"]] == [str(books.invoice.id)]
    [eur] = answer["totals"]
    # 153.50 charged - 50 paid + 10 refunded - 45.50 credited
    assert (eur["charged"], eur["paid"], eur["refunded"], eur["credited"], eur["balance"]) == ("153.50", "50.00", "10.00", "45.50", "68.00")
    assert [n["invoice_number"] for n in answer["credit_notes"]] == [books.invoice.number]
    assert books.read(books.auditor, path)["totals"] == answer["totals"]
    assert books.read(books.doctor, path)["totals"] == answer["totals"]
    expect(books.get(books.other_doctor, path), 404)
    expect(books.get(books.other_patient, path), 404)
    expect(books.get(books.admin, f"/patients/{uuid4()}/statement"), 404)
    expect(books.get(books.analyst, path), 403)
    expect(books.get(None, path), 401)
    expect(books.get(books.patient, path, after=-1), 422, field="after")


def test_receivables_age_what_is_owed_for_admins_and_auditors(books: Books) -> None:
    answer = books.read(books.auditor, "/billing/receivables", bucket="31-60")
    eur = next(c for c in answer["currencies"] if c["currency"] == "EUR")
    by_bucket = {b["bucket"]: b for b in eur["buckets"]}
    assert Decimal(by_bucket["31-60"]["amount"]) >= Decimal("68.00") and Decimal(by_bucket["0-30"]["amount"]) >= Decimal("96.00")
    assert str(books.invoice.id) in ids(answer["invoices"])
    later = (books.clinic.clock.now.date() + timedelta(days=60)).isoformat()
    assert str(books.invoice.id) in ids(books.read(books.admin, "/billing/receivables", as_of=later, bucket="90+")["invoices"])
    for caller in (books.patient, books.doctor, books.analyst):
        expect(books.get(caller, "/billing/receivables"), 403)
    expect(books.get(None, "/billing/receivables"), 401)
    expect(books.get(books.admin, "/billing/receivables", bucket="0-29"), 422, field="bucket")


def test_the_cash_up_sums_the_days_takings_by_method(books: Books) -> None:
    day = (books.clinic.clock.now - timedelta(minutes=30)).date()
    answer = books.read(books.admin, "/billing/cash-up", date=day.isoformat(), timezone="UTC")
    card = next(m for c in answer["currencies"] if c["currency"] == "EUR" for m in c["methods"] if m["method"] == "card")
    assert card["payments"] >= 1 and card["refunds"] >= 1
    assert Decimal(card["net"]) == Decimal(card["paid"]) - Decimal(card["refunded"])
    assert books.read(books.auditor, "/billing/cash-up")["timezone"] == "Europe/Berlin"
    for caller in (books.patient, books.doctor, books.analyst):
        expect(books.get(caller, "/billing/cash-up"), 403)
    expect(books.get(None, "/billing/cash-up"), 401)
    expect(books.get(books.admin, "/billing/cash-up", timezone="Mars/Olympus"), 422, field="timezone")


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_exports_match_the_json(books: Books) -> None:
    filters = {"patient_id": books.patient.profile_id}
    exported = books.get(books.admin, "/invoices.csv", **filters)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    listed = books.read(books.admin, "/invoices", **filters)["items"]
    assert [(r["id"], r["number"], r["status"], r["total"], r["balance"]) for r in rows(exported.text)] == [
        (i["id"], i["number"] or "", i["status"], i["total"], i["balance"]) for i in listed
    ]
    payments = books.get(books.auditor, "/payments.csv", **filters)
    assert payments.text.splitlines()[0] == "kind,id,invoice_id,invoice_number,patient_id,doctor_id,method,amount,currency,at"
    assert sorted((r["kind"], r["amount"]) for r in rows(payments.text)) == [("payment", "50.00"), ("refund", "10.00")]
    assert rows(books.get(books.admin, "/payments.csv", kind="refund", **filters).text)[0]["invoice_number"] == books.invoice.number
    for caller in (books.patient, books.doctor, books.analyst):
        expect(books.get(caller, "/invoices.csv"), 403)
        expect(books.get(caller, "/payments.csv"), 403)
    expect(books.get(None, "/payments.csv"), 401)
    expect(books.get(books.admin, "/payments.csv", kind="gift"), 422, field="kind")
    expect(books.get(books.admin, "/invoices.csv", **{"from": "2026-02-30"}), 422, field="from")


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_an_issued_invoice_and_its_credit_note_are_pdfs(books: Books) -> None:
    answer = books.get(books.patient, f"/invoices/{books.invoice.id}/pdf")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    text = pdf_text(answer.content)
    assert books.invoice.number in text and "153.50" in text and "Linden Family Practice" in text
    note = next(n for n in books.invoice.view()["credit_notes"] if n["credit_note_id"] == books.credit_note_id)
    credit = books.get(books.admin, f"/invoices/{books.invoice.id}/credit-notes/{books.credit_note_id}/pdf")
    assert credit.status_code == 200
    text = pdf_text(credit.content)
    assert note["number"] in text and books.invoice.number in text and "45.50" in text
    refused = expect(books.get(books.admin, f"/invoices/{books.draft.id}/pdf"), 409)
    assert refused["current"]["status"] == "draft"
    expect(books.get(books.other_patient, f"/invoices/{books.invoice.id}/pdf"), 404)
    expect(books.get(books.admin, f"/invoices/{books.invoice.id}/credit-notes/{uuid4()}/pdf"), 404)
    expect(books.get(books.analyst, f"/invoices/{books.invoice.id}/pdf"), 403)
    expect(books.get(None, f"/invoices/{books.invoice.id}/pdf"), 401)
    expect(books.get(books.patient, f"/invoices/{books.invoice.id}/pdf", after="soon"), 422, field="after")


def test_what_the_billing_commands_write_is_read_back_after_their_position(books: Books) -> None:
    clinic, admin, patient = books.clinic, books.admin, books.clinic.patient()

    def post(path: str, payload: Any = None, status: int = 200) -> dict[str, Any]:
        return expect(clinic.client.request("PUT" if path.startswith("/billing/") else "POST", path, headers=admin.headers, json=payload), status)

    post("/billing/tax-categories/reduced", {"rate": "7"})
    post("/billing/services/physio", {"name": "Physiotherapy", "kind": "procedure", "price": "60.00", "currency": "EUR", "tax_category": "reduced"})
    invoice_id = post("/invoices", {"patient_id": patient.profile_id, "lines": [{"service_code": "physio", "quantity": "2"}]}, 201)["id"]
    number = post(f"/invoices/{invoice_id}/issue")["number"]
    paid_at = post(f"/invoices/{invoice_id}/payments", {"reference": f"r-{uuid4().hex}", "method": "cash", "amount": "128.40", "currency": "EUR"}, 201)

    shown = books.read(patient, f"/invoices/{invoice_id}", after=paid_at["position"])
    assert (shown["number"], shown["status"], shown["total"], shown["balance"]) == (number, "paid", "128.40", "0.00")
    assert books.read(patient, f"/patients/{patient.profile_id}/statement", after=paid_at["position"])["totals"][0]["paid"] == "128.40"
    assert number in pdf_text(books.get(patient, f"/invoices/{invoice_id}/pdf", after=paid_at["position"]).content)
