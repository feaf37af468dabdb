"""The Invoice aggregate, the price list and document numbers: given events, when a command, then new events or a clear error."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal as D
from uuid import uuid4

import pytest

from domain.invoice import (
    CreditTooLargeError,
    Discount,
    DocumentNumbers,
    Invoice,
    Line,
    Method,
    Origin,
    OverpaymentError,
    PaymentReferenceReusedError,
    RefundTooLargeError,
    Series,
    Status,
)
from domain.money import CurrencyMismatchError, round_money, share_out
from domain.price_list import PriceList, ServiceKind
from domain.shared import SYSTEM, InvalidInputError, InvalidTransitionError

NOW = datetime(2026, 12, 2, 10, tzinfo=timezone.utc)


def line(price: str, qty: str = "1", rate: str = "0", line_id: str | None = None, code: str = "consultation") -> tuple[Line, str]:
    return Line(line_id or str(uuid4()), code, code.title(), D(qty), D(price), D(rate)), "EUR"


def drafted(*lines: tuple[Line, str], currency: str = "EUR") -> Invoice:
    return Invoice.draft(uuid4(), "patient-1", currency, Origin.MANUAL, SYSTEM, lines=lines)


def issued(*lines: tuple[Line, str]) -> Invoice:
    invoice = drafted(*(lines or (line("100.00"),)))
    invoice.issue("2026-000001", NOW, date(2027, 1, 1), SYSTEM)
    return invoice


def new_events(invoice: Invoice) -> list[str]:
    return [type(e).__name__ for e in invoice.collect_events()]


def pay(invoice: Invoice, amount: str, reference: str = "r1", **extra: object) -> str:
    return invoice.record_payment(f"p-{reference}", reference, Method.CASH, D(amount), "EUR", NOW, SYSTEM, **extra)  # type: ignore[arg-type]


# -- money --------------------------------------------------------------------------------------------------------


def test_rounding_is_half_away_from_zero_to_the_minor_unit_of_the_currency() -> None:
    assert round_money(D("0.125"), "EUR") == D("0.13")
    assert round_money(D("0.124999"), "EUR") == D("0.12")
    assert round_money(D("2.5"), "JPY") == D("3")
    assert round_money(D("1.0005"), "KWD") == D("1.001")


def test_sharing_out_gives_the_left_over_cents_to_the_largest_remainders_and_adds_up() -> None:
    assert share_out(D("0.10"), [D(1), D(1), D(1)], "EUR") == [D("0.04"), D("0.03"), D("0.03")]
    assert sum(share_out(D("10.00"), [D("3.33"), D("3.33"), D("3.34")], "EUR")) == D("10.00")


# -- drafting -----------------------------------------------------------------------------------------------------


def test_a_draft_records_drafted_and_a_line_per_priced_service_with_totals_worked_out() -> None:
    invoice = drafted(line("100.00"), line("10.33", qty="3", rate="19"))
    assert new_events(invoice) == ["Drafted", "LineAdded", "LineAdded"]
    totals = invoice.totals()
    assert (totals.subtotal, totals.tax, totals.total) == (D("130.99"), D("5.89"), D("136.88"))
    assert invoice.status is Status.DRAFT and invoice.balance == 0


def test_a_line_priced_in_another_currency_is_refused() -> None:
    invoice = drafted()
    with pytest.raises(CurrencyMismatchError) as refused:
        invoice.add_line(line("5.00")[0], "USD", SYSTEM)
    assert refused.value.details["field"] == "currency"
    assert invoice.collect_events()[-1].__class__.__name__ == "Drafted"


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        drafted(currency="XXX")


def test_a_unit_price_finer_than_the_minor_unit_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        drafted(line("10.001"))


def test_discounts_per_line_and_per_invoice_lower_the_taxable_amount_before_tax() -> None:
    first, second = line("100.00", rate="10"), line("50.00", rate="20")
    invoice = drafted(first, second)
    invoice.discount_line(first[0].line_id, Discount.of("percent", "10", "staff", "EUR"), SYSTEM)
    invoice.discount_invoice(Discount.of("amount", "14.00", "loyalty", "EUR"), SYSTEM)
    priced = invoice.totals().lines
    assert [p.net for p in priced] == [D("90.00"), D("50.00")]
    assert [p.invoice_discount for p in priced] == [D("9.00"), D("5.00")]
    assert [p.tax for p in priced] == [D("8.10"), D("9.00")]
    assert invoice.totals().total == D("143.10")


def test_a_discount_larger_than_what_it_discounts_or_without_a_reason_is_refused() -> None:
    only = line("10.00")
    invoice = drafted(only)
    with pytest.raises(InvalidInputError):
        invoice.discount_line(only[0].line_id, Discount.of("amount", "10.01", "too much", "EUR"), SYSTEM)
    with pytest.raises(InvalidInputError):
        Discount.of("percent", "100.01", "too much", "EUR")
    with pytest.raises(InvalidInputError):
        Discount.of("percent", "5", " ", "EUR")


def test_removing_the_last_line_takes_the_invoice_discount_with_it() -> None:
    only = line("10.00")
    invoice = drafted(only)
    invoice.discount_invoice(Discount.of("percent", "5", "promo", "EUR"), SYSTEM)
    invoice.collect_events()
    invoice.remove_line(only[0].line_id, SYSTEM)
    assert new_events(invoice) == ["LineRemoved", "Discounted"]
    assert invoice.discount is None


# -- issuing ------------------------------------------------------------------------------------------------------


def test_issuing_freezes_the_lines() -> None:
    invoice = issued()
    assert invoice.status is Status.ISSUED and invoice.balance == D("100.00")
    with pytest.raises(InvalidTransitionError):
        invoice.add_line(line("1.00")[0], "EUR", SYSTEM)
    with pytest.raises(InvalidTransitionError):
        invoice.discount_invoice(Discount.of("percent", "5", "late", "EUR"), SYSTEM)


def test_an_invoice_without_lines_is_not_issued() -> None:
    with pytest.raises(InvalidTransitionError):
        drafted().check_issuable()


def test_numbers_are_taken_in_order_per_series_and_year() -> None:
    numbers = DocumentNumbers(id=uuid4(), clinic="main", series=Series.INVOICE.value, year=2026)
    assert [numbers.take(f"i{n}", SYSTEM) for n in range(3)] == ["2026-000001", "2026-000002", "2026-000003"]
    notes = DocumentNumbers(id=uuid4(), clinic="main", series=Series.CREDIT_NOTE.value, year=2027)
    assert notes.take("c", SYSTEM) == "CN-2027-000001"


# -- payments -----------------------------------------------------------------------------------------------------


def test_partial_then_full_payment() -> None:
    invoice = issued()
    pay(invoice, "40.00", "a")
    assert (invoice.status, invoice.balance) == (Status.PARTIALLY_PAID, D("60.00"))
    pay(invoice, "60.00", "b")
    assert (invoice.status, invoice.balance) == (Status.PAID, D("0.00"))


def test_the_same_reference_twice_is_one_payment() -> None:
    invoice = issued()
    first = pay(invoice, "40.00")
    invoice.collect_events()
    assert pay(invoice, "40.00") == first
    assert new_events(invoice) == []
    with pytest.raises(PaymentReferenceReusedError):
        pay(invoice, "41.00")


def test_overpayment_is_refused_unless_kept_as_the_patients_credit() -> None:
    invoice = issued()
    with pytest.raises(OverpaymentError) as refused:
        pay(invoice, "100.01")
    assert refused.value.details["current"]["balance"] == "100.00"
    pay(invoice, "120.00", as_account_credit=True)
    assert invoice.balance == D("-20.00") and invoice.view()["account_credit"] == "20.00"
    assert invoice.status is Status.PAID


def test_a_draft_takes_no_payment_and_a_payment_in_another_currency_is_refused() -> None:
    with pytest.raises(InvalidTransitionError):
        pay(drafted(line("10.00")), "1.00")
    with pytest.raises(CurrencyMismatchError):
        issued().record_payment("p", "r", Method.CARD, D("1.00"), "USD", NOW, SYSTEM)


def test_an_insurance_payment_names_its_payer_and_claim() -> None:
    invoice = issued()
    with pytest.raises(InvalidInputError):
        invoice.record_payment("p", "r", Method.INSURANCE, D("10.00"), "EUR", NOW, SYSTEM, payer="Acme Health")
    invoice.record_payment("p", "r", Method.INSURANCE, D("10.00"), "EUR", NOW, SYSTEM, payer="Acme Health", claim_reference="CL-1")
    assert invoice.view()["payments"][0]["claim_reference"] == "CL-1"


# -- refunds, credit notes, void, write-off -----------------------------------------------------------------------


def test_refunds_never_exceed_what_was_paid_net_of_earlier_refunds() -> None:
    invoice = issued()
    pay(invoice, "30.00")
    invoice.refund("f1", D("20.00"), Method.CASH, "changed mind", NOW, SYSTEM)
    with pytest.raises(RefundTooLargeError):
        invoice.refund("f2", D("10.01"), Method.CASH, "again", NOW, SYSTEM)
    invoice.refund("f2", D("10.00"), Method.CASH, "again", NOW, SYSTEM)
    assert invoice.status is Status.REFUNDED and invoice.balance == D("100.00")


def test_a_refund_needs_a_reason() -> None:
    invoice = issued()
    pay(invoice, "30.00")
    with pytest.raises(InvalidInputError):
        invoice.refund("f1", D("1.00"), Method.CASH, "", NOW, SYSTEM)


def test_partial_credit_notes_then_the_rest_credit_exactly_the_invoice() -> None:
    thirds = line("10.00", qty="3", rate="19", line_id="L")
    invoice = issued(thirds)
    for n in range(3):
        credited = invoice.credit_lines({"L": D(1)})
        invoice.credit(f"c{n}", f"CN-2026-00000{n}", credited, "returned", NOW, SYSTEM)
    assert invoice.credited == invoice.totals().total == D("35.70")
    assert invoice.status is Status.CREDITED and invoice.balance == 0
    with pytest.raises(CreditTooLargeError):
        invoice.credit_lines(None)


def test_a_credit_note_on_a_paid_invoice_leaves_the_patient_in_credit() -> None:
    invoice = issued()
    pay(invoice, "100.00")
    invoice.credit("c", "CN-2026-000001", invoice.credit_lines(None), "not performed", NOW, SYSTEM)
    assert invoice.balance == D("-100.00") and invoice.status is Status.CREDITED
    invoice.refund("f", D("100.00"), Method.CARD, "credited", NOW, SYSTEM)
    assert invoice.balance == 0


def test_void_only_an_issued_invoice_with_nothing_paid() -> None:
    paid = issued()
    pay(paid, "1.00")
    with pytest.raises(InvalidTransitionError):
        paid.void("mistake", NOW, SYSTEM)
    with pytest.raises(InvalidTransitionError):
        drafted(line("1.00")).void("mistake", NOW, SYSTEM)
    invoice = issued()
    invoice.void("duplicate", NOW, SYSTEM)
    assert invoice.status is Status.VOID and invoice.balance == 0
    with pytest.raises(InvalidTransitionError):
        pay(invoice, "1.00")


def test_writing_off_the_unpaid_balance() -> None:
    invoice = issued()
    pay(invoice, "25.00")
    invoice.write_off_balance("uncollectable", NOW, SYSTEM)
    assert invoice.status is Status.WRITTEN_OFF and invoice.written_off == D("75.00") and invoice.balance == 0
    settled = issued()
    pay(settled, "100.00")
    with pytest.raises(InvalidTransitionError):
        settled.write_off_balance("nothing owed", NOW, SYSTEM)


# -- the price list -----------------------------------------------------------------------------------------------


def test_a_price_change_is_an_event_and_a_service_needs_a_known_tax_category() -> None:
    prices = PriceList(id=uuid4(), clinic="main")
    with pytest.raises(InvalidInputError):
        prices.set_service("ecg", "ECG", ServiceKind.TEST, "40.00", "EUR", "standard", SYSTEM)
    prices.set_tax_category("standard", "19", SYSTEM)
    prices.set_service("ecg", "ECG", ServiceKind.TEST, "40.00", "EUR", "standard", SYSTEM)
    prices.collect_events()
    prices.set_service("ecg", "ECG", ServiceKind.TEST, "40.00", "EUR", "standard", SYSTEM)
    assert new_events(prices) == []
    prices.set_service("ecg", "ECG", ServiceKind.TEST, "45.00", "EUR", "standard", SYSTEM)
    assert new_events(prices) == ["ServicePriced"]
    assert prices.service("ecg").price == D("45.00")
