"""The billing read models (invoices with their own view, payments and refunds, credit notes, the price list) and the
queries over them: invoice search, a patient's statement, receivables by age and the day's cash-up.

Dates here are UTC days: an invoice's issue date and a payment's day are the UTC dates of their moments, and a
cash-up's day is the whole day in the time zone it is asked for.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, case, delete, func, insert, literal, select, update

from domain.invoice import OPEN, Invoice, Status
from domain.money import round_money, text
from domain.price_list import PriceList
from projections.base import Projector
from projections.billing_tables import credit_notes, invoice_payments, invoices, owed, price_list
from projections.queries import Page, _page, _plain

PAYMENT = "payment"
REFUND = "refund"
MAX_EXPORT_ROWS = 50_000
RECENT_INVOICES = 10_000
"""Invoices the projector keeps as of their last event it wrote, to apply the next one without loading it."""


def _utc(moment: datetime | str) -> datetime:
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(timezone.utc)


class InvoiceRecords(Projector):
    name = "billing"
    tables = (invoices, owed, invoice_payments, credit_notes)

    def __init__(self) -> None:
        topics = [
            Invoice.Drafted,
            Invoice.LineAdded,
            Invoice.LineRemoved,
            Invoice.LineDiscounted,
            Invoice.Discounted,
            Invoice.Issued,
            Invoice.CreditNoteIssued,
            Invoice.PaymentRecorded,
            Invoice.Refunded,
            Invoice.Voided,
            Invoice.WrittenOff,
        ]
        self.handlers = {event_class.TOPIC: self.write for event_class in topics}
        self._recent: OrderedDict[UUID, Invoice] = OrderedDict()
        self._recent_lock = threading.Lock()  # a rebuild may run beside the live loop in the same process

    def _invoice_at(self, e: Any) -> Invoice:
        """The invoice as of this event: the one written at its previous event moved on by this event, or else
        loaded from the store (a first sight, or a batch applied again after a rollback)."""
        with self._recent_lock:
            known = self._recent.pop(e.originator_id, None)
        if known is not None and known.version == e.originator_version - 1:
            invoice: Invoice = e.mutate(known)
        else:
            invoice = self.load(e.originator_id, e.originator_version)
        with self._recent_lock:
            self._recent[e.originator_id] = invoice
            if len(self._recent) > RECENT_INVOICES:
                self._recent.popitem(last=False)
        return invoice

    def erase_patient(self, conn: Connection, event: Any) -> None:
        super().erase_patient(conn, event)
        with self._recent_lock:
            for invoice_id in [i for i, invoice in self._recent.items() if invoice.patient_id == event.patient_id]:
                del self._recent[invoice_id]

    def write(self, conn: Connection, e: Any) -> None:
        invoice = self._invoice_at(e)
        view = invoice.view()
        invoice_id = view["id"]
        issued_at = _utc(view["issued_at"]) if view["issued_at"] else None
        values = {
            "number": view["number"],
            "patient_id": view["patient_id"],
            "doctor_id": view["doctor_id"],
            "appointment_id": view["appointment_id"],
            "status": view["status"],
            "currency": view["currency"],
            "total": Decimal(view["total"]),
            "charges": invoice.charges,
            "paid": Decimal(view["paid"]),
            "refunded": Decimal(view["refunded"]),
            "credited": Decimal(view["credited"]),
            "written_off": Decimal(view["written_off"]),
            "balance": Decimal(view["balance"]),
            "drafted_at": _utc(view["drafted_at"]),
            "issued_at": issued_at,
            "issue_date": date.fromisoformat(view["issue_date"]) if view["issue_date"] else None,
            "due_date": date.fromisoformat(view["due_date"]) if view["due_date"] else None,
            "document": view,
            "version": view["version"],
            "updated_at": e.timestamp,
        }
        moved = conn.execute(update(invoices).where(invoices.c.id == invoice_id).values(**values))
        if moved.rowcount == 0:
            conn.execute(insert(invoices).values(id=invoice_id, **values))
        self._receivable(conn, invoice_id, values)
        owner = {"invoice_id": invoice_id, "patient_id": view["patient_id"], "currency": view["currency"]}
        if isinstance(e, Invoice.PaymentRecorded):
            payment, at = e.payment, _utc(e.payment["received_at"])
            self._movement(conn, view, PAYMENT, payment["payment_id"], payment["method"], payment["amount"], at)
        elif isinstance(e, Invoice.Refunded):
            refund, at = e.refund, _utc(e.refund["refunded_at"])
            self._movement(conn, view, REFUND, refund["refund_id"], refund["method"], refund["amount"], at)
        elif isinstance(e, Invoice.CreditNoteIssued):
            note = next(n for n in view["credit_notes"] if n["credit_note_id"] == e.credit_note_id)
            conn.execute(
                insert(credit_notes).values(
                    id=note["credit_note_id"],
                    number=note["number"],
                    invoice_number=view["number"],
                    total=Decimal(note["total"]),
                    reason=note["reason"],
                    issued_at=_utc(note["issued_at"]),
                    **owner,
                )
            )

    @staticmethod
    def _receivable(conn: Connection, invoice_id: str, values: dict[str, Any]) -> None:
        still_owed = values["status"] in {s.value for s in OPEN} and values["balance"] > 0 and values["issue_date"] is not None
        if not still_owed:
            conn.execute(delete(owed).where(owed.c.invoice_id == invoice_id))
            return
        row = {"balance": values["balance"], "issue_date": values["issue_date"], "currency": values["currency"]}
        if conn.execute(update(owed).where(owed.c.invoice_id == invoice_id).values(**row)).rowcount == 0:
            conn.execute(insert(owed).values(invoice_id=invoice_id, patient_id=values["patient_id"], **row))

    @staticmethod
    def _movement(conn: Connection, view: dict[str, Any], kind: str, movement_id: str, method: str, amount: str, at: datetime) -> None:
        conn.execute(
            insert(invoice_payments).values(
                invoice_id=view["id"],
                kind=kind,
                id=movement_id,
                invoice_number=view["number"],
                patient_id=view["patient_id"],
                doctor_id=view["doctor_id"],
                method=method,
                amount=Decimal(amount),
                currency=view["currency"],
                at=at,
                day=at.date(),
            )
        )


class PriceListRecords(Projector):
    """The services each clinic's price list offers now, with their price and tax rate."""

    name = "price_list"
    tables = (price_list,)

    def __init__(self) -> None:
        topics = [PriceList.TaxCategorySet, PriceList.ServicePriced, PriceList.ServiceRetired]
        self.handlers = {event_class.TOPIC: self.write for event_class in topics}
        self.handlers[PriceList.Opened.TOPIC] = lambda conn, e: None

    def write(self, conn: Connection, e: Any) -> None:
        listing: PriceList = self.load(e.originator_id, e.originator_version)
        conn.execute(delete(price_list).where(price_list.c.clinic == listing.clinic))
        services = listing.view()["services"]
        if services:
            conn.execute(
                insert(price_list),
                [
                    {
                        "clinic": listing.clinic,
                        "code": s["code"],
                        "name": s["name"],
                        "kind": s["kind"],
                        "price": Decimal(s["price"]),
                        "currency": s["currency"],
                        "tax_category": s["tax_category"],
                        "tax_rate": Decimal(s["tax_rate"]),
                        "updated_at": e.timestamp,
                    }
                    for s in services
                ],
            )


def services(conn: Connection, clinic: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(price_list).where(price_list.c.clinic == clinic).order_by(price_list.c.code)).mappings()
    return [
        {**_plain(row), "price": text(round_money(row["price"], row["currency"])), "tax_rate": text(row["tax_rate"].quantize(Decimal("0.01")))}
        for row in rows
    ]


# Invoices


def get_invoice(conn: Connection, invoice_id: str) -> dict[str, Any] | None:
    document = conn.execute(select(invoices.c.document).where(invoices.c.id == invoice_id)).scalar_one_or_none()
    return dict(document) if document is not None else None


@dataclass(frozen=True)
class InvoiceFilter:
    patient_id: str | None = None
    doctor_id: str | None = None
    status: str | None = None
    number: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    """Issued on or before this date."""

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.patient_id:
            query = query.where(invoices.c.patient_id == self.patient_id)
        if self.doctor_id:
            query = query.where(invoices.c.doctor_id == self.doctor_id)
        if self.status:
            query = query.where(invoices.c.status == self.status)
        if self.number:
            query = query.where(invoices.c.number == self.number)
        if self.issued_from:
            query = query.where(invoices.c.issue_date >= self.issued_from)
        if self.issued_to:
            query = query.where(invoices.c.issue_date <= self.issued_to)
        return query


NEWEST_FIRST = (func.coalesce(invoices.c.issued_at, invoices.c.drafted_at).desc(), invoices.c.id)


def search_invoices(conn: Connection, found: InvoiceFilter, page: int, page_size: int) -> Page:
    """Invoices, newest first (by issue, else by drafting), as their documents."""
    result = _page(conn, found.apply(select(invoices.c.document).order_by(*NEWEST_FIRST)), page, page_size)
    return Page([dict(row["document"]) for row in result.items], result.total, result.page, result.page_size)


INVOICE_COLUMNS = (
    "id", "number", "status", "patient_id", "doctor_id", "appointment_id", "currency", "total", "paid", "refunded",
    "credited", "written_off", "balance", "drafted_at", "issued_at", "due_date",
)  # fmt: skip


def invoice_rows(conn: Connection, found: InvoiceFilter) -> list[dict[str, Any]]:
    """The search's invoices as flat rows (amounts as plain decimal strings), newest first, for an export."""
    query = found.apply(select(invoices.c.document).order_by(*NEWEST_FIRST)).limit(MAX_EXPORT_ROWS)
    return [{column: document[column] for column in INVOICE_COLUMNS} for document in conn.execute(query).scalars()]


@dataclass(frozen=True)
class MovementFilter:
    patient_id: str | None = None
    doctor_id: str | None = None
    kind: str | None = None
    start: datetime | None = None
    end: datetime | None = None


PAYMENT_COLUMNS = ("kind", "id", "invoice_id", "invoice_number", "patient_id", "doctor_id", "method", "amount", "currency", "at")


def payment_rows(conn: Connection, found: MovementFilter) -> list[dict[str, Any]]:
    """Payments and refunds, oldest first, as flat rows (amounts as plain decimal strings), for an export."""
    p = invoice_payments.c
    query = select(invoice_payments).order_by(p.at, p.invoice_id, p.kind, p.id).limit(MAX_EXPORT_ROWS)
    if found.patient_id:
        query = query.where(p.patient_id == found.patient_id)
    if found.doctor_id:
        query = query.where(p.doctor_id == found.doctor_id)
    if found.kind:
        query = query.where(p.kind == found.kind)
    if found.start:
        query = query.where(p.at >= found.start.astimezone(timezone.utc))
    if found.end:
        query = query.where(p.at < found.end.astimezone(timezone.utc))
    rows = []
    for row in conn.execute(query).mappings():
        values = _plain(row)
        values["amount"] = text(round_money(values["amount"], values["currency"]))
        values["at"] = values["at"].isoformat()
        rows.append({column: values[column] for column in PAYMENT_COLUMNS})
    return rows


# A patient's statement

STATEMENT_SUMS = ("charged", "paid", "refunded", "credited", "written_off")


def statement(conn: Connection, patient_id: str, doctor_id: str | None = None) -> dict[str, Any]:
    """A patient's issued invoices (of one doctor, if given) with their payments, refunds and credit notes, and per
    currency: charged, paid, refunded, credited, written off, balance = charged - paid + refunded - credited -
    written off, what is owed (the invoices' positive balances) and the account credit (money owed back)."""
    query = select(invoices.c.document).where(invoices.c.patient_id == patient_id, invoices.c.status != Status.DRAFT.value)
    if doctor_id is not None:
        query = query.where(invoices.c.doctor_id == doctor_id)
    documents = [dict(d) for d in conn.execute(query.order_by(invoices.c.issued_at, invoices.c.id)).scalars()]
    sums: dict[str, dict[str, Decimal]] = {}
    for d in documents:
        total = sums.setdefault(d["currency"], {name: Decimal(0) for name in (*STATEMENT_SUMS, "owed", "account_credit")})
        balance = Decimal(d["balance"])
        total["charged"] += Decimal(0) if d["status"] == Status.VOID.value else Decimal(d["total"])
        for name in ("paid", "refunded", "credited", "written_off"):
            total[name] += Decimal(d[name])
        total["owed"] += max(balance, Decimal(0))
        total["account_credit"] += max(-balance, Decimal(0))

    def listed(key: str, moment: str) -> list[dict[str, Any]]:
        """Every invoice's entries of one kind, each naming its invoice, in time order."""
        entries = [{**item, "invoice_id": d["id"], "invoice_number": d["number"], "currency": d["currency"]} for d in documents for item in d[key]]
        return sorted(entries, key=lambda item: (_utc(item[moment]), item["invoice_id"]))

    return {
        "patient_id": patient_id,
        "invoices": documents,
        "payments": listed("payments", "received_at"),
        "refunds": listed("refunds", "refunded_at"),
        "credit_notes": listed("credit_notes", "issued_at"),
        "totals": [
            {
                "currency": code,
                **{name: text(round_money(value, code)) for name, value in total.items()},
                "balance": text(
                    round_money(total["charged"] - total["paid"] + total["refunded"] - total["credited"] - total["written_off"], code)
                ),
            }
            for code, total in sorted(sums.items())
        ],
    }


# Receivables

BUCKETS = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))
BUCKET_NAMES = tuple(name for name, _, _ in BUCKETS)


def _bucket_of(as_of: date) -> Any:
    """The aging bucket of an invoice by the days from its issue date to as_of."""
    return case(
        *((owed.c.issue_date >= as_of - timedelta(days=last), literal(name)) for name, _, last in BUCKETS if last is not None),
        else_=literal(BUCKETS[-1][0]),
    )


def _receivable(as_of: date) -> Any:
    return (owed.c.issue_date <= as_of,)


def receivables(
    conn: Connection, as_of: date, bucket: str | None = None, currency: str | None = None, page: int = 1, page_size: int = 20
) -> dict[str, Any]:
    """What is owed on open invoices issued on or before as_of, by currency and by age (days since the issue date:
    0-30, 31-60, 61-90, over 90); with a bucket, that bucket's invoices too (oldest first, paginated).

    Balances are today's: a payment recorded after as_of lowers them too."""
    bucket_of = _bucket_of(as_of)
    grouped = (
        select(owed.c.currency, bucket_of.label("bucket"), func.count(), func.sum(owed.c.balance))
        .where(*_receivable(as_of))
        .group_by(owed.c.currency, bucket_of)
    )
    found: dict[str, dict[str, tuple[int, Decimal]]] = {}
    for code, name, count, amount in conn.execute(grouped):
        found.setdefault(code, {})[name] = (count, Decimal(amount))
    currencies = []
    for code, by_bucket in sorted(found.items()):
        zero = round_money(Decimal(0), code)
        buckets = [
            {"bucket": name, "count": by_bucket.get(name, (0, zero))[0], "amount": text(round_money(by_bucket.get(name, (0, zero))[1], code))}
            for name in BUCKET_NAMES
        ]
        total = sum((round_money(amount, code) for _, amount in by_bucket.values()), zero)
        currencies.append({"currency": code, "buckets": buckets, "count": sum(b["count"] for b in buckets), "total": text(total)})
    answer: dict[str, Any] = {"as_of": as_of.isoformat(), "currencies": currencies, "invoices": None}
    if bucket is not None:
        query = (
            select(invoices.c.document)
            .select_from(owed.join(invoices, invoices.c.id == owed.c.invoice_id))
            .where(*_receivable(as_of), bucket_of == bucket)
        )
        if currency:
            query = query.where(owed.c.currency == currency)
        listed = _page(conn, query.order_by(owed.c.issue_date, owed.c.invoice_id), page, page_size)
        answer["invoices"] = Page([dict(row["document"]) for row in listed.items], listed.total, listed.page, listed.page_size)
    return answer


# Cash-up


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The day from its midnight to the next in that time zone, as UTC moments."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def cash_up(conn: Connection, day: date, zone: ZoneInfo) -> dict[str, Any]:
    """The day's takings (the whole day in the zone) by currency and method: payments, refunds, net, with counts."""
    start, end = day_bounds(day, zone)
    p = invoice_payments.c
    grouped = (
        select(p.currency, p.method, p.kind, func.count(), func.sum(p.amount))
        .where(p.at >= start, p.at < end)
        .group_by(p.currency, p.method, p.kind)
    )
    found: dict[str, dict[str, dict[str, tuple[int, Decimal]]]] = {}
    for code, method, kind, count, amount in conn.execute(grouped):
        found.setdefault(code, {}).setdefault(method, {})[kind] = (count, round_money(Decimal(amount), code))
    currencies = []
    for code, by_method in sorted(found.items()):
        zero = round_money(Decimal(0), code)
        methods = []
        for method, kinds in sorted(by_method.items()):
            paid_count, paid = kinds.get(PAYMENT, (0, zero))
            refund_count, refunded = kinds.get(REFUND, (0, zero))
            methods.append(
                {"method": method, "payments": paid_count, "paid": paid, "refunds": refund_count, "refunded": refunded, "net": paid - refunded}
            )
        currencies.append(
            {
                "currency": code,
                "methods": [{**m, **{k: text(m[k]) for k in ("paid", "refunded", "net")}} for m in methods],
                "payments": sum(m["payments"] for m in methods),
                "refunds": sum(m["refunds"] for m in methods),
                "paid": text(sum((m["paid"] for m in methods), zero)),
                "refunded": text(sum((m["refunded"] for m in methods), zero)),
                "net": text(sum((m["net"] for m in methods), zero)),
            }
        )
    return {"date": day.isoformat(), "timezone": zone.key, "start": start, "end": end, "currencies": currencies}


def patients_of(items: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(patient id, invoice id) of each listed invoice or movement: the read log rows of an answer."""
    return [(item["patient_id"], item.get("invoice_id") or item["id"]) for item in items]
