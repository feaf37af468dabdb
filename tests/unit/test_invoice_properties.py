"""Properties of invoice money: for any lines, discounts, payments, refunds and credit notes, every total adds up
to the minor unit, the balance is charges - payments + refunds - credits, refunds never exceed payments, and every
amount follows the documented rounding rule."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.invoice import Discount, DiscountKind, Invoice, Line, Method, Origin
from domain.money import MINOR_UNITS
from domain.shared import SYSTEM, DomainError

NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)
CURRENCIES = ["EUR", "JPY", "KWD"]


def cents(code: str, low: int = 0, high: int = 100_000_00) -> st.SearchStrategy[Decimal]:
    step = Decimal(1).scaleb(-MINOR_UNITS[code])
    return st.integers(low, high).map(lambda n: (Decimal(n) * step).quantize(step))


@st.composite
def invoices(draw: st.DrawFn) -> tuple[Invoice, str]:
    code = draw(st.sampled_from(CURRENCIES))
    lines = []
    for n in range(draw(st.integers(1, 6))):
        quantity = Decimal(draw(st.integers(1, 5000))) / Decimal(draw(st.sampled_from([1, 10, 1000])))
        rate = Decimal(draw(st.integers(0, 2500))) / 100
        lines.append((Line(f"L{n}", "svc", "Service", quantity, draw(cents(code, 0, 50_000)), rate), code))
    invoice = Invoice.draft(uuid4(), "patient", code, Origin.MANUAL, SYSTEM, lines=tuple(lines))
    for line, _ in lines:
        if draw(st.booleans()):
            kind = draw(st.sampled_from(list(DiscountKind)))
            value = Decimal(draw(st.integers(1, 10000))) / 100 if kind is DiscountKind.PERCENT else draw(cents(code, 1, 1000))
            try:
                invoice.discount_line(line.line_id, Discount(kind, value, "promo"), SYSTEM)
            except DomainError:
                pass
    if draw(st.booleans()):
        invoice.discount_invoice(Discount(DiscountKind.PERCENT, Decimal(draw(st.integers(1, 10000))) / 100, "promo"), SYSTEM)
    return invoice, code


def half_up(amount: Decimal, code: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[code]), rounding=ROUND_HALF_UP)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoices())
def test_totals_add_up_and_follow_the_rounding_rule(drawn: tuple[Invoice, str]) -> None:
    invoice, code = drawn
    totals = invoice.totals()
    for p in totals.lines:
        assert p.gross == half_up(p.line.quantity * p.line.unit_price, code)
        assert p.net == p.gross - p.discount and 0 <= p.discount <= p.gross
        assert p.taxable == p.net - p.invoice_discount and p.taxable >= 0
        assert p.tax == half_up(p.taxable * p.line.tax_rate / 100, code)
    assert totals.subtotal == sum(p.gross for p in totals.lines)
    assert totals.invoice_discount == sum(p.invoice_discount for p in totals.lines)
    assert totals.net == totals.subtotal - totals.line_discounts - totals.invoice_discount
    assert totals.total == totals.net + totals.tax
    by_rate = totals.taxes()
    assert sum(Decimal(t["tax"]) for t in by_rate) == totals.tax
    assert sum(Decimal(t["taxable"]) for t in by_rate) == totals.net


Step = tuple[str, int, int]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoices(), st.lists(st.tuples(st.sampled_from(["pay", "overpay", "refund", "credit", "credit_all"]), st.integers(0, 10**9), st.integers(0, 5)), max_size=12))
def test_the_balance_is_charges_less_payments_plus_refunds_less_credits(drawn: tuple[Invoice, str], steps: list[Step]) -> None:
    invoice, code = drawn
    invoice.issue("2026-000001", NOW, date(2027, 1, 1), SYSTEM)
    step = Decimal(1).scaleb(-MINOR_UNITS[code])
    for n, (kind, size, which) in enumerate(steps):
        amount = (Decimal(size % 2_000_000 + 1) * step).quantize(step)
        try:
            if kind in ("pay", "overpay"):
                invoice.record_payment(f"p{n}", f"r{n}", Method.CARD, amount, code, NOW, SYSTEM, as_account_credit=kind == "overpay")
            elif kind == "refund":
                invoice.refund(f"f{n}", amount, Method.CARD, "asked", NOW, SYSTEM)
            elif kind == "credit":
                priced = invoice.totals().lines[which % len(invoice.lines)]
                invoice.credit(f"c{n}", f"CN-{n}", invoice.credit_lines({priced.line.line_id: priced.line.quantity / 2}), "fix", NOW, SYSTEM)
            else:
                invoice.credit(f"c{n}", f"CN-{n}", invoice.credit_lines(None), "fix", NOW, SYSTEM)
        except DomainError:
            pass
        total = invoice.totals().total
        assert invoice.balance == total - invoice.paid + invoice.refunded - invoice.credited
        assert invoice.refunded <= invoice.paid
        assert 0 <= invoice.credited <= total
        for payment in invoice.payments.values():
            assert payment.amount == payment.amount.quantize(step)
        if invoice.balance < 0:
            overpaid = sum(p.account_credit for p in invoice.payments.values())
            assert invoice.credit_notes or -invoice.balance <= overpaid
    if invoice.credited == invoice.totals().total and invoice.credit_notes:
        credited_tax = sum(c.tax for note in invoice.credit_notes for c in note.lines)
        assert credited_tax == invoice.totals().tax
