"""Response bodies of the billing reads: invoices, statements, receivables and cash-ups. Every amount is a decimal
string in its currency's minor unit, so no float ever touches money."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import Page
from domain.invoice import Method, Status

Amount = str


class DiscountPublic(BaseModel):
    kind: Literal["percent", "amount"]
    value: str
    reason: str


class InvoiceLinePublic(BaseModel):
    line_id: str
    service_code: str
    description: str
    quantity: str
    unit_price: Amount
    tax_rate: str = Field(description="Percent.")
    discount: DiscountPublic | None
    gross: Amount = Field(description="quantity x unit price, rounded")
    discount_amount: Amount
    net: Amount
    invoice_discount_share: Amount
    taxable: Amount
    tax: Amount
    total: Amount


class TaxPublic(BaseModel):
    rate: str
    taxable: Amount
    tax: Amount


class PaymentPublic(BaseModel):
    payment_id: str
    reference: str
    method: Method
    amount: Amount
    account_credit: Amount = Field(description="The part beyond the balance, kept as a credit on the patient's account.")
    received_at: datetime
    payer: str | None
    claim_reference: str | None


class RefundPublic(BaseModel):
    refund_id: str
    amount: Amount
    method: Method
    reason: str
    payment_id: str | None
    refunded_at: datetime


class CreditedLinePublic(BaseModel):
    line_id: str
    quantity: str
    taxable: Amount
    tax: Amount


class CreditNotePublic(BaseModel):
    credit_note_id: str
    number: str
    reason: str
    issued_at: datetime
    lines: list[CreditedLinePublic]
    total: Amount


class InvoicePublic(BaseModel):
    id: str
    number: str | None
    status: Status
    currency: str
    patient_id: str
    doctor_id: str | None
    appointment_id: str | None
    origin: str
    drafted_at: datetime
    issued_at: datetime | None
    due_date: date | None
    lines: list[InvoiceLinePublic]
    discount: DiscountPublic | None
    subtotal: Amount
    line_discounts: Amount
    invoice_discount: Amount
    net: Amount
    tax: Amount
    taxes: list[TaxPublic] = Field(description="Taxable amount and tax at each rate.")
    total: Amount
    paid: Amount
    refunded: Amount
    credited: Amount
    written_off: Amount
    balance: Amount = Field(description="total - paid + refunded - credited - written off; negative: owed to the patient.")
    account_credit: Amount
    payments: list[PaymentPublic]
    refunds: list[RefundPublic]
    credit_notes: list[CreditNotePublic]
    void: dict[str, Any] | None
    write_off: dict[str, Any] | None
    version: int


class StatementPaymentPublic(PaymentPublic):
    invoice_id: str
    invoice_number: str | None
    currency: str


class StatementRefundPublic(RefundPublic):
    invoice_id: str
    invoice_number: str | None
    currency: str


class StatementCreditNotePublic(CreditNotePublic):
    invoice_id: str
    invoice_number: str | None
    currency: str


class StatementTotals(BaseModel):
    currency: str
    charged: Amount = Field(description="Totals of the issued invoices that are not void.")
    paid: Amount
    refunded: Amount
    credited: Amount
    written_off: Amount
    balance: Amount = Field(description="charged - paid + refunded - credited - written off.")
    owed: Amount = Field(description="What the patient owes: the invoices' positive balances.")
    account_credit: Amount = Field(description="What the clinic owes the patient back: the invoices' negative balances.")


class StatementPublic(BaseModel):
    patient_id: str
    invoices: list[InvoicePublic]
    payments: list[StatementPaymentPublic]
    refunds: list[StatementRefundPublic]
    credit_notes: list[StatementCreditNotePublic]
    totals: list[StatementTotals] = Field(description="One per currency.")


class AgingBucket(BaseModel):
    bucket: Literal["0-30", "31-60", "61-90", "90+"] = Field(description="Days from the issue date to as_of.")
    count: int
    amount: Amount


class ReceivablesByCurrency(BaseModel):
    currency: str
    buckets: list[AgingBucket]
    count: int
    total: Amount


class ReceivablesPublic(BaseModel):
    as_of: date
    currencies: list[ReceivablesByCurrency]
    invoices: Page[InvoicePublic] | None = Field(description="The asked bucket's invoices, oldest first; null without ?bucket=.")


class CashUpMethod(BaseModel):
    method: Method
    payments: int
    paid: Amount
    refunds: int
    refunded: Amount
    net: Amount = Field(description="paid - refunded")


class CashUpByCurrency(BaseModel):
    currency: str
    methods: list[CashUpMethod]
    payments: int
    refunds: int
    paid: Amount
    refunded: Amount
    net: Amount


class CashUpPublic(BaseModel):
    date: date
    timezone: str
    start: datetime = Field(description="The day's first moment in its time zone.")
    end: datetime = Field(description="The next day's first moment (excluded).")
    currencies: list[CashUpByCurrency]
