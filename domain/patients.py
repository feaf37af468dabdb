"""Patient: demographics, contacts, insurance, blood group and allergies."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.shared import Cause, changed_fields


REQUIRED_PROFILE_FIELDS = frozenset({"full_name", "date_of_birth", "sex", "phone"})


class Patient(Aggregate):
    TOPIC = "medledger:Patient"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Patient.Created"

    @event("Registered", topic="medledger:Patient.Registered.v1")
    def __init__(self, account_id: str, profile: dict[str, Any], cause: dict[str, Any]) -> None:
        self.account_id = account_id
        self.profile = dict(profile)

    def update_profile(self, changes: dict[str, Any], cause: Cause) -> None:
        changed = changed_fields(self.profile, changes, REQUIRED_PROFILE_FIELDS)
        if changed:
            self._profile_updated(changed, cause.as_dict())

    @event("ProfileUpdated", topic="medledger:Patient.ProfileUpdated.v1")
    def _profile_updated(self, changes: dict[str, Any], cause: dict[str, Any]) -> None:
        self.profile.update(changes)
