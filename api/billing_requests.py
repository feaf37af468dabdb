"""Request bodies of billing commands and their answers. Money travels as decimal strings; a client never sends a total."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from api.schemas import CommandResult, Moment, Reason, Strict, Text, _bounded
from commands.billing import LineSpec
from domain.invoice import DiscountKind, Method
from domain.price_list import ServiceKind


def _decimal(pattern: str, description: str, **bounds: Any) -> Any:
    return Annotated[Decimal, Field(**bounds), WithJsonSchema({"type": "string", "pattern": pattern, "description": description})]


Amount = _decimal(
    r"^(?:(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,3})?|1000000000(?:\.0{1,3})?)$",
    "A decimal string with at most the currency's minor-unit digits, e.g. \"120.50\" (EUR), \"1200\" (JPY).",
    ge=0,
    le=1_000_000_000,
    max_digits=13,
    decimal_places=3,
)
Quantity = _decimal(r"^(?:(?:0|[1-9][0-9]{0,3})(?:\.[0-9]{1,3})?|10000(?:\.0{1,3})?)$", "More than 0, at most 10000, up to 3 decimals.", ge=0, le=10_000, max_digits=8, decimal_places=3)
Rate = _decimal(r"^(?:(?:0|[1-9][0-9]?)(?:\.[0-9]{1,2})?|100(?:\.0{1,2})?)$", "A percent, 0 to 100, up to 2 decimals.", ge=0, le=100, max_digits=5, decimal_places=2)
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR.")]
Code = _bounded(64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
Reference = _bounded(128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:#-]*$")
IdText = _bounded(64, pattern=r"^[A-Za-z0-9_.:-]+$")


class TaxCategoryWrite(Strict):
    rate: Rate  # type: ignore[valid-type]


class ServiceWrite(Strict):
    name: Text  # type: ignore[valid-type]
    kind: ServiceKind
    price: Amount  # type: ignore[valid-type]
    currency: CurrencyCode
    tax_category: Code  # type: ignore[valid-type]


class LineWrite(Strict):
    service_code: Code  # type: ignore[valid-type]
    quantity: Quantity = Decimal(1)  # type: ignore[valid-type]
    description: Text | None = Field(default=None, description="Defaults to the service's name.")  # type: ignore[valid-type]

    def spec(self) -> LineSpec:
        return LineSpec(self.service_code, self.quantity, self.description)


class InvoiceDraft(Strict):
    patient_id: IdText  # type: ignore[valid-type]
    doctor_id: IdText | None = None  # type: ignore[valid-type]
    currency: CurrencyCode | None = Field(default=None, description="Defaults to the clinic's currency.")
    lines: list[LineWrite] = Field(default=[], max_length=100)


class DiscountWrite(Strict):
    kind: DiscountKind
    value: Amount = Field(description="A percent (0-100], or an amount in the invoice's currency.")  # type: ignore[valid-type]
    reason: Reason  # type: ignore[valid-type]


class CreditedLineWrite(Strict):
    line_id: IdText  # type: ignore[valid-type]
    quantity: Quantity  # type: ignore[valid-type]


class CreditNoteWrite(Strict):
    reason: Reason  # type: ignore[valid-type]
    lines: list[CreditedLineWrite] | None = Field(default=None, min_length=1, max_length=100, description="Left out: credit everything left.")


class PaymentWrite(Strict):
    reference: Reference = Field(description="The external reference (receipt, card transaction, transfer, claim payment); the same one twice is one payment.")  # type: ignore[valid-type]
    method: Method
    amount: Amount  # type: ignore[valid-type]
    currency: CurrencyCode
    received_at: Moment | None = Field(default=None, description="Defaults to now.")  # type: ignore[valid-type]
    as_account_credit: bool = Field(default=False, description="Take more than is owed and keep the rest as the patient's credit.")
    payer: Text | None = Field(default=None, description="Insurance: the paying insurer.")  # type: ignore[valid-type]
    claim_reference: Reference | None = Field(default=None, description="Insurance: the claim's reference.")  # type: ignore[valid-type]


class RefundWrite(Strict):
    amount: Amount  # type: ignore[valid-type]
    method: Method
    reason: Reason  # type: ignore[valid-type]
    payment_id: IdText | None = Field(default=None, description="The payment refunded, if one; never more than it net of its refunds.")  # type: ignore[valid-type]


class ReasonWrite(Strict):
    reason: Reason  # type: ignore[valid-type]


class LineResult(CommandResult):
    line_id: str


class IssueResult(CommandResult):
    number: str


class CreditNoteResult(CommandResult):
    credit_note_id: str
    number: str
    total: str


class PaymentResult(CommandResult):
    payment_id: str
    balance: str = Field(description="What is owed after this payment (negative: the patient's credit).")
