"""The read-model tables, one group per projector, plus the positions the projectors have reached."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Date, DateTime, Index, Integer, MetaData, Numeric, String, Table, Text

metadata = MetaData()

positions = Table(
    "projection_positions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, index=True),
    Column("role", String(16), nullable=False, index=True),
    Column("profile_id", String(36)),
    Column("disabled", Boolean, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

doctors = Table(
    "doctors",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), nullable=False),
    Column("name", String(200), nullable=False, index=True),
    Column("specialization", String(100), nullable=False, index=True),
    Column("licence_number", String(64), nullable=False),
    Column("consultation_fee", Numeric(12, 2), nullable=False),
    Column("bio", Text, nullable=False),
    Column("availability", JSON),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

doctor_leave = Table(
    "doctor_leave",
    metadata,
    Column("doctor_id", String(36), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("reason", Text, nullable=False),
)

patients = Table(
    "patients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), nullable=False),
    Column("full_name", String(200), nullable=False, index=True),
    Column("date_of_birth", Date),
    Column("phone", String(40)),
    Column("profile", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

appointments = Table(
    "appointments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("doctor_id", String(36), nullable=False),
    Column("patient_id", String(36), nullable=False),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("end", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("overbooked", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_appointments_doctor_start", "doctor_id", "start"),
    Index("ix_appointments_patient_start", "patient_id", "start"),
    Index("ix_appointments_status_start", "status", "start"),
)

user_actions = Table(
    "user_actions",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("record_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("topic", String(200), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("patient_id", String(36), index=True),  # whose data the event is (sealed with their key), if anyone's
    Index("ix_user_actions_user_recorded", "user_id", "recorded_at", "position"),
)
