"""The error responses operations declare: one error body, each status's meaning, and the rules behind a 422."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    field: str = Field(description="Where the fault is: body.a.b (a JSON body), a query, path or form field, or a header.")
    reason: str


class ErrorBody(BaseModel):
    """Every error answer: a machine code, a sentence, and, as the status calls for them, the fields at fault
    (422) or the current state of the record (409) and other details named by the code."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Machine-readable, stable: e.g. invalid_request, slot_taken, not_found.")
    message: str = Field(description="A sentence for a person.")
    errors: list[FieldError] = Field(default=[], description="422: each field at fault and why.")
    current: Any = Field(default=None, description="409: the record's current state.")


@dataclass(frozen=True)
class Refusal:
    """A rule that refuses (422) a value the schema allows: it depends on the clock, on stored records, on who
    asks or on another field. The answer's code is `code` and its errors name `field`."""

    field: str
    when: str
    code: str = "invalid_input"


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
MEANING = {
    400: "A webhook without an authentic, fresh signature (`missing_signature`, `malformed_signature`, `bad_signature`, "
    "`stale_timestamp`, `future_timestamp`, `body_too_large`): its body was not read; the refusal is recorded.",
    401: "Not authenticated: no bearer token, or one that is malformed, expired, foreign-signed or revoked.",
    403: "Known caller without the right to do this.",
    404: "No such record, or one the caller may not know exists.",
    410: "The record existed, but its patient's data was erased (`erased`): it can never be read again.",
    409: "Conflicts with the record's current state (in `current` where there is one), or the record is busy "
    "(`concurrent_update`, `idempotency_key_in_flight`): read it again and decide.",
    429: "Too many attempts: wait for Retry-After seconds.",
    503: "Storage is unavailable, a read model has not reached `?after=` in time, or the medication safety "
    "checker cannot run: nothing was recorded; retry after Retry-After seconds. `gateway_not_configured`: online "
    "payment is off (no gateway secret is configured).",
}
WITH_RETRY_AFTER = frozenset({429, 503})
IDEMPOTENCY_REUSED = Refusal("Idempotency-Key", "the key was used before with another body", "idempotency_key_reused")
UNKNOWN_POSITION = Refusal("after", "a position beyond the end of the event log", "position_not_in_log")


def _invalid(refusals: tuple[Refusal, ...]) -> dict[str, Any]:
    text = (
        "The request is not valid. `invalid_request`: it does not match this schema; `duplicate_key`: a JSON object "
        "gives a key twice. Each field at fault is in `errors`."
    )
    if refusals:
        rules = "\n".join(f"- `{r.code}` on `{r.field}`: {r.when}" for r in refusals)
        text += f"\n\nRefused although the schema allows it:\n{rules}"
    return {
        "description": text,
        "model": ErrorBody,
        "x-refusals": [asdict(refusal) for refusal in refusals],
    }


def errors(*statuses: int, refusals: tuple[Refusal, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """The responses= of an operation or a router: these error statuses (422 always), each with the error body."""
    declared: dict[int | str, dict[str, Any]] = {422: _invalid(refusals)}
    for status in statuses:
        if status == 422:
            continue
        declared[status] = {"description": MEANING[status], "model": ErrorBody}
        if status in WITH_RETRY_AFTER:
            declared[status]["headers"] = RETRY_AFTER
    return declared


def query(*statuses: int, refusals: tuple[Refusal, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """The responses= of a read of read models: also a ?after= beyond the end of the log."""
    return errors(*statuses, refusals=(*refusals, UNKNOWN_POSITION))


def command(*statuses: int, refusals: tuple[Refusal, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """The responses= of a command: also 409 (conflicts, busy records), 429 (rate limits) and a reused
    Idempotency-Key."""
    return errors(409, 429, *statuses, refusals=(*refusals, IDEMPOTENCY_REUSED))
