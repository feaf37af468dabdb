"""Consultations: start, record, attach and download, follow up, sign, amend, read and search."""

from __future__ import annotations

from datetime import timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from sqlalchemy import Connection

from api.consultation_schemas import (
    AmendmentRecord,
    AttachmentUpload,
    ComplaintRecord,
    ConsultationStart,
    DiagnosisRecord,
    FollowUpBook,
    FollowUpRecommend,
    NoteAdd,
    SymptomRecord,
    VitalSignsRecord,
)
from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_handler
from api.json_body import StrictJSONRoute
from api.responses import Refusal, command, errors, query
from api.schemas import SLOT_RULES, CommandResult, Moment, Page
from commands import consultations as commands
from commands.read_log import record_reads, search_rows
from domain.attachments import AttachmentKind, AttachmentTooLargeError, sha256_hex
from domain.consultation import ICD10_AS_WRITTEN, Kind, Status, icd10
from domain.read_log import Shown
from domain.shared import ForbiddenError, InvalidInputError, Role
from domain.text import human_text
from projections import consultations as records
from projections.queries import Page as ResultPage

router = APIRouter(prefix="/consultations", tags=["consultations"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadConsultations = Annotated[Connection, Depends(read_models({"consultations", "care"}))]
MAX_FILENAME = 255
SYMPTOM_RULES = (Refusal("onset", "an onset in the future"),)
VITALS_RULES = (
    Refusal("vital_signs", "no vital sign at all"),
    Refusal("systolic", "a systolic pressure without the diastolic"),
    Refusal("diastolic", "a diastolic pressure without the systolic"),
    Refusal("diastolic", "a diastolic pressure not below the systolic", "impossible_vital_sign"),
    Refusal("measured_at", "a measurement time in the future"),
)
FOLLOW_UP_RULES = (Refusal("date", "a follow-up date that is not a later day"),)
AMENDMENT_RULES = (
    Refusal("entry_id", "the consultation has no such entry", "unknown_entry"),
    Refusal("changes", "no change, or a field the entry does not have"),
    Refusal("*", "a changed value that recording the entry would refuse, named by its field (text, name, onset, code...)"),
    Refusal("*", "a changed text with hidden characters, or a line break in a one-line field", "invalid_text"),
    Refusal("*", "a changed vital sign no living patient has", "impossible_vital_sign"),
    Refusal(
        "effective_at",
        "an effective time for a complaint, note or vital signs, with a new onset, in the future, or before the entry "
        "was true (its onset or the consultation's start)",
        "invalid_effective_time",
    ),
)
UPLOAD_RULES = (
    Refusal("file", "bytes of no accepted type, or not of the declared type", "attachment_type_refused"),
    Refusal("file", "larger than MEDLEDGER_ATTACHMENT_MAX_BYTES", "attachment_too_large"),
    Refusal("file", "an empty file, or a file name with hidden characters"),
    Refusal("file", "a file name with hidden characters", "invalid_text"),
    Refusal("kind", "a form field sent twice"),
)


@router.post("", status_code=201, response_model=CommandResult, responses=command(404))
def start(body: ConsultationStart, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Start a consultation: from an appointment (its doctor; the appointment goes in progress) or as a walk-in."""
    cmd = commands.StartConsultation(
        body.kind.value,
        str(body.appointment_id) if body.appointment_id else None,
        str(body.patient_id) if body.patient_id else None,
    )
    return run_handler(m, request, actor, key, body, commands.start_consultation, cmd, 201)


@router.get("", responses=query())
def search(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadConsultations,
    paging: Paging,
    patient_id: str | None = None,
    doctor_id: str | None = None,
    started_from: Annotated[Moment | None, Query(alias="from", description="Started at or after")] = None,
    started_to: Annotated[Moment | None, Query(alias="to", description="Started before")] = None,
    diagnosis_code: Annotated[
        str | None, Query(max_length=12, pattern=ICD10_AS_WRITTEN, description="An ICD-10 code or category (J06 finds J06.9)")
    ] = None,
    status: Status | None = None,
    kind: Kind | None = None,
) -> Page[dict[str, Any]]:
    """Search consultations, newest first: patients see their own, doctors those of patients in their care,
    auditors all; admins all, in the administrative view (and may not filter by diagnosis); analysts none."""
    if actor.is_(Role.ANALYST):
        raise ForbiddenError("Analysts do not read medical records.")
    if diagnosis_code is not None:
        if actor.is_(Role.ADMIN):
            raise ForbiddenError("Admins do not search consultations by their clinical content.")
        diagnosis_code = _code(diagnosis_code)
    in_care_of = None
    if actor.is_(Role.PATIENT):
        if patient_id not in (None, actor.profile_id):
            return Page(items=[], total=0, page=paging.page, page_size=paging.page_size)
        patient_id = actor.profile_id
    elif actor.is_(Role.DOCTOR):
        after_visit = timedelta(hours=m.settings.post_visit_access_hours)
        in_care_of = (actor.profile_id or "", m.services.clock(), after_visit)
    found: ResultPage = records.search_consultations(
        conn,
        clinical=not actor.is_(Role.ADMIN),
        patient_id=patient_id,
        doctor_id=doctor_id,
        started_from=started_from,
        started_to=started_to,
        diagnosis_code=diagnosis_code,
        status=status.value if status else None,
        kind=kind.value if kind else None,
        in_care_of=in_care_of,
        page=paging.page,
        page_size=paging.page_size,
    )
    if not actor.is_(Role.ADMIN):
        shown = search_rows(m.services, actor, Shown.CONSULTATION, [(item["patient_id"], item["id"]) for item in found.items])
        record_reads(m.services, actor, "consultation search", shown)
    return Page(items=found.items, total=found.total, page=found.page, page_size=found.page_size)


def _code(value: str) -> str:
    try:
        return icd10(value)
    except InvalidInputError as error:
        raise InvalidInputError(error.message, field="diagnosis_code") from None


@router.get("/{consultation_id}", responses=errors(404))
def get_consultation(
    consultation_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    view: Annotated[Literal["current", "as_recorded"], Query(description="as_recorded: the original values")] = "current",
) -> dict[str, Any]:
    """One consultation: the clinical view (current values and amendments, or as recorded) for those who may
    read the record clinically; the administrative view for admins."""
    return commands.read_consultation(m.services, consultation_id, actor, as_recorded=view == "as_recorded")


@router.post("/{consultation_id}/complaint", response_model=CommandResult, responses=command(404))
def record_complaint(
    consultation_id: str, body: ComplaintRecord, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Record the chief complaint (once; correct it with an amendment)."""
    return run_handler(m, request, actor, key, body, commands.record_complaint, commands.RecordComplaint(consultation_id, body.text))


@router.post("/{consultation_id}/symptoms", response_model=CommandResult, responses=command(404, refusals=SYMPTOM_RULES))
def record_symptom(
    consultation_id: str, body: SymptomRecord, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Record a symptom: name, onset, severity (mild, moderate, severe), duration."""
    cmd = commands.RecordSymptom(consultation_id, body.name, body.severity.value, body.onset, body.duration)
    return run_handler(m, request, actor, key, body, commands.record_symptom, cmd)


@router.post("/{consultation_id}/vitals", response_model=CommandResult, responses=command(404, refusals=VITALS_RULES))
def record_vitals(
    consultation_id: str, body: VitalSignsRecord, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Record vital signs in fixed units; impossible values are refused, implausible ones kept and flagged."""
    cmd = commands.RecordVitalSigns(consultation_id, body.measures(), body.measured_at)
    return run_handler(m, request, actor, key, body, commands.record_vital_signs, cmd)


@router.post("/{consultation_id}/diagnoses", response_model=CommandResult, responses=command(404))
def record_diagnosis(
    consultation_id: str, body: DiagnosisRecord, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Record a diagnosis: ICD-10 code, description, rank (at most one current primary) and status."""
    cmd = commands.RecordDiagnosis(consultation_id, body.code, body.description, body.rank.value, body.status.value)
    return run_handler(m, request, actor, key, body, commands.record_diagnosis, cmd)


@router.post("/{consultation_id}/notes", response_model=CommandResult, responses=command(404))
def add_note(
    consultation_id: str, body: NoteAdd, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Add a clinical note, authored by the consultation's doctor and timestamped."""
    return run_handler(m, request, actor, key, body, commands.add_note, commands.AddNote(consultation_id, body.text))


async def _one_of_each_field(request: Request) -> None:
    """A repeated form field would have its last copy taken and the others dropped unseen: refused instead."""
    form = await request.form()
    for name in ("kind", "file"):
        if len(form.getlist(name)) > 1:
            raise InvalidInputError(f"Send one {name} per upload.", field=name)


@router.post(
    "/{consultation_id}/attachments",
    status_code=201,
    response_model=CommandResult,
    dependencies=[Depends(_one_of_each_field)],
    responses=command(404, refusals=UPLOAD_RULES),
)
def add_attachment(
    consultation_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    request: Request,
    kind: Annotated[AttachmentKind, Form()],
    file: Annotated[UploadFile, File(description="PDF, PNG, JPEG, DICOM or plain text")],
    key: IdempotencyKey = None,
) -> Response:
    """Attach a file (multipart/form-data: kind, file). Its type is told from its bytes and must match the
    declared type; its size is limited by MEDLEDGER_ATTACHMENT_MAX_BYTES; its SHA-256 is recorded."""
    limit = m.settings.attachment_max_bytes
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise AttachmentTooLargeError(f"An attachment is at most {limit} bytes.", field="file", limit=limit)
    if not content:
        raise InvalidInputError("The file is empty.", field="file")
    filename = _filename(file.filename)
    cmd = commands.AddAttachment(consultation_id, kind, filename, file.content_type, content)
    fingerprint = AttachmentUpload(kind=kind, filename=filename, content_type=file.content_type, sha256=sha256_hex(content))
    return run_handler(m, request, actor, key, fingerprint, commands.add_attachment, cmd, 201)


def _filename(given: str | None) -> str:
    name = PureWindowsPath(PurePosixPath(given or "").name).name.strip()
    # A right-to-left override can make "scan\u202egnp.exe" read as "scanexe.png" to the clinician who opens it.
    return human_text(name, "file")[-MAX_FILENAME:] or "attachment"


@router.get("/{consultation_id}/attachments/{attachment_id}", response_class=Response, responses=errors(404, 409))
def download_attachment(consultation_id: str, attachment_id: str, actor: CurrentActor, m: MedledgerDep) -> Response:
    """The attachment's bytes with their recorded content type, after checking them against the recorded SHA-256."""
    found = commands.read_attachment(m.services, consultation_id, attachment_id, actor)
    return Response(
        found.content,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.filename)}",
            "X-Content-Type-Options": "nosniff",
            "X-Content-SHA256": found.sha256,
        },
    )


@router.post("/{consultation_id}/follow-up", response_model=CommandResult, responses=command(404, refusals=FOLLOW_UP_RULES))
def recommend_follow_up(
    consultation_id: str, body: FollowUpRecommend, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Recommend a follow-up (date, reason)."""
    cmd = commands.RecommendFollowUp(consultation_id, body.date, body.reason)
    return run_handler(m, request, actor, key, body, commands.recommend_follow_up, cmd)


@router.post(
    "/{consultation_id}/follow-up/book", status_code=201, response_model=CommandResult, responses=command(404, refusals=SLOT_RULES)
)
def book_follow_up(
    consultation_id: str, body: FollowUpBook, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Book the recommended follow-up with the consultation's doctor (the patient, that doctor or an admin);
    answers the appointment's id."""
    cmd = commands.BookFollowUp(consultation_id, body.start)
    return run_handler(m, request, actor, key, body, commands.book_follow_up, cmd, 201)


@router.post("/{consultation_id}/sign", response_model=CommandResult, responses=command(404))
def sign(consultation_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Sign (the consultation's doctor, once a chief complaint is recorded); completes its appointment."""
    return run_handler(m, request, actor, key, None, commands.sign_consultation, commands.SignConsultation(consultation_id))


@router.post("/{consultation_id}/amendments", response_model=CommandResult, responses=command(404, refusals=AMENDMENT_RULES))
def amend(
    consultation_id: str, body: AmendmentRecord, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Correct an entry (complaint, symptom, vital signs, diagnosis or note) with a reason; the original is kept. With
    effective_at, a symptom or diagnosis changed at that clinical time instead (before it, the old values hold)."""
    cmd = commands.AmendEntry(consultation_id, body.entry_id, body.changes.given(), body.reason, body.effective_at)
    return run_handler(m, request, actor, key, body, commands.amend_entry, cmd)
