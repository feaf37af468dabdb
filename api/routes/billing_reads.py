"""Billing reads: invoices (search, one, its PDF and its credit notes' PDFs), a patient's statement, receivables by
age, the day's cash-up, and CSV exports of invoices and of payments and refunds."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import Connection

from api.billing_schemas import CashUpPublic, InvoicePublic, ReceivablesPublic, StatementPublic
from api.deps import CurrentActor, MedledgerDep, Paging, read_models
from api.invoice_pdf import Issuer, credit_note_pdf, invoice_pdf
from api.json_body import StrictJSONRoute
from api.responses import errors, query
from api.schemas import CalendarDay, Page, TimeZoneName, _bounded
from commands.base import Actor, RecordNotFoundError
from commands.invoice_access import billing_scope, invoice_reader, require_bookkeeper, statement_reader
from commands.read_log import record_reads
from domain.invoice import Status
from domain.read_log import Row, Shown
from domain.shared import InvalidTransitionError
from infrastructure.bootstrap import Medledger
from projections import billing as books

router = APIRouter(tags=["billing"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadBilling = Annotated[Connection, Depends(read_models({"billing"}))]
InvoiceNumber = _bounded(32, pattern=r"^[A-Za-z0-9-]+$")
CurrencyCode = Annotated[str, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
IssuedFrom = Annotated[CalendarDay | None, Query(alias="from", description="Issued on or after this date (UTC)")]
IssuedTo = Annotated[CalendarDay | None, Query(alias="to", description="Issued on or before this date (UTC)")]
CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "A header row, then one row per record."}
PDF = {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}, "description": "The document as PDF."}


def _shown(m: Medledger, actor: Actor, action: str, basis: str, found: list[tuple[str, str]]) -> None:
    record_reads(m.services, actor, action, [Row(patient_id, Shown.INVOICE, invoice_id, basis) for patient_id, invoice_id in found])


def _filter(
    actor: Actor, patient_id: str | None, doctor_id: str | None, status: Status | None, number: str | None, issued_from: Any, issued_to: Any
) -> books.InvoiceFilter | None:
    narrowed = billing_scope(actor).narrow(patient_id, doctor_id)
    if narrowed is None:
        return None
    return books.InvoiceFilter(*narrowed, status.value if status else None, number, issued_from, issued_to)


@router.get("/invoices", response_model=Page[InvoicePublic], responses=query())
def search_invoices(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadBilling,
    paging: Paging,
    patient_id: str | None = None,
    doctor_id: str | None = None,
    status: Status | None = None,
    number: Annotated[InvoiceNumber | None, Query(description="The invoice number, exactly")] = None,  # type: ignore[valid-type]
    issued_from: IssuedFrom = None,
    issued_to: IssuedTo = None,
) -> dict[str, Any]:
    """Search invoices, newest first: patients see their own, doctors those naming them, admins and auditors all;
    analysts none."""
    found_by = _filter(actor, patient_id, doctor_id, status, number, issued_from, issued_to)
    if found_by is None:
        return {"items": [], "total": 0, "page": paging.page, "page_size": paging.page_size}
    found = books.search_invoices(conn, found_by, paging.page, paging.page_size)
    _shown(m, actor, "invoice search", billing_scope(actor).basis, books.patients_of(found.items))
    return {"items": found.items, "total": found.total, "page": found.page, "page_size": found.page_size}


@router.get("/invoices.csv", response_class=Response, responses={**query(), 200: CSV})
def export_invoices(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadBilling,
    patient_id: str | None = None,
    doctor_id: str | None = None,
    status: Status | None = None,
    number: Annotated[InvoiceNumber | None, Query(description="The invoice number, exactly")] = None,  # type: ignore[valid-type]
    issued_from: IssuedFrom = None,
    issued_to: IssuedTo = None,
) -> Response:
    """The invoices of a search as CSV, newest first, amounts as plain decimals (admins and auditors)."""
    require_bookkeeper(actor)
    found_by = _filter(actor, patient_id, doctor_id, status, number, issued_from, issued_to)
    rows = books.invoice_rows(conn, found_by) if found_by else []
    _shown(m, actor, "invoice export", billing_scope(actor).basis, books.patients_of(rows))
    return _csv(books.INVOICE_COLUMNS, rows, "invoices.csv")


@router.get("/payments.csv", response_class=Response, responses={**query(), 200: CSV})
def export_payments(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadBilling,
    patient_id: str | None = None,
    doctor_id: str | None = None,
    kind: Literal["payment", "refund"] | None = None,
    day_from: Annotated[CalendarDay | None, Query(alias="from", description="Received on or after this date (UTC)")] = None,
    day_to: Annotated[CalendarDay | None, Query(alias="to", description="Received on or before this date (UTC)")] = None,
) -> Response:
    """Payments and refunds as CSV, oldest first, amounts as plain decimals (admins and auditors)."""
    require_bookkeeper(actor)
    start = datetime.combine(day_from, time(0), tzinfo=timezone.utc) if day_from else None
    end = datetime.combine(day_to + timedelta(days=1), time(0), tzinfo=timezone.utc) if day_to else None
    rows = books.payment_rows(conn, books.MovementFilter(patient_id, doctor_id, kind, start, end))
    _shown(m, actor, "payment export", billing_scope(actor).basis, books.patients_of(rows))
    return _csv(books.PAYMENT_COLUMNS, rows, "payments.csv")


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]], filename: str) -> Response:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([["" if row[c] is None else row[c] for c in columns] for row in rows])
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(text.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _readable(actor: Actor, conn: Connection, invoice_id: str) -> tuple[dict[str, Any], str]:
    return invoice_reader(actor, invoice_id, books.get_invoice(conn, invoice_id))


def _shown_invoice(m: Medledger, actor: Actor, action: str, basis: str, found: dict[str, Any]) -> None:
    _shown(m, actor, action, basis, [(found["patient_id"], found["id"])])


@router.get("/invoices/{invoice_id}", response_model=InvoicePublic, responses=query(404))
def get_invoice(invoice_id: str, actor: CurrentActor, m: MedledgerDep, conn: ReadBilling) -> dict[str, Any]:
    """One invoice: its lines with every amount, discounts, tax by rate, payments, refunds and credit notes."""
    found, basis = _readable(actor, conn, invoice_id)
    _shown_invoice(m, actor, "invoice", basis, found)
    return found


def _issuer(m: Medledger) -> Issuer:
    return Issuer(m.settings.clinic_name, m.settings.clinic_address, m.settings.clinic_tax_id)


def _pdf(content: bytes, filename: str) -> Response:
    return Response(content, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'})


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, responses={**query(404, 409), 200: PDF})
def invoice_document(invoice_id: str, actor: CurrentActor, m: MedledgerDep, conn: ReadBilling) -> Response:
    """The issued invoice as a PDF; a draft has none yet (409, with its current state)."""
    found, basis = _readable(actor, conn, invoice_id)
    if found["number"] is None:
        summary = {k: found[k] for k in ("id", "number", "status", "currency", "total", "balance", "version")}
        raise InvalidTransitionError("A draft has no invoice document; issue it first.", current=summary)
    _shown_invoice(m, actor, "invoice document", basis, found)
    return _pdf(invoice_pdf(found, _issuer(m)), f"invoice-{found['number']}.pdf")


@router.get("/invoices/{invoice_id}/credit-notes/{credit_note_id}/pdf", response_class=Response, responses={**query(404), 200: PDF})
def credit_note_document(invoice_id: str, credit_note_id: str, actor: CurrentActor, m: MedledgerDep, conn: ReadBilling) -> Response:
    """A credit note of the invoice as a PDF: what it credits, referring to the invoice by its number."""
    found, basis = _readable(actor, conn, invoice_id)
    note = next((n for n in found["credit_notes"] if n["credit_note_id"] == credit_note_id), None)
    if note is None:
        raise RecordNotFoundError(f"Invoice {invoice_id} has no credit note {credit_note_id}.")
    _shown_invoice(m, actor, "credit note document", basis, found)
    return _pdf(credit_note_pdf(found, note, _issuer(m)), f"credit-note-{note['number']}.pdf")


@router.get("/patients/{patient_id}/statement", response_model=StatementPublic, responses=query(404))
def statement(patient_id: str, actor: CurrentActor, m: MedledgerDep, conn: ReadBilling) -> dict[str, Any]:
    """A patient's issued invoices, payments, refunds and credit notes with the totals and the balance per currency
    (the patient, admins and auditors; a doctor sees the invoices naming them)."""
    patient_id, basis, doctor_id = statement_reader(m.services, actor, patient_id)
    answer = books.statement(conn, patient_id, doctor_id)
    if doctor_id is not None and not answer["invoices"]:
        raise RecordNotFoundError(f"No patient {patient_id}.")
    _shown(m, actor, "statement", basis, books.patients_of(answer["invoices"]))
    return answer


@router.get("/billing/receivables", response_model=ReceivablesPublic, responses=query())
def receivables(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadBilling,
    paging: Paging,
    as_of: Annotated[CalendarDay | None, Query(description="Age the balances as of this date (default: today, UTC)")] = None,
    bucket: Annotated[Literal["0-30", "31-60", "61-90", "90+"] | None, Query(description="List this bucket's invoices")] = None,
    currency: CurrencyCode | None = None,
) -> dict[str, Any]:
    """What is owed on open invoices, per currency, by days since the issue date: 0-30, 31-60, 61-90, over 90
    (admins and auditors). Balances are today's."""
    require_bookkeeper(actor)
    answer = books.receivables(conn, as_of or m.services.clock().date(), bucket, currency, paging.page, paging.page_size)
    listed = answer["invoices"]
    if listed is not None:
        _shown(m, actor, "receivables", billing_scope(actor).basis, books.patients_of(listed.items))
        answer["invoices"] = {"items": listed.items, "total": listed.total, "page": listed.page, "page_size": listed.page_size}
    return answer


@router.get("/billing/cash-up", response_model=CashUpPublic, responses=query())
def cash_up(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadBilling,
    day: Annotated[CalendarDay | None, Query(alias="date", description="The day (default: today in the time zone)")] = None,
    zone: Annotated[TimeZoneName | None, Query(alias="timezone", description="The day's time zone (default: the clinic's)")] = None,  # type: ignore[valid-type]
) -> dict[str, Any]:
    """The day's takings by currency and method: payments, refunds and net, with counts (admins and auditors)."""
    require_bookkeeper(actor)
    tz = ZoneInfo(zone or m.settings.clinic_timezone)
    return books.cash_up(conn, day or m.services.clock().astimezone(tz).date(), tz)
