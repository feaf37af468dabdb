"""Invoices saved straight into the event store, as the billing commands would save them, for the read-side tests."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

from domain.invoice import Discount, DiscountKind, DocumentNumbers, Invoice, Line, Method, Origin, Series
from domain.shared import Cause, Role

CAUSE = Cause("billing-tests", Role.ADMIN, "billing-tests")


def line(line_id: str, unit_price: str, quantity: str = "1", tax_rate: str = "20", discount: str | None = None) -> Line:
    cut = Discount.of(DiscountKind.PERCENT, discount, "loyal patient", "EUR") if discount else None
    return Line(line_id, line_id, f"Service {line_id}", Decimal(quantity), Decimal(unit_price), Decimal(tax_rate), cut)


def drafted(patient_id: str, *lines: Line, doctor_id: str | None = None, currency: str = "EUR") -> Invoice:
    return Invoice.draft(uuid4(), patient_id, currency, Origin.MANUAL, CAUSE, doctor_id=doctor_id, lines=tuple((x, currency) for x in lines))


def _numbers(store: Any, series: Series, year: int, clinic: str) -> DocumentNumbers:
    stream_id = uuid5(NAMESPACE_URL, f"medledger-tests/{clinic}/{series.value}/{year}")
    return store.find(DocumentNumbers, stream_id) or DocumentNumbers(id=stream_id, clinic=clinic, series=series.value, year=year)


def issued(store: Any, invoice: Invoice, at: datetime, clinic: str = "tests") -> Invoice:
    """Issues the invoice under the next number of its year and saves both."""
    numbers = _numbers(store, Series.INVOICE, at.year, clinic)
    invoice.issue(numbers.take(str(invoice.id), CAUSE), at, at.date() + timedelta(days=30), CAUSE)
    store.save(invoice, numbers)
    return invoice


def paid(store: Any, invoice: Invoice, amount: str, at: datetime, method: Method = Method.CARD, **extra: Any) -> str:
    payment_id = invoice.record_payment(str(uuid4()), f"ref-{uuid4().hex}", method, Decimal(amount), invoice.currency, at, CAUSE, **extra)
    store.save(invoice)
    return payment_id


def refunded(store: Any, invoice: Invoice, amount: str, at: datetime, method: Method = Method.CARD) -> None:
    invoice.refund(str(uuid4()), Decimal(amount), method, "returned the service", at, CAUSE)
    store.save(invoice)


def credited(store: Any, invoice: Invoice, wanted: dict[str, Decimal] | None, at: datetime, clinic: str = "tests") -> str:
    numbers = _numbers(store, Series.CREDIT_NOTE, at.year, clinic)
    lines = invoice.credit_lines(wanted)
    note_id = str(uuid4())
    invoice.credit(note_id, numbers.take(note_id, CAUSE), lines, "billed in error", at, CAUSE)
    store.save(invoice, numbers)
    return note_id


def midday(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.utc)
