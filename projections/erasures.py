"""Erasure requests by status, for the admins who decide them; and the follower that finishes an approved erasure
whose process stopped before the patient's data key was destroyed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Engine, String, Table, insert, select, update

from domain.erasure import PatientErasure
from projections.base import Projector
from projections.queries import Page, _page
from projections.tables import metadata

erasure_requests = Table(
    "erasure_requests",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),  # pending, rejected, erased
    Column("legal_basis", String(40), nullable=False),
    Column("requested_by", String(36), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(36)),
    Column("decided_at", DateTime(timezone=True)),
)


class ErasureRequests(Projector):
    name = "erasures"
    tables = (erasure_requests,)
    kept_after_erasure = True  # the decision is the proof that the erasure was lawful; it holds no personal data

    def __init__(self) -> None:
        self.handlers = {
            PatientErasure.Requested.TOPIC: self.requested,
            PatientErasure.Approved.TOPIC: lambda conn, e: self.decided(conn, e, "erased"),
            PatientErasure.Rejected.TOPIC: lambda conn, e: self.decided(conn, e, "rejected"),
        }

    @staticmethod
    def requested(conn: Connection, e: Any) -> None:
        conn.execute(
            insert(erasure_requests).values(
                request_id=e.request_id,
                patient_id=e.patient_id,
                status="pending",
                legal_basis=e.legal_basis,
                requested_by=e.cause["user_id"],
                requested_at=e.requested_at,
            )
        )

    @staticmethod
    def decided(conn: Connection, e: Any, status: str) -> None:
        conn.execute(
            update(erasure_requests)
            .where(erasure_requests.c.request_id == e.request_id)
            .values(status=status, decided_by=e.cause["user_id"], decided_at=e.decided_at)
        )


def list_erasure_requests(conn: Connection, status: str | None, page: int, page_size: int) -> Page:
    query = select(erasure_requests).order_by(erasure_requests.c.requested_at.desc(), erasure_requests.c.request_id)
    if status:
        query = query.where(erasure_requests.c.status == status)
    return _page(conn, query, page, page_size)


def erasure_follower(
    engine: Engine, approved: Callable[[str], bool], erase: Callable[[str], None], erased: Callable[[str], bool]
) -> Callable[[], int]:
    """A follower of the projector loop: carries out approved erasures not yet carried out (the approving request
    does it at once; this finishes one whose process stopped in between). The read model only points at them:
    each is confirmed approved in the event store, and checked against the keyring itself, once per process.
    Answers how many it finished."""
    checked: set[str] = set()

    def run_once() -> int:
        with engine.connect() as conn:
            listed = conn.execute(select(erasure_requests.c.patient_id).where(erasure_requests.c.status == "erased")).scalars().all()
        finished = 0
        for patient_id in listed:
            if patient_id in checked:
                continue
            if not erased(patient_id) and approved(patient_id):
                erase(patient_id)
                finished += 1
            checked.add(patient_id)
        return finished

    return run_once
