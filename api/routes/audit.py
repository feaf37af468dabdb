"""Audit reads over the event store: a record's history, its state as of a moment or version, a patient's report,
a patient's chart as recorded by one moment and clinically true at another, and what one user did."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.deps import CurrentActor, MedledgerDep, Paging, read_models
from api.json_body import StrictJSONRoute
from api.responses import Refusal, errors, query
from api.schemas import Moment
from commands import audit, user_report
from commands.audit import RowPage
from commands.chart_as_of import Moments, chart_as_of
from projections.user_actions import actions_of

router = APIRouter(prefix="/audit", tags=["audit"], route_class=StrictJSONRoute, responses=errors(401, 403, 404, 503))

CSV_COLUMNS = (
    "record_type",
    "record_id",
    "version",
    "recorded_at",
    "event_type",
    "actor_user_id",
    "actor_role",
    "correlation_id",
    "reason",
    "changes",
    "erased",
)
USER_CSV_COLUMNS = ("kind", "position", *CSV_COLUMNS, "action", "shown")
JSON_TEXT_COLUMNS = frozenset({"changes", "shown"})
USER_CSV_ANSWER = {
    "description": "The rows as CSV (`?format=csv`): one line per event, the columns of the JSON rows, `changes` and `shown` "
    "as JSON text; the page's total in X-Total-Count.",
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "headers": {"X-Total-Count": {"description": "Rows in all pages.", "schema": {"type": "integer"}}},
}
CSV_ANSWER = {
    "description": "The rows as CSV (`?format=csv`): one line per event, the columns of the JSON rows, `changes` as "
    "JSON text; the page's total in X-Total-Count.",
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "headers": {"X-Total-Count": {"description": "Rows in all pages.", "schema": {"type": "integer"}}},
}
Format = Annotated[
    Literal["json", "csv"], Query(description="json (default) or csv: the same rows of the same page, as CSV.")
]


class Change(BaseModel):
    path: str = Field(description="The changed field: `a.b` for a key, `a[0]` for a list item.")
    before: Any = Field(description="Its value before the event (null where absent).")
    after: Any = Field(description="Its value after the event (null where absent).")


class HistoryRow(BaseModel):
    record_type: str = Field(description="The kind of record, e.g. Appointment, Consultation, PatientCare.")
    record_id: str
    version: int = Field(description="The event's version in its record's stream, from 1.")
    recorded_at: str | None = Field(description="When the event was recorded (its timestamp, UTC); null once erased.")
    event_type: str = Field(description="A stable readable name, e.g. Appointment.Cancelled.")
    actor_user_id: str = Field(description="The account that caused it, as recorded; `system` for the system's own, `unknown` where none was recorded.")
    actor_role: str
    correlation_id: str | None = Field(description="The request's X-Correlation-ID, as recorded.")
    reason: str | None = Field(description="The reason the change gave, where one was given.")
    changes: list[Change] = Field(description="Each field it changed, before and after; secrets redacted.")
    erased: bool = Field(default=False, description="The record's patient was erased: when, who and what are gone with their key.")


class HistoryPage(BaseModel):
    items: list[HistoryRow]
    total: int
    page: int
    page_size: int


class RecordAsOf(BaseModel):
    record_type: str
    record_id: str
    version: int = Field(description="The version of the last event included.")
    recorded_at: str = Field(description="When that last event was recorded.")
    as_of: str | None = Field(description="The moment asked for, if one was.")
    state: dict[str, Any] = Field(description="The record's fields as they stood; secrets redacted.")


class ShownRecord(BaseModel):
    patient_id: str
    shown: str = Field(description="What kind of clinical data: chart, consultation, prescription, attachment, history, read_log.")
    record_id: str
    basis: str = Field(description="Why the reader could see it: self, audit, admin, primary_care, referral, temporary, appointment, emergency.")


class UserReportRow(HistoryRow):
    kind: Literal["change", "read"] = Field(description="change: an event the user caused; read: an answer that showed them clinical data.")
    position: int = Field(description="The event's position in the store's log (what a transparency proof names).")
    action: str | None = Field(description="A read: the answer that showed it (chart, consultation search, ...).")
    shown: list[ShownRecord] = Field(description="A read: each record it showed, of which patient, on what basis.")


class UserReportPage(BaseModel):
    items: list[UserReportRow]
    total: int
    page: int
    page_size: int


class TimelinePage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


class ChartAsOf(BaseModel):
    """The chart's sections as they stood; each entry says since when it was known (`known_since`: when the store
    recorded what it shows) and since when it was true clinically (`true_since`)."""

    patient_id: str
    known_at: str | None = Field(description="The recorded time asked for: every record as recorded at or before it (null: all).")
    true_at: str | None = Field(description="The clinical time asked for: what was clinically true then (null: no limit).")
    view: Literal["clinical", "administrative"] = Field(description="administrative for admins: no clinical content.")
    demographics: dict[str, Any] = Field(description="The profile as known at known_at (it has no clinical time).")
    allergies: list[Any]
    profile_known_since: str = Field(description="When the profile shown was recorded.")
    active_problems: list[dict[str, Any]] = Field(description="Each diagnosis code's latest entry, if it keeps the problem current.")
    active_prescriptions: list[dict[str, Any]]
    vitals: dict[str, Any] = Field(description="Per measure: the latest reading, its change, the last readings.")
    timeline: TimelinePage = Field(description="The consultations started by true_at, newest first.")
    appointments: list[dict[str, Any]]
    care: dict[str, Any] = Field(description="Care relationships and emergency access.")


def _answer(found: RowPage, format: str, columns: tuple[str, ...] = CSV_COLUMNS) -> Any:
    if format == "json":
        return {"items": found.items, "total": found.total, "page": found.page, "page_size": found.page_size}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(columns)
    for item in found.items:
        writer.writerow(
            [json.dumps(item[c], ensure_ascii=False) if c in JSON_TEXT_COLUMNS else ("" if item[c] is None else item[c]) for c in columns]
        )
    return Response(text.getvalue(), media_type="text/csv; charset=utf-8", headers={"X-Total-Count": str(found.total)})


@router.get("/records/{record_id}/history", response_model=HistoryPage, responses={200: CSV_ANSWER})
def record_history(record_id: str, actor: CurrentActor, m: MedledgerDep, paging: Paging, format: Format = "json") -> Any:
    """Every event of any record, in order, with who, when, why and what it changed: auditors and admins (no
    clinical content for admins), a patient for their own records; doctors and analysts 403."""
    found = audit.history(m.services, m.history, actor, record_id, paging.page, paging.page_size)
    return _answer(found, format)


@router.get(
    "/records/{record_id}/as-of",
    response_model=RecordAsOf,
    responses=errors(410, refusals=(Refusal("version", "both as_of and version are given"),)),
)
def record_as_of(
    record_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    as_of: Annotated[Moment | None, Query(description="The record as it stood after its last event recorded at or before this moment.")] = None,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647, description="The record as it stood after this version.")] = None,
) -> Any:
    """A record's state as of a recorded moment or a version (the latest without either), computed from its events;
    404 if it did not exist yet. Same readers as its history."""
    found = audit.as_of(m.services, m.history, actor, record_id, as_of, version)
    head = json.dumps({name: value for name, value in asdict(found).items() if name != "state_json"})
    return Response(f'{head[:-1]}, "state": '.encode() + found.state_json + b"}", media_type="application/json")


@router.get(
    "/patients/{patient_id}/report",
    response_model=HistoryPage,
    responses={200: CSV_ANSWER, **errors(410, refusals=(Refusal("to", "`to` is not after `from`"),))},
)
def patient_report(
    patient_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    paging: Paging,
    start: Annotated[Moment, Query(alias="from", description="Changes recorded at or after this moment")],
    end: Annotated[Moment, Query(alias="to", description="Changes recorded before this moment")],
    format: Format = "json",
) -> Any:
    """Every change to any of a patient's records (profile, account, care, agenda, appointments, consultations,
    prescriptions) recorded in [from, to), in time order, as history rows: auditors, admins (no clinical content)
    and the patient themself."""
    found = audit.patient_report(m.services, m.history, actor, patient_id, start, end, paging.page, paging.page_size)
    return _answer(found, format)


@router.get("/patients/{patient_id}/chart", response_model=ChartAsOf, responses=errors(410))
def patient_chart_as_of(
    patient_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    paging: Paging,
    known_at: Annotated[
        Moment | None, Query(description="Every record as recorded at or before this moment (when the store recorded it).")
    ] = None,
    true_at: Annotated[
        Moment | None,
        Query(description="What was clinically true at this moment: vital signs taken, symptoms begun, consultations started by then."),
    ] = None,
) -> Any:
    """The patient's chart (profile, problems, prescriptions, vital signs, consultations, appointments, care) computed
    from the events, as recorded by known_at and clinically true at true_at, each entry with both times: the patient
    themself and auditors; admins without clinical content; doctors and analysts 403; anyone else 404, also before
    the patient was registered. The read is in the read log before the chart is answered."""
    return chart_as_of(m.services, m.history, actor, patient_id, Moments(known_at, true_at), paging.page, paging.page_size)


@router.get(
    "/users/{user_id}/report",
    response_model=UserReportPage,
    responses={200: USER_CSV_ANSWER, **query(refusals=(Refusal("to", "`to` is not after `from`"),))},
)
def user_activity_report(
    user_id: Annotated[str, Path(min_length=1, max_length=64, description="The user's account id (or `system`, `operator`).")],
    actor: CurrentActor,
    m: MedledgerDep,
    paging: Paging,
    conn: Annotated[Connection, Depends(read_models({"actions"}))],
    start: Annotated[Moment, Query(alias="from", description="Events recorded at or after this moment")],
    end: Annotated[Moment, Query(alias="to", description="Events recorded before this moment")],
    format: Format = "json",
) -> Any:
    """What one user did in [from, to), oldest first: every change they caused (as history rows) and every read
    they were shown (from the read log): auditors; admins the changes only, without clinical content; others 403.
    Shown to an auditor, it is in the read log before it is answered."""
    reads = user_report.report_access(m.services, actor, user_id, start, end)
    found = actions_of(conn, user_id, start, end, reads=reads, page=paging.page, page_size=paging.page_size)
    actions = [user_report.Action(**item) for item in found.items]
    rows = user_report.user_report(m.services, m.history, actor, user_id, actions, found.total, found.page, found.page_size)
    return _answer(rows, format, USER_CSV_COLUMNS)
