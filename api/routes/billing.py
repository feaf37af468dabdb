"""Billing commands: the price list, drafting, lines and discounts, issuing, credit notes, payments, refunds, void, write-off."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from api.billing_requests import (
    CreditNoteResult,
    CreditNoteWrite,
    DiscountWrite,
    InvoiceDraft,
    IssueResult,
    LineResult,
    LineWrite,
    PaymentResult,
    PaymentWrite,
    ReasonWrite,
    RefundWrite,
    ServiceWrite,
    TaxCategoryWrite,
)
from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, run_handler
from api.json_body import StrictJSONRoute
from api.responses import Refusal, command, errors
from api.schemas import CommandResult
from commands import billing as commands
from commands.billing import price_list_id
from domain.price_list import PriceList
from domain.shared import ForbiddenError, Role

CodePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Lower-case letters, digits, _ . -")]

router = APIRouter(tags=["billing"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))

SERVICE_RULES = (
    Refusal("tax_category", "a tax category the price list does not have"),
    Refusal("currency", "not an ISO 4217 code"),
    Refusal("price", "more decimals than the currency's minor unit"),
)
LINE_RULES = (
    Refusal("service_code", "a service the price list does not have", "unknown_service"),
    Refusal("currency", "a service priced in another currency than the invoice's", "mixed_currencies"),
    Refusal("lines", "more than 100 lines on one invoice"),
    Refusal("quantity", "zero"),
)
DRAFT_RULES = (
    Refusal("patient_id", "no such patient"),
    Refusal("doctor_id", "no such doctor"),
    Refusal("currency", "not an ISO 4217 code"),
    *LINE_RULES,
)
DISCOUNT_RULES = (
    Refusal("value", "a percent over 100, or an amount over what it discounts, or with more decimals than the currency"),
    Refusal("line_id", "the invoice has no such line"),
    Refusal("lines", "an invoice discount on an invoice without lines"),
)
CREDIT_RULES = (Refusal("line_id", "the invoice has no such line"), Refusal("lines", "a line named twice, or a quantity of zero"))
PAYMENT_RULES = (
    Refusal("currency", "another currency than the invoice's", "mixed_currencies"),
    Refusal("amount", "zero, or more decimals than the currency's minor unit"),
    Refusal("payer", "an insurance payment without its payer or claim reference"),
)
REFUND_RULES = (Refusal("amount", "zero, or more decimals than the currency's minor unit"), Refusal("payment_id", "the invoice has no such payment"))


@router.get("/billing/price-list", responses=errors())
def price_list(actor: CurrentActor, m: MedledgerDep) -> dict[str, Any]:
    """The price list in force: tax categories with their rates, and every service listed (any signed-in role but analysts)."""
    if actor.is_(Role.ANALYST):
        raise ForbiddenError("Analysts see no billing records.")
    found = m.services.store.find(PriceList, price_list_id(m.services.billing.clinic))
    return found.view() if found is not None else {"tax_categories": [], "services": [], "version": 0}


@router.put("/billing/tax-categories/{category}", response_model=CommandResult, responses=command())
def set_tax_category(category: CodePath, body: TaxCategoryWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Set a tax category's rate, in percent (admins). Lines drafted earlier keep the rate they were drafted with."""
    return run_handler(m, request, actor, key, body, commands.set_tax_category, commands.SetTaxCategory(category, body.rate))


@router.put("/billing/services/{code}", response_model=CommandResult, responses=command(refusals=SERVICE_RULES))
def price_service(code: CodePath, body: ServiceWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """List a service or change its price (admins). Invoices keep the price they were drafted with."""
    cmd = commands.PriceService(code, body.name, body.kind, body.price, body.currency, body.tax_category)
    return run_handler(m, request, actor, key, body, commands.price_service, cmd)


@router.delete("/billing/services/{code}", response_model=CommandResult, responses=command(refusals=(LINE_RULES[0],)))
def retire_service(code: CodePath, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Take a service off the price list (admins); its history stays."""
    return run_handler(m, request, actor, key, None, commands.retire_service, commands.RetireService(code))


@router.post("/invoices", status_code=201, response_model=CommandResult, responses=command(refusals=DRAFT_RULES))
def draft(body: InvoiceDraft, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Draft an invoice by hand for a patient, from price-list services (admins). Visits are drafted automatically."""
    cmd = commands.DraftInvoice(body.patient_id, tuple(line.spec() for line in body.lines), body.doctor_id, body.currency)
    return run_handler(m, request, actor, key, body, commands.draft_invoice, cmd, 201)


@router.post("/invoices/{invoice_id}/lines", status_code=201, response_model=LineResult, responses=command(404, refusals=LINE_RULES))
def add_line(invoice_id: str, body: LineWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Add a line to a draft at the price list's current price (admins); send an Idempotency-Key."""
    return run_handler(m, request, actor, key, body, commands.add_line, commands.AddLine(invoice_id, body.spec()), 201)


@router.delete("/invoices/{invoice_id}/lines/{line_id}", response_model=CommandResult, responses=command(404))
def remove_line(invoice_id: str, line_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Remove a line from a draft (admins)."""
    return run_handler(m, request, actor, key, None, commands.remove_line, commands.RemoveLine(invoice_id, line_id))


@router.put("/invoices/{invoice_id}/discount", response_model=CommandResult, responses=command(404, refusals=DISCOUNT_RULES))
def discount_invoice(invoice_id: str, body: DiscountWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Discount a draft as a whole, by a percent or an amount, with a reason (admins); shared out across its lines before tax."""
    cmd = commands.SetDiscount(invoice_id, body.kind, body.value, body.reason)
    return run_handler(m, request, actor, key, body, commands.set_discount, cmd)


@router.delete("/invoices/{invoice_id}/discount", response_model=CommandResult, responses=command(404))
def clear_invoice_discount(invoice_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Take a draft's invoice discount away (admins)."""
    return run_handler(m, request, actor, key, None, commands.set_discount, commands.SetDiscount(invoice_id, None))


@router.put("/invoices/{invoice_id}/lines/{line_id}/discount", response_model=CommandResult, responses=command(404, refusals=DISCOUNT_RULES))
def discount_line(
    invoice_id: str, line_id: str, body: DiscountWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Discount one line of a draft, by a percent or an amount, with a reason (admins)."""
    cmd = commands.SetDiscount(invoice_id, body.kind, body.value, body.reason, line_id)
    return run_handler(m, request, actor, key, body, commands.set_discount, cmd)


@router.delete("/invoices/{invoice_id}/lines/{line_id}/discount", response_model=CommandResult, responses=command(404, refusals=DISCOUNT_RULES[1:2]))
def clear_line_discount(invoice_id: str, line_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Take a line's discount away (admins)."""
    return run_handler(m, request, actor, key, None, commands.set_discount, commands.SetDiscount(invoice_id, None, line_id=line_id))


@router.post("/invoices/{invoice_id}/issue", response_model=IssueResult, responses=command(404))
def issue(invoice_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Issue a draft under the clinic's next number of the year (e.g. 2026-000123), gapless also under concurrent
    issues; its lines are frozen from then on (admins). Issuing an issued invoice answers its number."""
    return run_handler(m, request, actor, key, None, commands.issue_invoice, commands.IssueInvoice(invoice_id))


@router.post("/invoices/{invoice_id}/credit-notes", status_code=201, response_model=CreditNoteResult, responses=command(404, refusals=CREDIT_RULES))
def credit(invoice_id: str, body: CreditNoteWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Correct an issued invoice with a credit note for some lines' quantities, or everything left (admins); send an Idempotency-Key."""
    lines = tuple((line.line_id, line.quantity) for line in body.lines) if body.lines is not None else None
    return run_handler(m, request, actor, key, body, commands.issue_credit_note, commands.IssueCreditNote(invoice_id, body.reason, lines), 201)


@router.post("/invoices/{invoice_id}/payments", status_code=201, response_model=PaymentResult, responses=command(404, refusals=PAYMENT_RULES))
def pay(invoice_id: str, body: PaymentWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Record a payment (admins, at the desk): 201 when recorded, 200 when its reference was recorded before (the same
    payment). More than is owed answers 409 overpayment unless as_account_credit."""
    cmd = commands.RecordPayment(
        invoice_id, body.reference, body.method, body.amount, body.currency, body.received_at, body.as_account_credit, body.payer, body.claim_reference
    )
    return run_handler(m, request, actor, key, body, commands.record_payment, cmd, 201)


@router.post("/invoices/{invoice_id}/refunds", response_model=CommandResult, responses=command(404, refusals=REFUND_RULES))
def refund(invoice_id: str, body: RefundWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Refund money paid on the invoice, never more than paid net of earlier refunds, with a reason (admins); send an Idempotency-Key."""
    cmd = commands.RefundPayment(invoice_id, body.amount, body.method, body.reason, body.payment_id)
    return run_handler(m, request, actor, key, body, commands.refund_payment, cmd)


@router.post("/invoices/{invoice_id}/void", response_model=CommandResult, responses=command(404))
def void(invoice_id: str, body: ReasonWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Void an issued invoice with nothing paid on it, with a reason (admins); its number stays used."""
    return run_handler(m, request, actor, key, body, commands.void_invoice, commands.VoidInvoice(invoice_id, body.reason))


@router.post("/invoices/{invoice_id}/write-off", response_model=CommandResult, responses=command(404))
def write_off(invoice_id: str, body: ReasonWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Write off what is owed on an issued invoice, with a reason (admins)."""
    return run_handler(m, request, actor, key, body, commands.write_off, commands.WriteOff(invoice_id, body.reason))
