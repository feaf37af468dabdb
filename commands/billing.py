"""Billing commands: the price list, drafting (by hand and by the visit policy), lines and discounts, issuing under
a gapless number, credit notes, payments, refunds, voiding and writing off.

Who may do what:
- admins keep the price list and manage every invoice (the front desk and the accountant);
- the drafting policy drafts a visit's invoice when the appointment is completed or its consultation signed,
  and a no-show fee when one is configured, each once whatever happens to the policy's worker;
- payments by the gateway arrive through its signed webhook (see commands.gateway), as the system;
- patients, doctors and auditors only read (see the read endpoints); analysts see no invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from commands.base import Actor, Outcome, RecordNotFoundError, Services, change, load, require, retrying
from domain.appointment import Appointment
from domain.appointment import Status as AppointmentStatus
from domain.consultation import Consultation
from domain.doctors import Doctor
from domain.invoice import (
    CreditedLine,
    Discount,
    DiscountKind,
    DocumentNumbers,
    Invoice,
    Line,
    Method,
    Origin,
    PaymentReference,
    PaymentReferenceReusedError,
    Series,
    quantity,
)
from domain.patients import Patient
from domain.price_list import CONSULTATION, NO_SHOW, PriceList, ServiceKind
from domain.shared import Cause, InvalidInputError, Role, stable_id


def price_list_id(clinic: str) -> UUID:
    return stable_id("price-list", clinic)


def numbers_id(clinic: str, series: Series, year: int) -> UUID:
    return stable_id("document-numbers", clinic, series.value, year)


VISITED = frozenset({AppointmentStatus.IN_PROGRESS, AppointmentStatus.COMPLETED})
"""An appointment billed as a visit: completed, or in progress with its consultation signed."""


def _canonical(appointment_id: str) -> str:
    """One spelling of an appointment's id, so that `ABC...` and `abc...` derive the same invoice."""
    try:
        return str(UUID(str(appointment_id)))
    except ValueError:
        return str(appointment_id)


def visit_invoice_id(appointment_id: str) -> UUID:
    """A visit's invoice: one per appointment, whichever of its completion and its signed consultation comes first."""
    return stable_id("visit-invoice", _canonical(appointment_id))


def no_show_invoice_id(appointment_id: str) -> UUID:
    return stable_id("no-show-invoice", _canonical(appointment_id))


def payment_reference_id(method: Method, reference: str) -> UUID:
    return stable_id("payment-reference", method.value, reference)


# -- commands ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetTaxCategory:
    category: str
    rate: Decimal


@dataclass(frozen=True)
class PriceService:
    code: str
    name: str
    kind: ServiceKind
    price: Decimal
    currency: str
    tax_category: str


@dataclass(frozen=True)
class RetireService:
    code: str


@dataclass(frozen=True)
class LineSpec:
    service_code: str
    quantity: Decimal = Decimal(1)
    description: str | None = None


@dataclass(frozen=True)
class DraftInvoice:
    patient_id: str
    lines: tuple[LineSpec, ...] = ()
    doctor_id: str | None = None
    currency: str | None = None


@dataclass(frozen=True)
class AddLine:
    invoice_id: str
    line: LineSpec


@dataclass(frozen=True)
class RemoveLine:
    invoice_id: str
    line_id: str


@dataclass(frozen=True)
class SetDiscount:
    """A discount on one line (line_id) or on the whole invoice; kind None clears it."""

    invoice_id: str
    kind: DiscountKind | None
    value: Decimal | None = None
    reason: str = ""
    line_id: str | None = None


@dataclass(frozen=True)
class IssueInvoice:
    invoice_id: str


@dataclass(frozen=True)
class IssueCreditNote:
    invoice_id: str
    reason: str
    lines: tuple[tuple[str, Decimal], ...] | None = None
    """(line id, quantity) pairs; None credits everything left on the invoice."""


@dataclass(frozen=True)
class RecordPayment:
    invoice_id: str
    reference: str
    method: Method
    amount: Decimal
    currency: str
    received_at: datetime | None = None
    as_account_credit: bool = False
    payer: str | None = None
    claim_reference: str | None = None


@dataclass(frozen=True)
class RefundPayment:
    invoice_id: str
    amount: Decimal
    method: Method
    reason: str
    payment_id: str | None = None


@dataclass(frozen=True)
class VoidInvoice:
    invoice_id: str
    reason: str


@dataclass(frozen=True)
class WriteOff:
    invoice_id: str
    reason: str


@dataclass(frozen=True)
class IssueOutcome(Outcome):
    number: str = ""


@dataclass(frozen=True)
class CreditNoteOutcome(Outcome):
    credit_note_id: str = ""
    number: str = ""
    total: str = ""


@dataclass(frozen=True)
class PaymentOutcome(Outcome):
    payment_id: str = ""
    balance: str = ""


@dataclass(frozen=True)
class LineOutcome(Outcome):
    line_id: str = ""


# -- handlers ------------------------------------------------------------------------------------------------------


def _admin(actor: Actor, what: str) -> None:
    require(actor.is_(Role.ADMIN), f"Only admins {what}.")


def _price_list(svc: Services, found: PriceList | None = None) -> PriceList:
    clinic = svc.billing.clinic
    found = found if found is not None else svc.store.find(PriceList, price_list_id(clinic))
    return found if found is not None else PriceList(id=price_list_id(clinic), clinic=clinic)


def _edit_price_list(svc: Services, actor: Actor, act: object) -> Outcome:
    _admin(actor, "keep the price list")

    def decide() -> Outcome:
        price_list = _price_list(svc)
        act(price_list)  # type: ignore[operator]
        return Outcome(str(price_list.id), svc.store.save(price_list))

    return retrying(svc.store, decide)


def set_tax_category(svc: Services, cmd: SetTaxCategory, actor: Actor) -> Outcome:
    return _edit_price_list(svc, actor, lambda p: p.set_tax_category(cmd.category, cmd.rate, actor.cause))


def price_service(svc: Services, cmd: PriceService, actor: Actor) -> Outcome:
    return _edit_price_list(
        svc, actor, lambda p: p.set_service(cmd.code, cmd.name, cmd.kind, cmd.price, cmd.currency, cmd.tax_category, actor.cause)
    )


def retire_service(svc: Services, cmd: RetireService, actor: Actor) -> Outcome:
    return _edit_price_list(svc, actor, lambda p: p.retire_service(cmd.code, actor.cause))


def _line(price_list: PriceList, spec: LineSpec) -> tuple[Line, str]:
    service = price_list.service(spec.service_code)
    line = Line(
        line_id=str(uuid4()),
        service_code=service.code,
        description=spec.description or service.name,
        quantity=quantity(spec.quantity),
        unit_price=service.price,
        tax_rate=price_list.rate(service.tax_category),
    )
    return line, service.currency


def _invoice(svc: Services, invoice_id: str) -> Invoice:
    return load(svc.store, Invoice, invoice_id, "invoice")


def draft_invoice(svc: Services, cmd: DraftInvoice, actor: Actor) -> Outcome:
    """A draft by hand for a patient, from price-list services (admins)."""
    _admin(actor, "draft invoices by hand")
    patient, doctor = svc.store.find_all((Patient, cmd.patient_id), (Doctor, cmd.doctor_id or str(uuid4())))
    if patient is None:
        raise InvalidInputError(f"No patient {cmd.patient_id}.", field="patient_id")
    if cmd.doctor_id and doctor is None:
        raise InvalidInputError(f"No doctor {cmd.doctor_id}.", field="doctor_id")
    price_list = _price_list(svc)
    lines = tuple(_line(price_list, spec) for spec in cmd.lines)
    invoice = Invoice.draft(
        uuid4(),
        str(patient.id),
        cmd.currency or svc.billing.currency,
        Origin.MANUAL,
        actor.cause,
        doctor_id=str(doctor.id) if doctor is not None else None,
        lines=lines,
    )
    return Outcome(str(invoice.id), svc.store.save(invoice), created=True)


def _editing(svc: Services, invoice_id: str, actor: Actor, what: str) -> Invoice:
    _admin(actor, what)
    return _invoice(svc, invoice_id)


def add_line(svc: Services, cmd: AddLine, actor: Actor) -> Outcome:
    line_id: list[str] = []

    def act(invoice: Invoice) -> None:
        line, line_currency = _line(_price_list(svc), cmd.line)
        invoice.add_line(line, line_currency, actor.cause)
        line_id[:] = [line.line_id]

    outcome = change(svc.store, lambda: _editing(svc, cmd.invoice_id, actor, "edit invoices"), act)
    return LineOutcome(outcome.id, outcome.position, created=True, line_id=line_id[0])


def remove_line(svc: Services, cmd: RemoveLine, actor: Actor) -> Outcome:
    return change(
        svc.store, lambda: _editing(svc, cmd.invoice_id, actor, "edit invoices"), lambda i: i.remove_line(cmd.line_id, actor.cause)
    )


def set_discount(svc: Services, cmd: SetDiscount, actor: Actor) -> Outcome:
    def act(invoice: Invoice) -> None:
        discount = (
            Discount.of(cmd.kind, cmd.value, cmd.reason, invoice.currency) if cmd.kind is not None and cmd.value is not None else None
        )
        if cmd.kind is not None and cmd.value is None:
            raise InvalidInputError("A discount needs a value.", field="value")
        if cmd.line_id is not None:
            invoice.discount_line(cmd.line_id, discount, actor.cause)
        else:
            invoice.discount_invoice(discount, actor.cause)

    return change(svc.store, lambda: _editing(svc, cmd.invoice_id, actor, "give discounts"), act)


def _take_number(svc: Services, series: Series, moment: datetime, document_id: str, cause: Cause) -> tuple[DocumentNumbers, str]:
    year = svc.billing.local_date(moment).year
    stream_id = numbers_id(svc.billing.clinic, series, year)
    numbers = svc.store.find(DocumentNumbers, stream_id)
    if numbers is None:
        numbers = DocumentNumbers(id=stream_id, clinic=svc.billing.clinic, series=series.value, year=year)
    return numbers, numbers.take(document_id, cause)


def issue_invoice(svc: Services, cmd: IssueInvoice, actor: Actor) -> Outcome:
    """Issues a draft under the next number of the clinic's year: the number and the invoice are saved together,
    so concurrent issues take consecutive numbers and a failed issue takes none."""
    _admin(actor, "issue invoices")

    def decide() -> Outcome:
        invoice = _invoice(svc, cmd.invoice_id)
        if invoice.number is not None:
            return IssueOutcome(str(invoice.id), None, number=invoice.number)
        invoice.check_issuable()
        now = svc.clock()
        numbers, number = _take_number(svc, Series.INVOICE, now, str(invoice.id), actor.cause)
        invoice.issue(number, now, svc.billing.local_date(now) + svc.billing.payment_terms, actor.cause)
        return IssueOutcome(str(invoice.id), svc.store.save(invoice, numbers), number=number)

    return retrying(svc.store, decide)


def issue_credit_note(svc: Services, cmd: IssueCreditNote, actor: Actor) -> Outcome:
    """A credit note for some or all of an issued invoice, under the next credit note number."""
    _admin(actor, "issue credit notes")
    wanted = None if cmd.lines is None else {line_id: quantity(q, "lines") for line_id, q in cmd.lines}
    if wanted is not None and (not wanted or len(wanted) != len(cmd.lines or ())):
        raise InvalidInputError("Name each line once, or leave lines out to credit everything.", field="lines")
    credit_note_id = str(uuid4())

    def decide() -> Outcome:
        invoice = _invoice(svc, cmd.invoice_id)
        credited: tuple[CreditedLine, ...] = invoice.credit_lines(wanted)
        now = svc.clock()
        numbers, number = _take_number(svc, Series.CREDIT_NOTE, now, credit_note_id, actor.cause)
        invoice.credit(credit_note_id, number, credited, cmd.reason, now, actor.cause)
        total = sum((c.taxable + c.tax for c in credited), Decimal(0))
        position = svc.store.save(invoice, numbers)
        return CreditNoteOutcome(str(invoice.id), position, created=True, credit_note_id=credit_note_id, number=number, total=str(total))

    return retrying(svc.store, decide)


def record_payment(svc: Services, cmd: RecordPayment, actor: Actor) -> Outcome:
    """Records a payment at the desk (admins) or from the gateway (the system). The external reference is claimed
    in the same transaction, so the same reference twice, at once or later, on this invoice or another, is one payment."""
    _admin(actor, "record payments")
    reference = cmd.reference.strip()
    if not reference:
        raise InvalidInputError("A payment carries its external reference.", field="reference")
    reference_id = payment_reference_id(cmd.method, reference)

    def decide() -> Outcome:
        invoice, claimed = svc.store.find_all((Invoice, cmd.invoice_id), (PaymentReference, reference_id))
        if invoice is None:
            raise RecordNotFoundError(f"No invoice {cmd.invoice_id}.")
        if claimed is not None and claimed.invoice_id != str(invoice.id):
            raise PaymentReferenceReusedError(
                f"Reference {reference} was recorded on another invoice.", current=invoice.summary()
            )
        payment_id = str(stable_id("payment", reference_id))
        recorded = invoice.record_payment(
            payment_id,
            reference,
            cmd.method,
            cmd.amount,
            cmd.currency,
            cmd.received_at or svc.clock(),
            actor.cause,
            as_account_credit=cmd.as_account_credit,
            payer=cmd.payer,
            claim_reference=cmd.claim_reference,
        )
        claim = PaymentReference(id=reference_id, reference=reference, invoice_id=str(invoice.id), payment_id=payment_id) if claimed is None else None
        position = svc.store.save(invoice, claim)
        return PaymentOutcome(str(invoice.id), position, created=claimed is None, payment_id=recorded, balance=str(invoice.balance))

    return retrying(svc.store, decide)


def refund_payment(svc: Services, cmd: RefundPayment, actor: Actor) -> Outcome:
    refund_id = str(uuid4())
    return change(
        svc.store,
        lambda: _editing(svc, cmd.invoice_id, actor, "refund payments"),
        lambda i: i.refund(refund_id, cmd.amount, cmd.method, cmd.reason, svc.clock(), actor.cause, payment_id=cmd.payment_id),
    )


def void_invoice(svc: Services, cmd: VoidInvoice, actor: Actor) -> Outcome:
    return change(
        svc.store, lambda: _editing(svc, cmd.invoice_id, actor, "void invoices"), lambda i: i.void(cmd.reason, svc.clock(), actor.cause)
    )


def write_off(svc: Services, cmd: WriteOff, actor: Actor) -> Outcome:
    return change(
        svc.store,
        lambda: _editing(svc, cmd.invoice_id, actor, "write off balances"),
        lambda i: i.write_off_balance(cmd.reason, svc.clock(), actor.cause),
    )


# -- the drafting policy's commands: idempotent, keyed by the visit ------------------------------------------------


def _draft_once(svc: Services, invoice: Invoice) -> Outcome:
    """Saves a policy's draft unless that visit's draft exists already (its id is derived from the visit)."""
    try:
        return Outcome(str(invoice.id), svc.store.save(invoice), created=True)
    except IntegrityError:
        if svc.store.find(Invoice, invoice.id) is None:
            raise
        return Outcome(str(invoice.id), None)


def draft_for_visit(svc: Services, appointment_id: str, cause: Cause) -> Outcome | None:
    """The draft of a completed visit: one line at the doctor's consultation fee (taxed by the price list's
    consultation service, untaxed if it lists none). None when the appointment is unknown or was not attended."""
    invoice_id = visit_invoice_id(appointment_id)
    appointment, existing, prices = svc.store.find_all(
        (Appointment, appointment_id), (Invoice, invoice_id), (PriceList, price_list_id(svc.billing.clinic))
    )
    if existing is not None:
        return Outcome(str(invoice_id), None)
    if appointment is None or appointment.status not in VISITED:
        return None
    doctor = load(svc.store, Doctor, appointment.doctor_id, "doctor")
    price_list = _price_list(svc, prices)
    service = price_list.services.get(CONSULTATION)
    rate = price_list.rate(service.tax_category) if service is not None else Decimal(0)
    line = Line(
        line_id=str(stable_id("visit-line", str(appointment.id))),
        service_code=CONSULTATION,
        description=f"Consultation, {doctor.profile.get('name', 'doctor')}, {svc.billing.local_date(appointment.start).isoformat()}",
        quantity=Decimal(1),
        unit_price=Decimal(str(doctor.profile["consultation_fee"])),
        tax_rate=rate,
    )
    invoice = Invoice.draft(
        invoice_id,
        appointment.patient_id,
        svc.billing.currency,
        Origin.VISIT,
        cause,
        doctor_id=appointment.doctor_id,
        appointment_id=str(appointment.id),
        lines=((line, svc.billing.currency),),
    )
    return _draft_once(svc, invoice)


def draft_for_signed_consultation(svc: Services, consultation_id: str, cause: Cause) -> Outcome | None:
    consultation = svc.store.find(Consultation, consultation_id)
    if consultation is None or consultation.appointment_id is None:
        return None
    return draft_for_visit(svc, consultation.appointment_id, cause)


def draft_no_show_fee(svc: Services, appointment_id: str, cause: Cause) -> Outcome | None:
    """The no-show fee's draft, when the clinic charges one. None when it does not, the appointment is unknown, or
    it is no longer a no-show (corrected to attended before the policy came to it)."""
    fee = svc.billing.no_show_fee
    if not fee:
        return None
    invoice_id = no_show_invoice_id(appointment_id)
    appointment, existing, prices = svc.store.find_all(
        (Appointment, appointment_id), (Invoice, invoice_id), (PriceList, price_list_id(svc.billing.clinic))
    )
    if existing is not None:
        return Outcome(str(invoice_id), None)
    if appointment is None or appointment.status != AppointmentStatus.NO_SHOW:
        return None
    price_list = _price_list(svc, prices)
    service = price_list.services.get(NO_SHOW)
    rate = price_list.rate(service.tax_category) if service is not None else Decimal(0)
    line = Line(
        line_id=str(stable_id("no-show-line", str(appointment.id))),
        service_code=NO_SHOW,
        description=f"Missed appointment, {svc.billing.local_date(appointment.start).isoformat()}",
        quantity=Decimal(1),
        unit_price=fee,
        tax_rate=rate,
    )
    invoice = Invoice.draft(
        invoice_id,
        appointment.patient_id,
        svc.billing.currency,
        Origin.NO_SHOW,
        cause,
        doctor_id=appointment.doctor_id,
        appointment_id=str(appointment.id),
        lines=((line, svc.billing.currency),),
    )
    return _draft_once(svc, invoice)
