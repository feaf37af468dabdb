"""The billing read models: each invoice's own view at each event, its payments, refunds and credit notes as rows,
erased with the patient; and the queries: search, a patient's statement, receivables by age, the day's cash-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from domain.invoice import Invoice, Method
from domain.price_list import PriceList, ServiceKind
from infrastructure.bootstrap import Medledger
from integration_helpers import open_patient, read_model_rows, running
from projections import billing
from projections.billing_tables import credit_notes, invoice_payments, invoices, price_list
from tests.billing_seed import CAUSE, credited, drafted, issued, line, midday, paid, refunded

DAY = date(2026, 3, 10)


@pytest.fixture(scope="module")
def system(module_system: Medledger) -> Medledger:
    return module_system


def project(m: Medledger) -> None:
    m.projection.run_once()


def rows(m: Medledger, table, invoice_id: str) -> list[dict]:
    with m.write_engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(table.c.invoice_id == invoice_id)).mappings()]


def invoice_row(m: Medledger, invoice_id: str) -> dict:
    with m.write_engine.connect() as conn:
        return dict(conn.execute(select(invoices).where(invoices.c.id == invoice_id)).mappings().one())


def test_the_row_is_the_invoices_view_at_each_event(system: Medledger) -> None:
    patient = open_patient(system.services)
    invoice = drafted(patient.profile_id, line("visit", "100.00"), line("ecg", "45.50", tax_rate="0"), doctor_id="doctor-1")
    system.store.save(invoice)
    project(system)
    assert invoice_row(system, str(invoice.id))["status"] == "draft"

    issued(system.store, invoice, midday(DAY))
    paid(system.store, invoice, "50.00", midday(DAY) + timedelta(hours=1), Method.CASH)
    refunded(system.store, invoice, "20.00", midday(DAY) + timedelta(hours=2), Method.CASH)
    note_id = credited(system.store, invoice, {"ecg": Decimal(1)}, midday(DAY) + timedelta(hours=3))
    project(system)

    stored = system.store.find(Invoice, invoice.id)
    row = invoice_row(system, str(invoice.id))
    assert row["document"] == stored.view()
    assert (row["status"], row["number"], row["version"], row["issue_date"]) == ("partially_paid", stored.number, stored.version, DAY)
    assert (row["total"], row["paid"], row["refunded"], row["credited"]) == (Decimal("165.50"), Decimal("50"), Decimal("20"), Decimal("45.50"))
    assert row["balance"] == Decimal("90.00") == stored.balance
    movements = sorted((r["kind"], r["method"], r["amount"], r["day"]) for r in rows(system, invoice_payments, str(invoice.id)))
    assert movements == [("payment", "cash", Decimal("50"), DAY), ("refund", "cash", Decimal("20"), DAY)]
    [note] = rows(system, credit_notes, str(invoice.id))
    assert (note["id"], note["invoice_number"], note["total"], note["patient_id"]) == (note_id, stored.number, Decimal("45.50"), patient.profile_id)


def test_a_rebuild_of_the_billing_read_models_reproduces_them(own_system: Medledger) -> None:
    m = own_system
    patient = open_patient(m.services)
    invoice = issued(m.store, drafted(patient.profile_id, line("a", "10.00"), line("b", "2.50", quantity="3")), midday(DAY))
    paid(m.store, invoice, "20.00", midday(DAY))
    refunded(m.store, invoice, "1.00", midday(DAY))
    credited(m.store, invoice, {"b": Decimal(1)}, midday(DAY))
    m.projection.run_once()
    live = {name: rows for name, rows in read_model_rows(m.write_engine).items() if name in ("invoices", "invoice_payments", "credit_notes")}

    m.projection.rebuild(["billing"])

    rebuilt = read_model_rows(m.write_engine)
    assert all(rebuilt[name] == rows for name, rows in live.items()) and live["invoice_payments"]


def test_search_finds_by_patient_doctor_status_number_and_issue_date_newest_first(system: Medledger) -> None:
    patient = open_patient(system.services)
    first = issued(system.store, drafted(patient.profile_id, line("a", "10.00"), doctor_id="doctor-2"), midday(date(2025, 1, 5)))
    second = issued(system.store, drafted(patient.profile_id, line("b", "20.00"), doctor_id="doctor-3"), midday(date(2025, 2, 5)))
    draft = drafted(patient.profile_id, line("c", "30.00"))
    system.store.save(draft)
    project(system)

    def ids(**filters) -> list[str]:
        with system.read_engine.connect() as conn:
            return [d["id"] for d in billing.search_invoices(conn, billing.InvoiceFilter(patient_id=patient.profile_id, **filters), 1, 20).items]

    assert ids() == [str(draft.id), str(second.id), str(first.id)]
    assert ids(doctor_id="doctor-2") == [str(first.id)]
    assert ids(status="draft") == [str(draft.id)]
    assert ids(number=second.number) == [str(second.id)]
    assert ids(issued_from=date(2025, 2, 5), issued_to=date(2025, 2, 5)) == [str(second.id)]
    assert ids(issued_to=date(2025, 2, 4)) == [str(first.id)]


def test_a_statement_balances_charges_payments_refunds_credits_and_write_offs(system: Medledger) -> None:
    patient = open_patient(system.services)
    at = midday(date(2025, 6, 1))
    owing = issued(system.store, drafted(patient.profile_id, line("a", "100.00", tax_rate="0")), at)
    paid(system.store, owing, "30.00", at)
    overpaid = issued(system.store, drafted(patient.profile_id, line("b", "50.00", tax_rate="0")), at)
    paid(system.store, overpaid, "70.00", at, as_account_credit=True)
    refunded(system.store, overpaid, "5.00", at)
    partly_credited = issued(system.store, drafted(patient.profile_id, line("c", "10.00", quantity="2", tax_rate="0")), at)
    credited(system.store, partly_credited, {"c": Decimal(1)}, at)
    written_off = issued(system.store, drafted(patient.profile_id, line("d", "8.00", tax_rate="0")), at)
    written_off.write_off_balance("cannot be collected", at, CAUSE)
    system.store.save(written_off)
    voided = issued(system.store, drafted(patient.profile_id, line("e", "99.00", tax_rate="0")), at)
    voided.void("issued twice", at, CAUSE)
    system.store.save(voided, drafted(patient.profile_id, line("f", "1.00")))
    project(system)

    with system.read_engine.connect() as conn:
        answer = billing.statement(conn, patient.profile_id)
    assert len(answer["invoices"]) == 5
    assert [t["currency"] for t in answer["totals"]] == ["EUR"]
    totals = answer["totals"][0]
    assert {k: totals[k] for k in ("charged", "paid", "refunded", "credited", "written_off")} == {
        "charged": "178.00", "paid": "100.00", "refunded": "5.00", "credited": "10.00", "written_off": "8.00",
    }
    # 178 - 100 + 5 - 10 - 8 = 65: 70 owed on the first invoice, 15 owed back on the second, 10 on the third
    assert (totals["balance"], totals["owed"], totals["account_credit"]) == ("65.00", "80.00", "15.00")
    assert sorted(p["amount"] for p in answer["payments"]) == ["30.00", "70.00"]
    assert [r["amount"] for r in answer["refunds"]] == ["5.00"]
    assert [(n["total"], n["invoice_number"]) for n in answer["credit_notes"]] == [("10.00", partly_credited.number)]


def test_the_cash_up_takes_the_days_payments_less_refunds_by_method_in_the_time_zone(system: Medledger) -> None:
    patient = open_patient(system.services)
    day = date(2024, 7, 15)
    berlin = ZoneInfo("Europe/Berlin")
    local = lambda hour, minute=0: datetime.combine(day, time(hour, minute), tzinfo=berlin)  # noqa: E731
    invoice = issued(system.store, drafted(patient.profile_id, line("a", "500.00", tax_rate="0")), local(8))
    paid(system.store, invoice, "100.00", local(0, 30), Method.CASH)  # 22:30 UTC the day before: Berlin's day all the same
    paid(system.store, invoice, "60.00", local(9), Method.CASH)
    paid(system.store, invoice, "200.00", local(10), Method.CARD)
    refunded(system.store, invoice, "25.00", local(23, 30), Method.CASH)
    paid(system.store, invoice, "40.00", local(23, 59) + timedelta(minutes=5), Method.CARD)  # the next day
    project(system)

    with system.read_engine.connect() as conn:
        answer = billing.cash_up(conn, day, berlin)
        in_utc = billing.cash_up(conn, day, ZoneInfo("UTC"))
    [eur] = answer["currencies"]
    assert eur["methods"] == [
        {"method": "card", "payments": 1, "paid": "200.00", "refunds": 0, "refunded": "0.00", "net": "200.00"},
        {"method": "cash", "payments": 2, "paid": "160.00", "refunds": 1, "refunded": "25.00", "net": "135.00"},
    ]
    assert (eur["payments"], eur["refunds"], eur["paid"], eur["refunded"], eur["net"]) == (3, 1, "360.00", "25.00", "335.00")
    # in UTC, 00:30 Berlin falls on the day before, and 00:04 Berlin the next day on this one
    assert in_utc["currencies"][0]["net"] == "275.00"


@pytest.fixture
def own_system(make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings("sqlite"), clock) as system:
        yield system


def test_receivables_age_by_days_since_the_issue_date_at_each_boundary(own_system: Medledger) -> None:
    m = own_system
    patient = open_patient(m.services)
    as_of = date(2026, 6, 30)
    ages = (0, 30, 31, 60, 61, 90, 91, 400)
    made = {age: issued(m.store, drafted(patient.profile_id, line("a", f"{age + 1}.00", tax_rate="0")), midday(as_of - timedelta(days=age))) for age in ages}
    paid(m.store, made[30], "31.00", midday(as_of))  # paid: owes nothing
    later = issued(m.store, drafted(patient.profile_id, line("a", "5.00", tax_rate="0")), midday(as_of + timedelta(days=1)))
    yen = issued(m.store, drafted(patient.profile_id, line("a", "1000", tax_rate="0"), currency="JPY"), midday(as_of))
    m.projection.run_once()

    with m.read_engine.connect() as conn:
        answer = billing.receivables(conn, as_of)
        oldest = billing.receivables(conn, as_of, bucket="90+", currency="EUR", page=1, page_size=1)
    eur, jpy = answer["currencies"][0], answer["currencies"][1]
    assert (eur["currency"], jpy["currency"]) == ("EUR", "JPY")
    assert eur["buckets"] == [
        {"bucket": "0-30", "count": 1, "amount": "1.00"},
        {"bucket": "31-60", "count": 2, "amount": "93.00"},
        {"bucket": "61-90", "count": 2, "amount": "153.00"},
        {"bucket": "90+", "count": 2, "amount": "493.00"},
    ]
    assert (eur["count"], eur["total"]) == (7, "740.00")
    assert (jpy["total"], jpy["buckets"][0]["amount"]) == ("1000", "1000")
    assert str(later.id) not in {d["id"] for d in billing.receivables(m.read_engine.connect(), as_of, bucket="0-30").get("invoices").items}
    assert (oldest["invoices"].total, [d["id"] for d in oldest["invoices"].items]) == (2, [str(made[400].id)])
    assert str(yen.id)


def test_an_erasure_deletes_the_patients_billing_rows_and_the_price_list_is_projected(own_system: Medledger) -> None:
    m = own_system
    patient = open_patient(m.services)
    invoice = issued(m.store, drafted(patient.profile_id, line("a", "10.00")), midday(DAY))
    paid(m.store, invoice, "5.00", midday(DAY))
    credited(m.store, invoice, None, midday(DAY))
    prices = PriceList(id=uuid4(), clinic=f"clinic-{uuid4().hex[:8]}")
    prices.set_tax_category("standard", "20", CAUSE)
    prices.set_service("visit", "Visit", ServiceKind.CONSULTATION, "80.00", "EUR", "standard", CAUSE)
    prices.set_service("ecg", "ECG", ServiceKind.TEST, "45.00", "EUR", "standard", CAUSE)
    prices.retire_service("ecg", CAUSE)
    m.store.save(prices)
    m.projection.run_once()
    with m.read_engine.connect() as conn:
        assert [(s["code"], s["price"], s["tax_rate"]) for s in billing.services(conn, prices.clinic)] == [("visit", "80.00", "20.00")]

    billing_projector = next(p for p in m.projection.projectors if p.name == "billing")
    with m.write_engine.begin() as conn:
        billing_projector.erase_patient(conn, type("Approved", (), {"patient_id": patient.profile_id})())
    assert rows(m, invoice_payments, str(invoice.id)) == rows(m, credit_notes, str(invoice.id)) == []
    with m.write_engine.connect() as conn:
        assert conn.execute(select(invoices).where(invoices.c.patient_id == patient.profile_id)).all() == []
        assert conn.execute(select(price_list)).all() != []

