"""Backfills for stores written by earlier versions: the access each appointment gives, on its patient's care record."""

from __future__ import annotations

from collections.abc import Iterator

from commands import appointments
from commands.base import Actor
from domain.appointment import Appointment
from infrastructure.bootstrap import Medledger
from infrastructure.eventstore import Clinic


def booked_appointment_ids(app: Clinic, page_size: int = 500) -> Iterator[str]:
    """Every appointment ever booked, oldest first, found in the notification log by the topic of its first event."""
    after = 0
    while True:
        page = app.recorder.select_notifications(
            start=after, limit=page_size, topics=[Appointment.Booked.TOPIC], inclusive_of_start=False
        )
        for notification in page:
            yield str(notification.originator_id)
        if len(page) < page_size:
            return
        after = page[-1].id


def backfill_visits(m: Medledger, actor: Actor) -> appointments.VisitsBackfilled:
    return appointments.backfill_visits(m.services, booked_appointment_ids(m.store.app), actor)
