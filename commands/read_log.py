"""The read log: what clinical data an answer shows is recorded before the answer is given, and who may read
the log back (the patient their own, auditors everyone's)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

from commands.access import RecordAccess, record_access
from commands.base import Actor, RecordNotFoundError, Services
from domain.care import PatientCare, care_id
from domain.read_log import ReadRecord, Row, Shown
from domain.shared import ForbiddenError, Role

IN_SEARCH_SCOPE = "care_search"
"""A search row the read model's care scope showed a doctor while the store no longer gives a basis (a visit's
access ended a moment ago): recorded all the same, under the scope that showed it."""


def record_reads(svc: Services, actor: Actor, action: str, rows: Iterable[Row]) -> None:
    """Records the rows an answer shows, durably; when it cannot, the answer is not given (StoreUnavailableError)."""
    with reads_recorded(svc, actor, action, rows):
        pass


@contextmanager
def reads_recorded(svc: Services, actor: Actor, action: str, rows: Iterable[Row]) -> Iterator[None]:
    """Records the rows while the block makes the answer, and returns only once they are durable: the commit's
    wait overlaps the work instead of adding to it. When they cannot be recorded, the answer is not given."""
    shown = tuple(dict.fromkeys(rows))
    durable = svc.store.save_soon(ReadRecord.of(action, shown, svc.clock(), actor.cause)) if shown else None
    yield
    if durable is not None:
        durable()


def read_recorded(svc: Services, actor: Actor, action: str, access: RecordAccess, shown: Shown, record_id: str) -> AbstractContextManager[None]:
    """reads_recorded for one clinical read of a record, on the basis the caller's access gave; administrative
    views show no clinical data and are not read log entries."""
    rows = [Row(access.patient_id, shown, record_id, access.basis)] if access.clinical else []
    return reads_recorded(svc, actor, action, rows)


def search_rows(svc: Services, actor: Actor, shown: Shown, found: Iterable[tuple[str, str]]) -> list[Row]:
    """The read log rows of a search's answer, (patient id, record id) each, with each patient's basis of access."""
    found = list(found)
    patients = list(dict.fromkeys(patient_id for patient_id, _ in found))
    if actor.is_(Role.DOCTOR) and actor.profile_id is not None:
        cares = svc.store.find_all(*[(PatientCare, care_id(patient_id)) for patient_id in patients])
        now = svc.clock()
        bases = {
            patient_id: (basis.value if (basis := care.basis(actor.profile_id, now, svc.post_visit_access)) else IN_SEARCH_SCOPE)
            if care is not None
            else IN_SEARCH_SCOPE
            for patient_id, care in zip(patients, cares)
        }
    else:
        basis = "self" if actor.is_(Role.PATIENT) else "audit" if actor.is_(Role.AUDITOR) else str(actor.role)
        bases = dict.fromkeys(patients, basis)
    return [Row(patient_id, shown, record_id, bases[patient_id]) for patient_id, record_id in found]


def patient_log_reader(svc: Services, actor: Actor, patient_id: str) -> RecordAccess:
    """Who may read a patient's read log: the patient and auditors. Another patient learns nothing (404)."""
    if not actor.is_(Role.PATIENT, Role.AUDITOR):
        raise ForbiddenError("Only auditors and the patient themself read who has read a record.")
    access = record_access(svc, actor, patient_id)
    if access.basis not in ("self", "audit"):
        raise RecordNotFoundError(f"No patient {patient_id}.")
    return access


def require_auditor(actor: Actor) -> None:
    if not actor.is_(Role.AUDITOR):
        raise ForbiddenError("Only auditors read what a user has read.")
