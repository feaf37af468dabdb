"""Read-model tables of the medical record: care (relationships, visits, emergency access), consultations and
prescriptions.

Rich records keep the aggregate's own view as a JSON document beside the columns that are searched.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Float, Index, Integer, String, Table, Text

from projections.tables import metadata

care_relationships = Table(
    "care_relationships",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("doctor_id", String(36), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("referring_doctor_id", String(36)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", Text),
)

care_visits = Table(
    "care_visits",
    metadata,
    Column("appointment_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("doctor_id", String(36), nullable=False),
    Column("access", String(16), nullable=False),
    Column("ends_at", DateTime(timezone=True)),
    Index("ix_care_visits_doctor_access", "doctor_id", "access", "ends_at"),
)

emergency_access = Table(
    "emergency_access",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("doctor_id", String(36), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

consultations = Table(
    "consultations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False),
    Column("doctor_id", String(36), nullable=False),
    Column("appointment_id", String(36)),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("signed_at", DateTime(timezone=True)),
    Column("chief_complaint", Text),
    Column("document", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_consultations_patient_started", "patient_id", "started_at"),
    Index("ix_consultations_doctor_started", "doctor_id", "started_at"),
)

consultation_diagnoses = Table(
    "consultation_diagnoses",
    metadata,
    Column("consultation_id", String(36), primary_key=True),
    Column("entry_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("doctor_id", String(36), nullable=False),
    Column("code", String(8), nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("rank", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("consultation_started_at", DateTime(timezone=True), nullable=False),
)

vital_signs = Table(
    "vital_signs",
    metadata,
    Column("consultation_id", String(36), primary_key=True),
    Column("entry_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False),
    Column("measured_at", DateTime(timezone=True), nullable=False),
    Column("systolic", Float),
    Column("diastolic", Float),
    Column("pulse", Float),
    Column("temperature", Float),
    Column("respiratory_rate", Float),
    Column("spo2", Float),
    Column("weight", Float),
    Column("height", Float),
    Column("flags", JSON, nullable=False),
    Index("ix_vital_signs_patient_measured", "patient_id", "measured_at"),
)

prescriptions = Table(
    "prescriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False),
    Column("doctor_id", String(36), nullable=False),
    Column("consultation_id", String(36), nullable=False, index=True),
    Column("status", String(24), nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True)),
    Column("valid_until", Date),
    Column("renewed_from", String(36)),
    Column("renewed_by", String(36)),
    Column("hazard_flagged", Boolean, nullable=False),
    Column("document", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_prescriptions_patient_written", "patient_id", "written_at"),
    Index("ix_prescriptions_doctor_written", "doctor_id", "written_at"),
    Index("ix_prescriptions_status", "status"),
)

prescription_items = Table(
    "prescription_items",
    metadata,
    Column("prescription_id", String(36), primary_key=True),
    Column("item_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("medication", String(200), nullable=False, index=True),
    Column("strength", String(100), nullable=False),
    Column("form", String(50), nullable=False),
    Column("dose", String(100), nullable=False),
    Column("route", String(50), nullable=False),
    Column("frequency", String(50), nullable=False),
    Column("duration_days", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("refills", Integer, nullable=False),
    Column("instructions", Text, nullable=False),
)

record_reads = Table(
    "record_reads",
    metadata,
    Column("read_id", String(36), primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("read_at", DateTime(timezone=True), nullable=False),
    Column("patient_id", String(36), nullable=False),
    Column("shown", String(16), nullable=False),
    Column("record_id", String(36), nullable=False),
    Column("basis", String(16), nullable=False),
    Column("emergency", Boolean, nullable=False),
    Column("reader_id", String(64), nullable=False),
    Column("reader_role", String(16), nullable=False),
    Column("action", String(40), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Index("ix_record_reads_patient", "patient_id", "read_at"),
    Index("ix_record_reads_reader", "reader_id", "read_at"),
)
