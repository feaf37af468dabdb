"""Prescription: an order for medications written at a consultation, safety-checked, issued, dispensed, cancelled, expired or renewed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from domain.medication_safety import CheckerUnavailableError, Finding, InteractionBlockedError, SafetyCheck
from domain.shared import Cause, ConflictError, InvalidInputError, InvalidTransitionError

MAX_ITEMS = 20
MAX_DURATION_DAYS = 365
MAX_QUANTITY = 10_000
MAX_REFILLS = 12
MIN_OVERRIDE_LENGTH = 10


class Status(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_DISPENSED = "partially_dispensed"
    DISPENSED = "dispensed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIVE = frozenset({Status.ISSUED, Status.PARTIALLY_DISPENSED})
RENEWABLE = frozenset({Status.ISSUED, Status.PARTIALLY_DISPENSED, Status.DISPENSED, Status.EXPIRED})


class Frequency(StrEnum):
    """How often a dose is taken; each has local dosing times that reminders are scheduled at."""

    ONCE_DAILY = "once_daily"
    TWICE_DAILY = "twice_daily"
    THREE_TIMES_DAILY = "three_times_daily"
    FOUR_TIMES_DAILY = "four_times_daily"
    EVERY_6_HOURS = "every_6_hours"
    EVERY_8_HOURS = "every_8_hours"
    AT_BEDTIME = "at_bedtime"
    WEEKLY = "weekly"
    AS_NEEDED = "as_needed"


class Route(StrEnum):
    ORAL = "oral"
    SUBLINGUAL = "sublingual"
    BUCCAL = "buccal"
    TOPICAL = "topical"
    TRANSDERMAL = "transdermal"
    INHALED = "inhaled"
    NASAL = "nasal"
    OPHTHALMIC = "ophthalmic"
    OTIC = "otic"
    RECTAL = "rectal"
    VAGINAL = "vaginal"
    SUBCUTANEOUS = "subcutaneous"
    INTRAMUSCULAR = "intramuscular"
    INTRAVENOUS = "intravenous"


class DispenseExceedsRemainingError(ConflictError):
    """Raised when a dispensing asks for more than is left of an item (its quantity times one plus its refills)."""

    code = "dispense_exceeds_remaining"


class PrescriptionExpiredError(ConflictError):
    """Raised when a prescription is dispensed after the day it is valid until."""

    code = "prescription_expired"


class UnknownItemError(InvalidInputError):
    """Raised when an item id names no item of the prescription."""

    code = "unknown_item"


@dataclass(frozen=True)
class Item:
    item_id: str
    name: str
    strength: str
    form: str
    dose: str
    route: Route
    frequency: Frequency
    duration_days: int
    quantity: int
    refills: int
    instructions: str

    @property
    def allowed(self) -> int:
        """How much may be dispensed in all: the first fill and every refill."""
        return self.quantity * (1 + self.refills)

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "medication": {"name": self.name, "strength": self.strength, "form": self.form},
            "dose": self.dose,
            "route": self.route.value,
            "frequency": self.frequency.value,
            "duration_days": self.duration_days,
            "quantity": self.quantity,
            "refills": self.refills,
            "instructions": self.instructions,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        medication = data["medication"]
        return cls(
            item_id=data["item_id"],
            name=medication["name"],
            strength=medication["strength"],
            form=medication["form"],
            dose=data["dose"],
            route=Route(data["route"]),
            frequency=Frequency(data["frequency"]),
            duration_days=int(data["duration_days"]),
            quantity=int(data["quantity"]),
            refills=int(data["refills"]),
            instructions=data["instructions"],
        )


def check_items(items: list[Item]) -> None:
    """Rules every item list must keep, whatever the prescription's state."""
    if not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidInputError(f"A prescription has between 1 and {MAX_ITEMS} items.", field="items")
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if item.item_id in seen:
            raise InvalidInputError("Item ids must be unique within a prescription.", field=f"{where}.item_id")
        seen.add(item.item_id)
        for name in ("name", "strength", "form", "dose"):
            if not getattr(item, name).strip():
                raise InvalidInputError(f"{name} is required.", field=f"{where}.{'medication.' if name in ('name', 'strength', 'form') else ''}{name}")
        if not 1 <= item.duration_days <= MAX_DURATION_DAYS:
            raise InvalidInputError(f"Duration is between 1 and {MAX_DURATION_DAYS} days.", field=f"{where}.duration_days")
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise InvalidInputError(f"Quantity is between 1 and {MAX_QUANTITY}.", field=f"{where}.quantity")
        if not 0 <= item.refills <= MAX_REFILLS:
            raise InvalidInputError(f"Refills are between 0 and {MAX_REFILLS}.", field=f"{where}.refills")


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInputError(f"Unknown time zone {name!r}.", field="timezone") from None
    return name


class Prescription(Aggregate):
    TOPIC = "medledger:Prescription"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Prescription.Created"

    @classmethod
    def write(
        cls,
        prescription_id: UUID,
        consultation_id: str,
        patient_id: str,
        doctor_id: str,
        items: list[Item],
        timezone: str,
        now: datetime,
        cause: Cause,
        renewed_from: str | None = None,
    ) -> Prescription:
        check_items(items)
        check_timezone(timezone)
        return cls(
            id=prescription_id,
            consultation_id=consultation_id,
            patient_id=patient_id,
            doctor_id=doctor_id,
            items=[item.as_dict() for item in items],
            timezone=timezone,
            written_at=now,
            renewed_from=renewed_from,
            cause=cause.as_dict(),
        )

    @event("Written", topic="medledger:Prescription.Written.v1")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - chosen by the handler so a renewal can name it first
        consultation_id: str,
        patient_id: str,
        doctor_id: str,
        items: list[dict[str, Any]],
        timezone: str,
        written_at: datetime,
        renewed_from: str | None,
        cause: dict[str, Any],
    ) -> None:
        self.consultation_id = consultation_id
        self.patient_id = patient_id
        self.doctor_id = doctor_id
        self.items = [Item.from_dict(item) for item in items]
        self.timezone = timezone
        self.written_at = written_at
        self.renewed_from = renewed_from
        self.status = Status.DRAFT
        self.checks: list[dict[str, Any]] = []
        self.dispensings: list[dict[str, Any]] = []
        self.dispensed: dict[str, int] = {item.item_id: 0 for item in self.items}
        self.issued_at: datetime | None = None
        self.valid_until: date | None = None
        self.override_reason: str | None = None
        self.cancelled_at: datetime | None = None
        self.cancel_reason: str | None = None
        self.expired_at: datetime | None = None
        self.renewed_by: str | None = None
        self.hazard_flagged = False
        self.new_hazards: list[dict[str, Any]] = []

    # Decisions

    def revise_items(self, items: list[Item], cause: Cause) -> None:
        """Replaces the items of a draft; the same items again is a no-op."""
        if items == self.items:
            return
        self._require(Status.DRAFT, action="revise the items of")
        check_items(items)
        self._items_revised([item.as_dict() for item in items], cause.as_dict())

    def record_check(self, result: SafetyCheck, now: datetime, cause: Cause) -> None:
        """Records a check the doctor asked for; the same check on the same inputs again is a no-op."""
        self.check_draft()
        last = self.last_check
        if last is not None and last.same_inputs(result):
            return
        self._safety_checked(result.as_dict(), "check", now, cause.as_dict())

    def check_draft(self) -> None:
        self._require(Status.DRAFT, action="check")

    def issue(
        self, result: SafetyCheck | None, override_reason: str | None, now: datetime, valid_until: date, cause: Cause
    ) -> None:
        """Issues after a check made now; severe findings block issue unless overridden with a reason.

        Without a check result the checker could not run, and issue is refused: it never passes silently.
        """
        if self.issued_at is not None:
            return
        self._require(Status.DRAFT, action="issue")
        if result is None:
            raise CheckerUnavailableError("No safety check could be made, so the prescription cannot be issued.")
        reason = (override_reason or "").strip() or None
        if result.severe:
            if reason is None:
                raise InteractionBlockedError(
                    "Severe interactions or allergies were found; issue needs an override reason.",
                    current={"table_version": result.table_version, "findings": [f.as_dict() for f in result.findings]},
                )
            if len(reason) < MIN_OVERRIDE_LENGTH:
                raise InvalidInputError(
                    f"Give the reason for the override in at least {MIN_OVERRIDE_LENGTH} characters.", field="override_reason"
                )
        else:
            reason = None
        if valid_until < self.local_day(now):
            raise InvalidInputError("A prescription must be valid at least on the day it is issued.", field="valid_until")
        self._safety_checked(result.as_dict(), "issue", now, cause.as_dict())
        self._issued(now, valid_until, reason, cause.as_dict())

    def dispense(self, item_id: str, quantity: int, now: datetime, cause: Cause) -> None:
        """Hands out part or all of what is left of an item; refused once the prescription is past its validity."""
        item = self.item(item_id)
        self._require(*ACTIVE, action="dispense")
        if self.valid_until is not None and self.local_day(now) > self.valid_until:
            raise PrescriptionExpiredError(
                f"This prescription was valid until {self.valid_until.isoformat()}.", current=self.summary()
            )
        if quantity < 1:
            raise InvalidInputError("Dispense at least one unit.", field="quantity")
        remaining = self.remaining(item_id)
        if quantity > remaining:
            raise DispenseExceedsRemainingError(
                f"Only {remaining} of {item.name} remain to dispense.",
                current={"item_id": item_id, "remaining": remaining, "dispensed": self.dispensed[item_id]},
            )
        self._dispensed(item_id, quantity, now, cause.as_dict())

    def cancel(self, reason: str, now: datetime, cause: Cause) -> None:
        if self.status == Status.CANCELLED:
            return
        self._require(Status.DRAFT, *ACTIVE, action="cancel")
        self._cancelled(reason, now, cause.as_dict())

    def expire(self, now: datetime, cause: Cause) -> bool:
        """Expires an active prescription past its last valid day; answers whether it did."""
        if self.status not in ACTIVE or self.valid_until is None or self.local_day(now) <= self.valid_until:
            return False
        self._expired(now, cause.as_dict())
        return True

    def check_renewable(self) -> None:
        self._require(*RENEWABLE, action="renew")

    def renewed(self, renewal_id: str, cause: Cause, earlier_renewal_cancelled: bool = False) -> None:
        """Links the renewal; a prescription is renewed once (again only if that renewal was cancelled), and
        naming the same renewal again is a no-op."""
        if self.renewed_by == renewal_id:
            return
        self.check_renewable()
        if self.renewed_by is not None and not earlier_renewal_cancelled:
            raise ConflictError("This prescription has been renewed already.", current=self.summary())
        self._renewed(renewal_id, cause.as_dict())

    def recheck(self, result: SafetyCheck, now: datetime, cause: Cause) -> list[Finding]:
        """Re-checks an active prescription against a newer table; answers the hazards no earlier check found."""
        if self.status not in ACTIVE:
            return []
        last = self.last_check
        if last is not None and last.table_version == result.table_version:
            return []
        known = {Finding.from_dict(f).key for c in self.checks for f in c["findings"]}
        new = [f for f in result.findings if f.key not in known]
        self._rechecked(result.as_dict(), [f.as_dict() for f in new], now, cause.as_dict())
        return new

    # Reading

    def local_day(self, moment: datetime) -> date:
        """The day a moment falls on in the prescription's time zone, which valid_until counts in."""
        return moment.astimezone(ZoneInfo(self.timezone)).date()

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.item_id == item_id:
                return item
        raise UnknownItemError(f"This prescription has no item {item_id}.", field="item_id")

    def remaining(self, item_id: str) -> int:
        return self.item(item_id).allowed - self.dispensed[item_id]

    @property
    def medications(self) -> list[str]:
        return [item.name for item in self.items]

    @property
    def last_check(self) -> SafetyCheck | None:
        return SafetyCheck.from_dict(self.checks[-1]) if self.checks else None

    def summary(self) -> dict[str, Any]:
        return {
            "prescription_id": str(self.id),
            "status": self.status.value,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "renewed_by": self.renewed_by,
        }

    def view(self) -> dict[str, Any]:
        """The whole prescription as plain JSON values: what the read model stores and the API returns."""
        return {
            "id": str(self.id),
            "patient_id": self.patient_id,
            "doctor_id": self.doctor_id,
            "consultation_id": self.consultation_id,
            "status": self.status.value,
            "timezone": self.timezone,
            "written_at": self.written_at.isoformat(),
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "override_reason": self.override_reason,
            "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None,
            "cancel_reason": self.cancel_reason,
            "expired_at": self.expired_at.isoformat() if self.expired_at else None,
            "renewed_from": self.renewed_from,
            "renewed_by": self.renewed_by,
            "items": [
                {**item.as_dict(), "dispensed": self.dispensed[item.item_id], "remaining": item.allowed - self.dispensed[item.item_id]}
                for item in self.items
            ],
            "dispensings": list(self.dispensings),
            "checks": list(self.checks),
            "hazard_flagged": self.hazard_flagged,
            "new_hazards": list(self.new_hazards),
            "version": self.version,
        }

    def _require(self, *allowed: Status, action: str) -> None:
        if self.status not in allowed:
            raise InvalidTransitionError(f"Cannot {action} a prescription that is {self.status.value}.", current=self.summary())

    # Events: state only

    @event("ItemsRevised", topic="medledger:Prescription.ItemsRevised.v1")
    def _items_revised(self, items: list[dict[str, Any]], cause: dict[str, Any]) -> None:
        self.items = [Item.from_dict(item) for item in items]
        self.dispensed = {item.item_id: 0 for item in self.items}

    @event("SafetyChecked", topic="medledger:Prescription.SafetyChecked.v1")
    def _safety_checked(self, check: dict[str, Any], context: str, checked_at: datetime, cause: dict[str, Any]) -> None:
        self.checks.append({**check, "context": context, "checked_at": checked_at.isoformat(), "by": cause["user_id"]})

    @event("Issued", topic="medledger:Prescription.Issued.v1")
    def _issued(self, issued_at: datetime, valid_until: date, override_reason: str | None, cause: dict[str, Any]) -> None:
        self.status = Status.ISSUED
        self.issued_at = issued_at
        self.valid_until = valid_until
        self.override_reason = override_reason
        if self.checks:
            self.checks[-1]["override_reason"] = override_reason

    @event("Dispensed", topic="medledger:Prescription.Dispensed.v1")
    def _dispensed(self, item_id: str, quantity: int, dispensed_at: datetime, cause: dict[str, Any]) -> None:
        self.dispensed[item_id] += quantity
        self.dispensings.append(
            {"item_id": item_id, "quantity": quantity, "dispensed_at": dispensed_at.isoformat(), "by": cause["user_id"]}
        )
        finished = all(self.dispensed[item.item_id] >= item.allowed for item in self.items)
        self.status = Status.DISPENSED if finished else Status.PARTIALLY_DISPENSED

    @event("Cancelled", topic="medledger:Prescription.Cancelled.v1")
    def _cancelled(self, reason: str, cancelled_at: datetime, cause: dict[str, Any]) -> None:
        self.status = Status.CANCELLED
        self.cancel_reason = reason
        self.cancelled_at = cancelled_at

    @event("Expired", topic="medledger:Prescription.Expired.v1")
    def _expired(self, expired_at: datetime, cause: dict[str, Any]) -> None:
        self.status = Status.EXPIRED
        self.expired_at = expired_at

    @event("Renewed", topic="medledger:Prescription.Renewed.v1")
    def _renewed(self, renewal_id: str, cause: dict[str, Any]) -> None:
        self.renewed_by = renewal_id

    @event("Rechecked", topic="medledger:Prescription.Rechecked.v1")
    def _rechecked(
        self, check: dict[str, Any], new_findings: list[dict[str, Any]], checked_at: datetime, cause: dict[str, Any]
    ) -> None:
        self.checks.append(
            {**check, "context": "recheck", "checked_at": checked_at.isoformat(), "by": cause["user_id"], "new_findings": new_findings}
        )
        if new_findings:
            self.hazard_flagged = True
            self.new_hazards.extend(new_findings)
