"""Read-model tables of billing: invoices (with their document), money movements (payments and refunds), credit
notes, and the price list's services."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Date, DateTime, Index, Integer, Numeric, String, Table, Text

from projections.tables import metadata

Amount = Numeric(18, 3)

invoices = Table(
    "invoices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(32)),
    Column("patient_id", String(36), nullable=False),
    Column("doctor_id", String(36)),
    Column("appointment_id", String(36)),
    Column("status", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Amount, nullable=False),
    Column("charges", Amount, nullable=False),
    Column("paid", Amount, nullable=False),
    Column("refunded", Amount, nullable=False),
    Column("credited", Amount, nullable=False),
    Column("written_off", Amount, nullable=False),
    Column("balance", Amount, nullable=False),
    Column("drafted_at", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True)),
    Column("issue_date", Date),
    Column("due_date", Date),
    Column("document", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_invoices_number", "number"),
    Index("ix_invoices_patient_issued", "patient_id", "issued_at"),
    Index("ix_invoices_doctor_issued", "doctor_id", "issued_at"),
    Index("ix_invoices_status_issue_date", "status", "issue_date"),
    Index("ix_invoices_drafted", "drafted_at"),
)

owed = Table(
    "receivables",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("balance", Amount, nullable=False),
    Index("ix_receivables_issue_date", "issue_date", "currency"),
)
"""The open invoices with something owed, and only those: what the aging reads, narrow and no larger than what is owed."""

invoice_payments = Table(
    "invoice_payments",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("invoice_number", String(32)),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("doctor_id", String(36)),
    Column("method", String(16), nullable=False),
    Column("amount", Amount, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Index("ix_invoice_payments_at", "at"),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("number", String(32), nullable=False),
    Column("invoice_number", String(32)),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("total", Amount, nullable=False),
    Column("reason", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Index("ix_credit_notes_number", "number"),
)

price_list = Table(
    "price_list",
    metadata,
    Column("clinic", String(32), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("price", Amount, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tax_category", String(64), nullable=False),
    Column("tax_rate", Numeric(5, 2), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
