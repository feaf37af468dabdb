"""The drafting policy: follows the log and drafts a visit's invoice when its appointment is completed or its
consultation signed, and the no-show fee's when one is charged, each once whatever happens to its worker.

Not a read model: a rebuild never replays it. It keeps its own position, moved only after the batch's drafts are
recorded; killed in between, it drafts the batch again, and the commands record nothing for a visit already drafted
(each invoice's id is derived from its appointment). On its first start it begins at the end of the log as it is
then: a clinic turning billing on is not billed for years of past visits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eventsourcing.persistence import PersistenceError
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from commands.base import Outcome, Services
from commands.billing import draft_for_signed_consultation, draft_for_visit, draft_no_show_fee
from domain.appointment import Appointment, Status
from domain.consultation import Consultation
from domain.shared import Cause, DomainError, Role
from infrastructure.eventstore import Clinic, StoreUnavailableError

log = logging.getLogger("medledger.billing_policy")

NAME = "billing-policy"
BATCH = 100
DRAFTERS = 4

metadata = MetaData()

policy_positions = Table(
    "policy_positions",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

Draft = Callable[[Services, str, Cause], Outcome | None]


def _corrected(event: Any) -> Draft | None:
    return {Status.COMPLETED: draft_for_visit, Status.NO_SHOW: draft_no_show_fee}.get(Status(event.status))


REACTIONS: dict[str, Callable[[Any], Draft | None]] = {
    Appointment.Completed.TOPIC: lambda event: draft_for_visit,
    Appointment.MarkedNoShow.TOPIC: lambda event: draft_no_show_fee,
    Appointment.StatusCorrected.TOPIC: _corrected,
    Consultation.Signed.TOPIC: lambda event: draft_for_signed_consultation,
}
"""Topic -> the command the event calls for (None: nothing to draft)."""

TRANSIENT = (StoreUnavailableError, PersistenceError, DBAPIError)
"""Errors of storage: the batch is tried again next round. Any other failure skips its event with a log line."""


def create_tables(engine: Engine) -> None:
    metadata.create_all(engine)


def start_at_end(engine: Engine, app: Clinic) -> None:
    """Gives the policy its position on its first start: the end of the log as it is then."""
    with engine.begin() as conn:
        if conn.execute(select(policy_positions.c.position).where(policy_positions.c.name == NAME)).first() is not None:
            return
    try:
        with engine.begin() as conn:
            conn.execute(insert(policy_positions).values(name=NAME, position=app.recorder.max_notification_id() or 0))
    except IntegrityError:
        pass  # another process started it at the same moment


class DraftingPolicy:
    """A follower of the projector loop (ProjectionWorker.followers): run_once drafts for the next batch of events."""

    def __init__(self, svc: Services, app: Clinic, engine: Engine, batch: int = BATCH) -> None:
        self.svc = svc
        self.app = app
        self.engine = engine
        self.batch = batch
        self._reached = -1

    def position(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(policy_positions.c.position).where(policy_positions.c.name == NAME)).scalar_one()

    def run_once(self) -> int:
        """Drafts for the next batch of events after the position, then moves the position past them; answers how
        many notifications that covered."""
        frontier = self.app.recorder.max_notification_id() or 0
        if self._reached >= frontier:
            return 0
        start = self.position()
        if start >= frontier:
            self._reached = start
            return 0
        notifications = self.app.recorder.select_notifications(
            start=start, limit=self.batch, stop=frontier, topics=tuple(REACTIONS), inclusive_of_start=False
        )
        reached = notifications[-1].id if len(notifications) == self.batch else frontier
        if len(notifications) > 1:
            # Each draft is its own stream, decided on the visit's current state: drafted side by side, they share
            # the group commit's transactions, and their order does not matter.
            with ThreadPoolExecutor(DRAFTERS, thread_name_prefix="billing-policy") as pool:
                list(pool.map(self._react, notifications))
        else:
            for notification in notifications:
                self._react(notification)
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(policy_positions)
                .where(policy_positions.c.name == NAME, policy_positions.c.position == start)
                .values(position=reached)
            )
        if moved.rowcount != 1:
            log.info("billing policy: another worker moved first; going on from its position")
            self._reached = -1
            return 1
        self._reached = reached
        return reached - start

    def _react(self, notification: Any) -> None:
        where = f"{notification.topic} of {notification.originator_id} at position {notification.id}"
        try:
            event = self.app.mapper.decode_unless_erased(notification)
            if event is None:
                log.info("billing policy: skipped %s: its patient's data is erased", where)
                return
            draft = REACTIONS[notification.topic](event)
            if draft is None:
                return
            cause = Cause(
                user_id=NAME,
                role=Role.ADMIN,
                correlation_id=f"{notification.originator_id}/{notification.originator_version}",
            )
            outcome = draft(self.svc, str(notification.originator_id), cause)
        except TRANSIENT:
            raise
        except DomainError as error:
            log.warning("billing policy: skipped %s: %s", where, error)
            return
        except Exception:
            log.exception("billing policy: skipped %s: it could not be drafted", where)
            return
        if outcome is None:
            log.info("billing policy: nothing to draft for %s (no such visit, or no fee to charge)", where)
        elif outcome.created:
            log.info("billing policy: drafted invoice %s for %s", outcome.id, where)
