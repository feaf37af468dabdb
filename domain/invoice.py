"""Invoice: a patient's bill for a visit or for services, drafted, issued under a gapless number, paid, refunded,
credited by credit notes, voided or written off. Every amount is computed here, by the rule in domain.money.

The balance of an issued invoice is its total - payments + refunds - credit notes - the amount written off;
a void invoice owes nothing. A negative balance is money the clinic owes the patient (their account credit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.money import HUNDRED, CurrencyMismatchError, currency, exact_amount, round_money, share_out, text
from domain.shared import Cause, ConflictError, InvalidInputError, InvalidTransitionError, require_aware

MAX_LINES = 100
MAX_QUANTITY = Decimal(10_000)
MIN_REASON_LENGTH = 3


class Status(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CREDITED = "credited"
    REFUNDED = "refunded"
    VOID = "void"
    WRITTEN_OFF = "written_off"


OPEN = frozenset({Status.ISSUED, Status.PARTIALLY_PAID, Status.REFUNDED})


class Method(StrEnum):
    CASH = "cash"
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    ONLINE = "online"
    INSURANCE = "insurance"


class DiscountKind(StrEnum):
    PERCENT = "percent"
    AMOUNT = "amount"


class Origin(StrEnum):
    MANUAL = "manual"
    VISIT = "visit"
    NO_SHOW = "no_show"


class PaymentReferenceReusedError(ConflictError):
    """Raised when an external payment reference already names a different payment."""

    code = "payment_reference_reused"


class OverpaymentError(ConflictError):
    """Raised when a payment exceeds the balance and was not sent as a credit on the patient's account."""

    code = "overpayment"


class RefundTooLargeError(ConflictError):
    """Raised when a refund exceeds what was paid net of earlier refunds."""

    code = "refund_exceeds_paid"


class CreditTooLargeError(ConflictError):
    """Raised when a credit note would credit more of a line than is left of it."""

    code = "credit_exceeds_invoice"


def _reason(reason: str, field: str = "reason") -> str:
    reason = reason.strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise InvalidInputError(f"Give a reason of at least {MIN_REASON_LENGTH} characters.", field=field)
    return reason


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInputError(f"{value!r} is not a decimal number.", field=field) from None
    if not number.is_finite():
        raise InvalidInputError("A number must be finite.", field=field)
    return number


def tax_rate(value: Any, field: str = "tax_rate") -> Decimal:
    """A tax rate in percent: 0 to 100 with at most 2 decimals."""
    rate = _decimal(value, field)
    if rate < 0 or rate > HUNDRED or rate != rate.quantize(Decimal("0.01")):
        raise InvalidInputError("A tax rate is a percent from 0 to 100 with at most 2 decimals.", field=field)
    return rate.quantize(Decimal("0.01"))


def quantity(value: Any, field: str = "quantity") -> Decimal:
    """A quantity: more than 0, at most 10,000, with at most 3 decimals (hours, millilitres)."""
    number = _decimal(value, field)
    if number <= 0 or number > MAX_QUANTITY or number != number.quantize(Decimal("0.001")):
        raise InvalidInputError("A quantity is more than 0 and at most 10000, with at most 3 decimals.", field=field)
    return number.normalize() if number == number.to_integral_value() else number


@dataclass(frozen=True)
class Discount:
    kind: DiscountKind
    value: Decimal
    reason: str

    @classmethod
    def of(cls, kind: DiscountKind | str, value: Any, reason: str, code: str, field: str = "value") -> Discount:
        kind = DiscountKind(kind)
        if kind is DiscountKind.PERCENT:
            number = _decimal(value, field)
            if number <= 0 or number > HUNDRED or number != number.quantize(Decimal("0.01")):
                raise InvalidInputError("A percent discount is more than 0 and at most 100, with at most 2 decimals.", field=field)
        else:
            number = exact_amount(value, code, field, allow_zero=False)
        return cls(kind, number, _reason(reason))

    def amount_of(self, base: Decimal, code: str) -> Decimal:
        return round_money(base * self.value / HUNDRED, code) if self.kind is DiscountKind.PERCENT else self.value

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "value": text(self.value), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Discount | None:
        return None if data is None else cls(DiscountKind(data["kind"]), Decimal(data["value"]), data["reason"])


@dataclass(frozen=True)
class Line:
    line_id: str
    service_code: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    discount: Discount | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line_id": self.line_id,
            "service_code": self.service_code,
            "description": self.description,
            "quantity": text(self.quantity),
            "unit_price": text(self.unit_price),
            "tax_rate": text(self.tax_rate),
            "discount": self.discount.as_dict() if self.discount else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Line:
        return cls(
            data["line_id"],
            data["service_code"],
            data["description"],
            Decimal(data["quantity"]),
            Decimal(data["unit_price"]),
            Decimal(data["tax_rate"]),
            Discount.from_dict(data.get("discount")),
        )


@dataclass(frozen=True)
class PricedLine:
    """A line's amounts by the rounding rule: gross - discount = net; net - invoice share = taxable; + tax = total."""

    line: Line
    gross: Decimal
    discount: Decimal
    net: Decimal
    invoice_discount: Decimal
    taxable: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.taxable + self.tax


@dataclass(frozen=True)
class Totals:
    lines: tuple[PricedLine, ...]
    subtotal: Decimal
    line_discounts: Decimal
    invoice_discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal

    def taxes(self) -> list[dict[str, str]]:
        """Tax by rate: the taxable amount and the tax at each rate, as an invoice document shows them."""
        by_rate: dict[Decimal, list[Decimal]] = {}
        for priced in self.lines:
            sums = by_rate.setdefault(priced.line.tax_rate, [Decimal(0), Decimal(0)])
            sums[0] += priced.taxable
            sums[1] += priced.tax
        return [{"rate": text(rate), "taxable": text(s[0]), "tax": text(s[1])} for rate, s in sorted(by_rate.items())]


def price(lines: list[Line], discount: Discount | None, code: str) -> Totals:
    """Every amount of an invoice by the documented rule (domain.money)."""
    zero = round_money(Decimal(0), code)
    grosses = [round_money(line.quantity * line.unit_price, code) for line in lines]
    line_discounts = [line.discount.amount_of(gross, code) if line.discount else zero for line, gross in zip(lines, grosses)]
    nets = [gross - cut for gross, cut in zip(grosses, line_discounts)]
    invoice_cut = min(discount.amount_of(sum(nets, zero), code), sum(nets, zero)) if discount else zero
    shares = share_out(invoice_cut, nets, code) if lines else []
    priced = []
    for line, gross, cut, net, share in zip(lines, grosses, line_discounts, nets, shares):
        taxable = net - share
        priced.append(PricedLine(line, gross, cut, net, share, taxable, round_money(taxable * line.tax_rate / HUNDRED, code)))
    return Totals(
        lines=tuple(priced),
        subtotal=sum(grosses, zero),
        line_discounts=sum(line_discounts, zero),
        invoice_discount=invoice_cut,
        net=sum((p.taxable for p in priced), zero),
        tax=sum((p.tax for p in priced), zero),
        total=sum((p.total for p in priced), zero),
    )


@dataclass(frozen=True)
class Payment:
    payment_id: str
    reference: str
    method: Method
    amount: Decimal
    account_credit: Decimal
    received_at: datetime
    payer: str | None
    claim_reference: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "reference": self.reference,
            "method": self.method.value,
            "amount": text(self.amount),
            "account_credit": text(self.account_credit),
            "received_at": self.received_at.isoformat(),
            "payer": self.payer,
            "claim_reference": self.claim_reference,
        }


@dataclass(frozen=True)
class Refund:
    refund_id: str
    amount: Decimal
    method: Method
    reason: str
    payment_id: str | None
    refunded_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "amount": text(self.amount),
            "method": self.method.value,
            "reason": self.reason,
            "payment_id": self.payment_id,
            "refunded_at": self.refunded_at.isoformat(),
        }


@dataclass(frozen=True)
class CreditedLine:
    line_id: str
    quantity: Decimal
    taxable: Decimal
    tax: Decimal

    def as_dict(self) -> dict[str, str]:
        return {"line_id": self.line_id, "quantity": text(self.quantity), "taxable": text(self.taxable), "tax": text(self.tax)}


@dataclass(frozen=True)
class CreditNote:
    credit_note_id: str
    number: str
    reason: str
    issued_at: datetime
    lines: tuple[CreditedLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.taxable + line.tax for line in self.lines), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "credit_note_id": self.credit_note_id,
            "number": self.number,
            "reason": self.reason,
            "issued_at": self.issued_at.isoformat(),
            "lines": [line.as_dict() for line in self.lines],
            "total": text(self.total),
        }


class Invoice(Aggregate):
    TOPIC = "medledger:Invoice"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Invoice.Created"

    @classmethod
    def draft(
        cls,
        invoice_id: UUID,
        patient_id: str,
        currency_code: str,
        origin: Origin,
        cause: Cause,
        doctor_id: str | None = None,
        appointment_id: str | None = None,
        lines: tuple[tuple[Line, str], ...] = (),
    ) -> Invoice:
        """A new draft; each line comes with the currency it was priced in, which must be the invoice's."""
        invoice = cls(
            id=invoice_id,
            patient_id=patient_id,
            doctor_id=doctor_id,
            appointment_id=appointment_id,
            currency=currency(currency_code),
            origin=origin.value,
            cause=cause.as_dict(),
        )
        for line, line_currency in lines:
            invoice.add_line(line, line_currency, cause)
        return invoice

    @event("Drafted", topic="medledger:Invoice.Drafted.v1")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - chosen by the caller: the policy derives it from the visit it bills
        patient_id: str,
        doctor_id: str | None,
        appointment_id: str | None,
        currency: str,
        origin: str,
        cause: dict[str, Any],
    ) -> None:
        self.patient_id = patient_id
        self.doctor_id = doctor_id
        self.appointment_id = appointment_id
        self.currency = currency
        self.origin = Origin(origin)
        self.lines: dict[str, Line] = {}
        self.discount: Discount | None = None
        self.number: str | None = None
        self.issued_at: datetime | None = None
        self.issue_date: date | None = None
        self.due_date: date | None = None
        self.payments: dict[str, Payment] = {}
        self.refunds: list[Refund] = []
        self.credit_notes: list[CreditNote] = []
        self.voided: dict[str, Any] | None = None
        self.write_off: dict[str, Any] | None = None

    # -- derived state ---------------------------------------------------------------------------------------------

    def totals(self) -> Totals:
        return price(list(self.lines.values()), self.discount, self.currency)

    @property
    def paid(self) -> Decimal:
        return sum((p.amount for p in self.payments.values()), Decimal(0))

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), Decimal(0))

    @property
    def credited(self) -> Decimal:
        return sum((note.total for note in self.credit_notes), Decimal(0))

    @property
    def written_off(self) -> Decimal:
        return Decimal(self.write_off["amount"]) if self.write_off else Decimal(0)

    @property
    def charges(self) -> Decimal:
        return self.totals().total if self.number is not None and self.voided is None else Decimal(0)

    @property
    def balance(self) -> Decimal:
        amount = self.charges - self.paid + self.refunded - self.credited - self.written_off
        return round_money(amount, self.currency)

    @property
    def status(self) -> Status:
        if self.number is None:
            return Status.DRAFT
        if self.voided is not None:
            return Status.VOID
        if self.write_off is not None:
            return Status.WRITTEN_OFF
        if self.credit_notes and self.credited >= self.totals().total:
            return Status.CREDITED
        net_paid = self.paid - self.refunded
        if self.refunds and net_paid == 0:
            return Status.REFUNDED
        if self.balance <= 0:
            return Status.PAID
        return Status.PARTIALLY_PAID if net_paid > 0 else Status.ISSUED

    # -- drafting --------------------------------------------------------------------------------------------------

    def add_line(self, line: Line, line_currency: str, cause: Cause) -> None:
        self._require_draft("add a line to")
        if line_currency != self.currency:
            raise CurrencyMismatchError(
                f"This invoice is in {self.currency}; a line priced in {line_currency} cannot be added.", field="currency"
            )
        if line.line_id in self.lines:
            if self.lines[line.line_id] == replace(line, discount=self.lines[line.line_id].discount):
                return
            raise InvalidInputError("Another line has this line id.", field="line_id")
        if len(self.lines) >= MAX_LINES:
            raise InvalidInputError(f"An invoice has at most {MAX_LINES} lines.", field="lines")
        exact_amount(line.unit_price, self.currency, "unit_price")
        self._line_added(line.as_dict(), cause.as_dict())

    def remove_line(self, line_id: str, cause: Cause) -> None:
        self._require_draft("remove a line of")
        if line_id not in self.lines:
            return
        self._line_removed(line_id, cause.as_dict())
        if self.discount is not None and not self.lines:
            self._invoice_discounted(None, cause.as_dict())

    def discount_line(self, line_id: str, discount: Discount | None, cause: Cause) -> None:
        self._require_draft("discount")
        line = self._line(line_id)
        if discount is not None and discount.kind is DiscountKind.AMOUNT:
            gross = round_money(line.quantity * line.unit_price, self.currency)
            if discount.value > gross:
                raise InvalidInputError(f"The line comes to {text(gross)}; a discount cannot exceed it.", field="value")
        if discount != line.discount:
            self._line_discounted(line_id, discount.as_dict() if discount else None, cause.as_dict())

    def discount_invoice(self, discount: Discount | None, cause: Cause) -> None:
        self._require_draft("discount")
        if discount is not None and not self.lines:
            raise InvalidInputError("Add lines before discounting the invoice.", field="lines")
        if discount is not None and discount.kind is DiscountKind.AMOUNT:
            net = sum((p.net for p in self.totals().lines), Decimal(0))
            if discount.value > net:
                raise InvalidInputError(f"The lines come to {text(net)}; a discount cannot exceed it.", field="value")
        if discount != self.discount:
            self._invoice_discounted(discount.as_dict() if discount else None, cause.as_dict())

    # -- issuing and correcting ------------------------------------------------------------------------------------

    def check_issuable(self) -> None:
        """What issue() would refuse, checked before a number is taken for it."""
        self._require_draft("issue")
        if not self.lines:
            raise InvalidTransitionError("An invoice without lines cannot be issued.", current=self.summary())

    def issue(self, number: str, issued_at: datetime, due_date: date, cause: Cause, issue_date: date | None = None) -> None:
        """Issues under a number taken for it; issue_date is the clinic's date of issued_at (its UTC date by default)."""
        self.check_issuable()
        require_aware(issued_at, "issued_at")
        totals = self.totals()
        issued_on = issue_date or issued_at.astimezone(timezone.utc).date()
        self._issued(number, issued_at, issued_on, due_date, text(totals.total), text(totals.tax), cause.as_dict())

    def credit_lines(self, wanted: dict[str, Decimal] | None) -> tuple[CreditedLine, ...]:
        """What a credit note would credit: these quantities of these lines, or (None) all that is left of every line."""
        self._require_status(*OPEN, Status.PAID, Status.CREDITED, action="credit")
        priced = {p.line.line_id: p for p in self.totals().lines}
        credited: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for note in self.credit_notes:
            for c in note.lines:
                q, t, x = credited.get(c.line_id, (Decimal(0), Decimal(0), Decimal(0)))
                credited[c.line_id] = (q + c.quantity, t + c.taxable, x + c.tax)
        if wanted is None:
            wanted = {lid: p.line.quantity - credited.get(lid, (Decimal(0),) * 3)[0] for lid, p in priced.items()}
            wanted = {lid: q for lid, q in wanted.items() if q > 0}
            if not wanted:
                raise CreditTooLargeError("Everything on this invoice is credited already.", current=self.summary())
        result = []
        for line_id, amount in wanted.items():
            if line_id not in priced:
                raise InvalidInputError(f"The invoice has no line {line_id}.", field="line_id")
            p = priced[line_id]
            done_q, done_t, done_x = credited.get(line_id, (Decimal(0), Decimal(0), Decimal(0)))
            left = p.line.quantity - done_q
            if amount > left:
                raise CreditTooLargeError(
                    f"Only {text(left)} of line {line_id} is left to credit.", current=self.summary(), line_id=line_id
                )
            if amount == left:
                taxable, tax = p.taxable - done_t, p.tax - done_x
            else:
                taxable = round_money(p.taxable * amount / p.line.quantity, self.currency)
                tax = round_money(p.tax * amount / p.line.quantity, self.currency)
            result.append(CreditedLine(line_id, amount, taxable, tax))
        return tuple(result)

    def credit(self, credit_note_id: str, number: str, lines: tuple[CreditedLine, ...], reason: str, now: datetime, cause: Cause) -> None:
        """Records a credit note worked out by credit_lines (the lines are checked again here)."""
        if any(note.credit_note_id == credit_note_id for note in self.credit_notes):
            return
        expected = self.credit_lines({c.line_id: c.quantity for c in lines})
        if expected != lines:
            raise ConflictError("The invoice changed while the credit note was worked out; try again.", current=self.summary())
        self._credited(credit_note_id, number, _reason(reason), now, [c.as_dict() for c in lines], cause.as_dict())

    def void(self, reason: str, now: datetime, cause: Cause) -> None:
        if self.voided is not None:
            return
        self._require_status(Status.ISSUED, action="void")
        self._voided(_reason(reason), now, cause.as_dict())

    def write_off_balance(self, reason: str, now: datetime, cause: Cause) -> None:
        if self.write_off is not None:
            return
        self._require_status(*OPEN, action="write off")
        if self.balance <= 0:
            raise InvalidTransitionError("Nothing is owed on this invoice to write off.", current=self.summary())
        self._written_off(text(self.balance), _reason(reason), now, cause.as_dict())

    # -- money in and out ------------------------------------------------------------------------------------------

    def payment_with(self, reference: str) -> Payment | None:
        return next((p for p in self.payments.values() if p.reference == reference), None)

    def record_payment(
        self,
        payment_id: str,
        reference: str,
        method: Method,
        amount: Decimal,
        payment_currency: str,
        received_at: datetime,
        cause: Cause,
        as_account_credit: bool = False,
        payer: str | None = None,
        claim_reference: str | None = None,
    ) -> str:
        """Records a payment; answers its id. The same reference again is the same payment (nothing new recorded)."""
        earlier = self.payment_with(reference)
        if earlier is not None:
            if earlier.method != method or earlier.amount != amount:
                raise PaymentReferenceReusedError(
                    f"Reference {reference} names another payment on this invoice.", current=self.summary(), payment=earlier.as_dict()
                )
            return earlier.payment_id
        if payment_currency != self.currency:
            raise CurrencyMismatchError(f"This invoice is in {self.currency}, not {payment_currency}.", field="currency")
        amount = exact_amount(amount, self.currency, "amount", allow_zero=False)
        if method is Method.INSURANCE and not (payer and claim_reference):
            raise InvalidInputError("An insurance payment names its payer and claim reference.", field="payer" if not payer else "claim_reference")
        require_aware(received_at, "received_at")
        self._require_status(*OPEN, action="take a payment on")
        balance = self.balance
        if balance <= 0:
            raise OverpaymentError("Nothing is owed on this invoice.", current=self.summary())
        if amount > balance and not as_account_credit:
            raise OverpaymentError(
                f"Only {text(balance)} {self.currency} is owed; record the rest as a credit on the patient's account, or take less.",
                current=self.summary(),
            )
        excess = max(amount - balance, Decimal(0))
        payment = Payment(payment_id, reference, method, amount, excess, received_at, payer, claim_reference)
        self._payment_recorded(payment.as_dict(), cause.as_dict())
        return payment_id

    def refund(
        self, refund_id: str, amount: Decimal, method: Method, reason: str, now: datetime, cause: Cause, payment_id: str | None = None
    ) -> None:
        if any(r.refund_id == refund_id for r in self.refunds):
            return
        amount = exact_amount(amount, self.currency, "amount", allow_zero=False)
        reason = _reason(reason)
        if self.number is None:
            raise InvalidTransitionError("A draft has no payments to refund.", current=self.summary())
        refundable = self.paid - self.refunded
        if payment_id is not None:
            if payment_id not in self.payments:
                raise InvalidInputError("The invoice has no such payment.", field="payment_id")
            refundable = self.payments[payment_id].amount - sum((r.amount for r in self.refunds if r.payment_id == payment_id), Decimal(0))
        if amount > refundable:
            raise RefundTooLargeError(
                f"At most {text(refundable)} {self.currency} can be refunded: what was paid net of earlier refunds.",
                current=self.summary(),
            )
        self._refunded(Refund(refund_id, amount, method, reason, payment_id, now).as_dict(), cause.as_dict())

    # -- views -----------------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What a conflict answer shows: where the invoice stands."""
        return {
            "id": str(self.id),
            "number": self.number,
            "status": self.status.value,
            "currency": self.currency,
            "total": text(self.totals().total),
            "paid": text(self.paid),
            "refunded": text(self.refunded),
            "credited": text(self.credited),
            "written_off": text(self.written_off),
            "balance": text(self.balance),
            "version": self.version,
        }

    def view(self) -> dict[str, Any]:
        """The whole invoice as plain JSON, every amount worked out: what read models, answers and documents show."""
        totals = self.totals()
        return {
            **self.summary(),
            "patient_id": self.patient_id,
            "doctor_id": self.doctor_id,
            "appointment_id": self.appointment_id,
            "origin": self.origin.value,
            "drafted_at": self.created_on.isoformat(),
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "issue_date": self.issue_date.isoformat() if self.issue_date else None,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "lines": [
                {
                    **p.line.as_dict(),
                    "gross": text(p.gross),
                    "discount_amount": text(p.discount),
                    "net": text(p.net),
                    "invoice_discount_share": text(p.invoice_discount),
                    "taxable": text(p.taxable),
                    "tax": text(p.tax),
                    "total": text(p.total),
                }
                for p in totals.lines
            ],
            "discount": self.discount.as_dict() if self.discount else None,
            "subtotal": text(totals.subtotal),
            "line_discounts": text(totals.line_discounts),
            "invoice_discount": text(totals.invoice_discount),
            "net": text(totals.net),
            "tax": text(totals.tax),
            "taxes": totals.taxes(),
            "account_credit": text(max(-self.balance, Decimal(0))),
            "payments": [p.as_dict() for p in self.payments.values()],
            "refunds": [r.as_dict() for r in self.refunds],
            "credit_notes": [note.as_dict() for note in self.credit_notes],
            "void": self.voided,
            "write_off": self.write_off,
        }

    # -- guards ----------------------------------------------------------------------------------------------------

    def _line(self, line_id: str) -> Line:
        if line_id not in self.lines:
            raise InvalidInputError(f"The invoice has no line {line_id}.", field="line_id")
        return self.lines[line_id]

    def _require_draft(self, action: str) -> None:
        if self.number is not None:
            raise InvalidTransitionError(
                f"Cannot {action} an issued invoice: its lines are frozen; correct it with a credit note.", current=self.summary()
            )

    def _require_status(self, *allowed: Status, action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransitionError(f"Cannot {action} an invoice that is {self.status.value}.", current=self.summary())

    # -- events ----------------------------------------------------------------------------------------------------

    @event("LineAdded", topic="medledger:Invoice.LineAdded.v1")
    def _line_added(self, line: dict[str, Any], cause: dict[str, Any]) -> None:
        self.lines[line["line_id"]] = Line.from_dict(line)

    @event("LineRemoved", topic="medledger:Invoice.LineRemoved.v1")
    def _line_removed(self, line_id: str, cause: dict[str, Any]) -> None:
        del self.lines[line_id]

    @event("LineDiscounted", topic="medledger:Invoice.LineDiscounted.v1")
    def _line_discounted(self, line_id: str, discount: dict[str, Any] | None, cause: dict[str, Any]) -> None:
        self.lines[line_id] = replace(self.lines[line_id], discount=Discount.from_dict(discount))

    @event("Discounted", topic="medledger:Invoice.Discounted.v1")
    def _invoice_discounted(self, discount: dict[str, Any] | None, cause: dict[str, Any]) -> None:
        self.discount = Discount.from_dict(discount)

    @event("Issued", topic="medledger:Invoice.Issued.v1")
    def _issued(
        self, number: str, issued_at: datetime, issue_date: date, due_date: date, total: str, tax: str, cause: dict[str, Any]
    ) -> None:
        self.number = number
        self.issued_at = issued_at
        self.issue_date = issue_date
        self.due_date = due_date

    @event("CreditNoteIssued", topic="medledger:Invoice.CreditNoteIssued.v1")
    def _credited(
        self, credit_note_id: str, number: str, reason: str, issued_at: datetime, lines: list[dict[str, str]], cause: dict[str, Any]
    ) -> None:
        credited = tuple(CreditedLine(c["line_id"], Decimal(c["quantity"]), Decimal(c["taxable"]), Decimal(c["tax"])) for c in lines)
        self.credit_notes.append(CreditNote(credit_note_id, number, reason, issued_at, credited))

    @event("PaymentRecorded", topic="medledger:Invoice.PaymentRecorded.v1")
    def _payment_recorded(self, payment: dict[str, Any], cause: dict[str, Any]) -> None:
        self.payments[payment["payment_id"]] = Payment(
            payment["payment_id"],
            payment["reference"],
            Method(payment["method"]),
            Decimal(payment["amount"]),
            Decimal(payment["account_credit"]),
            datetime.fromisoformat(payment["received_at"]),
            payment["payer"],
            payment["claim_reference"],
        )

    @event("Refunded", topic="medledger:Invoice.Refunded.v1")
    def _refunded(self, refund: dict[str, Any], cause: dict[str, Any]) -> None:
        self.refunds.append(
            Refund(
                refund["refund_id"],
                Decimal(refund["amount"]),
                Method(refund["method"]),
                refund["reason"],
                refund["payment_id"],
                datetime.fromisoformat(refund["refunded_at"]),
            )
        )

    @event("Voided", topic="medledger:Invoice.Voided.v1")
    def _voided(self, reason: str, at: datetime, cause: dict[str, Any]) -> None:
        self.voided = {"reason": reason, "at": at.isoformat()}

    @event("WrittenOff", topic="medledger:Invoice.WrittenOff.v1")
    def _written_off(self, amount: str, reason: str, at: datetime, cause: dict[str, Any]) -> None:
        self.write_off = {"amount": amount, "reason": reason, "at": at.isoformat()}


class Series(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


PREFIX = {Series.INVOICE: "", Series.CREDIT_NOTE: "CN-"}


class DocumentNumbers(Aggregate):
    """One clinic's numbers of one series in one year: each number is taken once, in order, with no gap.

    The stream is saved in the same transaction as the document that takes the number, so two documents
    issued at once cannot both take the next number: one of them loses the race, reloads and takes the one after."""

    TOPIC = "medledger:DocumentNumbers"

    class Created(Aggregate.Created):
        TOPIC = "medledger:DocumentNumbers.Created"

    @event("Opened", topic="medledger:DocumentNumbers.Opened.v1")
    def __init__(self, id: UUID, clinic: str, series: str, year: int) -> None:  # noqa: A002 - derived from clinic, series and year
        self.clinic = clinic
        self.series = Series(series)
        self.year = year
        self.last = 0

    def take(self, document_id: str, cause: Cause) -> str:
        self._taken(self.last + 1, document_id, cause.as_dict())
        return self.number(self.last)

    def number(self, sequence: int) -> str:
        return f"{PREFIX[self.series]}{self.year}-{sequence:06d}"

    @event("NumberTaken", topic="medledger:DocumentNumbers.NumberTaken.v1")
    def _taken(self, sequence: int, document_id: str, cause: dict[str, Any]) -> None:
        self.last = sequence


class PaymentReference(Aggregate):
    """An external payment reference (a card transaction, a transfer, a gateway payment) claimed by one payment:
    the same reference can never be recorded twice, on this invoice or another, also when both arrive at once."""

    TOPIC = "medledger:PaymentReference"

    class Created(Aggregate.Created):
        TOPIC = "medledger:PaymentReference.Created"

    @event("Claimed", topic="medledger:PaymentReference.Claimed.v1")
    def __init__(self, id: UUID, reference: str, invoice_id: str, payment_id: str) -> None:  # noqa: A002
        self.reference = reference
        self.invoice_id = invoice_id
        self.payment_id = payment_id
