"""The read log's record: given the rows an answer showed, the one event it records, and its emergency flag."""

from __future__ import annotations

from datetime import datetime, timezone

from domain.read_log import ReadRecord, Row, Shown
from domain.shared import Cause, Role

NOW = datetime(2030, 1, 7, 9, 30, tzinfo=timezone.utc)
DOCTOR = Cause("account-7", Role.DOCTOR, "corr-7")


def test_a_read_records_each_row_with_who_and_when_in_one_event() -> None:
    rows = (Row("patient-1", Shown.CONSULTATION, "c-1", "primary_care"), Row("patient-2", Shown.CONSULTATION, "c-2", "appointment"))

    read = ReadRecord.of("consultation search", rows, NOW, DOCTOR)

    (recorded,) = read.collect_events()
    assert recorded.rows == [row.as_dict() for row in rows]
    assert (recorded.action, recorded.read_at, recorded.emergency, recorded.cause) == ("consultation search", NOW, False, DOCTOR.as_dict())
    assert read.rows == rows and read.reader == DOCTOR.as_dict()


def test_a_read_on_emergency_access_is_flagged() -> None:
    rows = (Row("patient-1", Shown.CHART, "patient-1", "emergency"),)

    read = ReadRecord.of("chart", rows, NOW, DOCTOR)

    assert read.emergency is True


def test_replaying_the_event_gives_the_same_read() -> None:
    read = ReadRecord.of("chart", (Row("patient-1", Shown.CHART, "patient-1", "self"),), NOW, DOCTOR)
    (recorded,) = read.collect_events()

    replayed = recorded.mutate(None)

    assert (replayed.id, replayed.rows, replayed.read_at, replayed.action) == (read.id, read.rows, read.read_at, read.action)
