"""The payment gateway's webhooks: each gateway event received once, and a day's refused deliveries and failed payments.

A receipt's stream is named by the gateway's event id, so the event store itself refuses a second receipt of the same
event, also when two deliveries of it arrive at once. Refusals are kept on the day's log for auditors and the front
desk: why (a reason code), what (the event id when one could be read, a SHA-256 of the body), from where.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.money import text
from domain.shared import Cause, ConflictError, DomainError, InvalidInputError, stable_id


class EventType(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"


class Outcome(StrEnum):
    PAYMENT_RECORDED = "payment_recorded"
    PAYMENT_ALREADY_RECORDED = "payment_already_recorded"
    PAYMENT_FAILED = "payment_failed"
    REFUSED = "refused"


class UnverifiedWebhookError(DomainError):
    """Raised when a delivery carries no authentic, fresh signature: its body is never read (HTTP 400).

    Codes: missing_signature, malformed_signature, bad_signature, stale_timestamp, future_timestamp, body_too_large."""

    code = "bad_signature"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MalformedWebhookError(InvalidInputError):
    """Raised when a correctly signed body is not a gateway event this service understands."""

    code = "malformed_webhook"

    def __init__(self, message: str, event_id: str | None = None) -> None:
        super().__init__(message, field="body")
        self.event_id = event_id


class UnknownInvoiceError(InvalidInputError):
    """Raised when a verified gateway event names an invoice this clinic does not have."""

    code = "unknown_invoice"


class ReplayedWebhookError(ConflictError):
    """Raised when a gateway event was received before: it is never applied twice."""

    code = "webhook_replayed"


class GatewayNotConfiguredError(DomainError):
    """Raised when online payment is asked for and no gateway secret is configured (HTTP 503)."""

    code = "gateway_not_configured"


@dataclass(frozen=True)
class GatewayEvent:
    """A verified gateway event: a payment of an invoice succeeded or failed at the gateway."""

    id: str
    type: EventType
    invoice_id: str
    reference: str
    amount: Decimal
    currency: str
    failure: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.id,
            "event_type": self.type.value,
            "invoice_id": self.invoice_id,
            "reference": self.reference,
            "amount": text(self.amount),
            "currency": self.currency,
            "failure": self.failure,
        }


@dataclass(frozen=True)
class Delivery:
    """What arrived, whatever it said: when, from where, its size and its SHA-256 (never the body, never a secret)."""

    received_at: datetime
    remote_address: str | None
    body_sha256: str
    body_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "received_at": self.received_at.isoformat()}


def receipt_id(gateway: str, event_id: str) -> UUID:
    return stable_id("webhook-receipt", gateway, event_id)


def log_id(gateway: str, day: date) -> UUID:
    return stable_id("webhook-log", gateway, day.isoformat())


class WebhookReceipt(Aggregate):
    """One gateway event, received once, with what came of it."""

    TOPIC = "medledger:WebhookReceipt"

    class Created(Aggregate.Created):
        TOPIC = "medledger:WebhookReceipt.Created"

    @classmethod
    def receive(
        cls, gateway: str, received: GatewayEvent, delivery: Delivery, outcome: Outcome, cause: Cause,
        payment_id: str | None = None, refusal: str | None = None,
    ) -> WebhookReceipt:
        return cls(
            id=receipt_id(gateway, received.id),
            gateway=gateway,
            received=received.as_dict(),
            delivery=delivery.as_dict(),
            outcome=outcome.value,
            payment_id=payment_id,
            refusal=refusal,
            cause=cause.as_dict(),
        )

    @event("Received", topic="medledger:WebhookReceipt.Received.v1")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - derived from the gateway's event id
        gateway: str,
        received: dict[str, Any],
        delivery: dict[str, Any],
        outcome: str,
        payment_id: str | None,
        refusal: str | None,
        cause: dict[str, Any],
    ) -> None:
        self.gateway = gateway
        self.received = received
        self.delivery = delivery
        self.outcome = Outcome(outcome)
        self.payment_id = payment_id
        self.refusal = refusal


class WebhookLog(Aggregate):
    """One gateway's day: every delivery refused (and why) and every failed payment it reported."""

    TOPIC = "medledger:WebhookLog"

    class Created(Aggregate.Created):
        TOPIC = "medledger:WebhookLog.Created"

    @event("Opened", topic="medledger:WebhookLog.Opened.v1")
    def __init__(self, id: UUID, gateway: str, day: date) -> None:  # noqa: A002 - derived from the gateway and the day
        self.gateway = gateway
        self.day = day
        self.entries: list[dict[str, Any]] = []

    @classmethod
    def open(cls, gateway: str, day: date) -> WebhookLog:
        return cls(id=log_id(gateway, day), gateway=gateway, day=day)

    def refuse(self, reason: str, message: str, delivery: Delivery, cause: Cause, received: dict[str, Any] | None = None) -> None:
        """Records a refused delivery: the reason code, the sentence answered, and what could be read of the event."""
        self._rejected(reason, message, delivery.as_dict(), received, cause.as_dict())

    def payment_failed(self, received: GatewayEvent, delivery: Delivery, cause: Cause) -> None:
        self._payment_failed(received.as_dict(), delivery.as_dict(), cause.as_dict())

    @event("Rejected", topic="medledger:WebhookLog.Rejected.v1")
    def _rejected(
        self, reason: str, message: str, delivery: dict[str, Any], received: dict[str, Any] | None, cause: dict[str, Any]
    ) -> None:
        self.entries.append({"kind": "rejected", "reason": reason, "message": message, "event": received, "delivery": delivery})

    @event("PaymentFailed", topic="medledger:WebhookLog.PaymentFailed.v1")
    def _payment_failed(self, received: dict[str, Any], delivery: dict[str, Any], cause: dict[str, Any]) -> None:
        self.entries.append({"kind": "payment_failed", "reason": received["failure"], "message": None, "event": received, "delivery": delivery})
