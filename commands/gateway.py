"""Online payment: a patient's checkout of their own invoice, and the gateway's webhooks, received once each and
every refusal recorded.

A delivery is verified by the gateway (the Gateway port) before anything of it is believed. A verified payment is
recorded as the system (account `gateway`) by commands.billing.record_payment, whose reference is the gateway's
payment id, so the same payment sent again under a new event id is still one payment. The receipt is saved after
the payment: a crash between the two leaves no receipt, and the gateway's retry records the (same) payment and
its receipt then; two deliveries of one event at once both reach the payment (one payment), and only one the receipt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from commands.base import Actor, ConcurrentUpdateError, Outcome, RecordNotFoundError, Services, load_or_open, require, retrying
from commands.billing import PaymentOutcome, RecordPayment, record_payment
from domain.invoice import Invoice, Method
from domain.money import text
from domain.shared import ConflictError, DomainError, NotFoundError, Role
from domain.webhooks import (
    Delivery,
    EventType,
    GatewayEvent,
    Outcome as ReceiptOutcome,
    ReplayedWebhookError,
    UnknownInvoiceError,
    WebhookLog,
    WebhookReceipt,
    log_id,
    receipt_id,
)

GATEWAY_ACCOUNT = "gateway"


@dataclass(frozen=True)
class Payable:
    """What a patient owes on one of their issued invoices."""

    invoice_id: str
    number: str
    amount_due: str
    currency: str


@dataclass(frozen=True)
class Checkout:
    """What the gateway needs to take a payment of an invoice and report it back."""

    gateway: str
    invoice_id: str
    number: str
    amount_due: str
    currency: str
    webhook_url: str
    signature_header: str
    event_types: tuple[str, ...]


class Gateway(Protocol):
    """A payment gateway: verifies its webhooks and says what a checkout needs."""

    name: str

    def verify(self, raw_body: bytes, headers: Mapping[str, str], now: datetime) -> GatewayEvent:
        """The event of an authentic, fresh delivery; UnverifiedWebhookError before the body is read, or
        MalformedWebhookError for a signed body that is no event this service understands."""
        ...

    def checkout(self, payable: Payable, webhook_url: str) -> Checkout: ...


@dataclass(frozen=True)
class WebhookOutcome(Outcome):
    """The event's receipt (id: its record, whose history auditors read) and what came of it."""

    event_id: str = ""
    outcome: str = ""
    invoice_id: str = ""
    payment_id: str | None = None
    balance: str | None = None


def gateway_actor(correlation_id: str) -> Actor:
    """The gateway acting through its verified webhook: the system, as an admin may record a payment."""
    return Actor(GATEWAY_ACCOUNT, Role.ADMIN, None, correlation_id)


def delivery_of(raw_body: bytes, remote_address: str | None, received_at: datetime) -> Delivery:
    return Delivery(received_at, remote_address, hashlib.sha256(raw_body).hexdigest(), len(raw_body))


def payable(svc: Services, invoice_id: str, actor: Actor) -> Payable:
    """A patient's own issued invoice that owes something: "not found" for anyone else's and for drafts,
    a conflict when nothing is owed."""
    require(actor.is_(Role.PATIENT), "Only patients pay their invoices online.")
    invoice = svc.store.find(Invoice, invoice_id)
    if invoice is None or invoice.patient_id != actor.profile_id or invoice.number is None:
        raise RecordNotFoundError(f"No invoice {invoice_id}.")
    if invoice.balance <= 0:
        raise ConflictError(f"Nothing is owed on invoice {invoice.number}.", current=invoice.summary())
    return Payable(str(invoice.id), invoice.number, text(invoice.balance), invoice.currency)


def _day_log(svc: Services, gateway: str, day: date) -> WebhookLog:
    stream = log_id(gateway, day)
    return load_or_open(svc.store, WebhookLog, stream, id=stream, gateway=gateway, day=day)


def record_rejection(
    svc: Services, gateway: str, refusal: DomainError, delivery: Delivery, actor: Actor, received: GatewayEvent | None = None
) -> int | None:
    """Records a refused delivery on the gateway's day log (the day of the clinic's calendar)."""
    event_id = received.id if received is not None else getattr(refusal, "event_id", None)
    what = received.as_dict() if received is not None else ({"event_id": event_id} if event_id else None)
    day = svc.billing.local_date(delivery.received_at)

    def decide() -> int | None:
        log = _day_log(svc, gateway, day)
        log.refuse(refusal.code, refusal.message, delivery, actor.cause, what)
        return svc.store.save(log)

    return retrying(svc.store, decide)


def receive_webhook(
    svc: Services, gateway: Gateway, raw_body: bytes, headers: Mapping[str, str], remote_address: str | None, actor: Actor
) -> WebhookOutcome:
    """Verifies a delivery and applies its event once; any refusal is recorded on the day's log and raised."""
    delivery = delivery_of(raw_body, remote_address, svc.clock())
    received: GatewayEvent | None = None
    try:
        received = gateway.verify(raw_body, headers, delivery.received_at)
        return _apply(svc, gateway.name, received, delivery, actor)
    except _Refused as refused:
        raise refused.error from None
    except DomainError as refusal:
        record_rejection(svc, gateway.name, refusal, delivery, actor, received)
        raise


class _Refused(Exception):
    """Carries a refusal that is recorded already (with the receipt that settles its event)."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


def _replayed(earlier: WebhookReceipt) -> ReplayedWebhookError:
    return ReplayedWebhookError(
        f"Gateway event {earlier.received['event_id']} was received before; it is not applied again.",
        current={"outcome": earlier.outcome.value, "payment_id": earlier.payment_id, "refusal": earlier.refusal},
    )


def _apply(svc: Services, gateway: str, received: GatewayEvent, delivery: Delivery, actor: Actor) -> WebhookOutcome:
    stream = receipt_id(gateway, received.id)
    earlier = svc.store.find(WebhookReceipt, stream)
    if earlier is not None:
        raise _replayed(earlier)
    if received.type is EventType.PAYMENT_FAILED:
        return _settle(svc, gateway, received, delivery, actor, ReceiptOutcome.PAYMENT_FAILED)
    try:
        paid = record_payment(
            svc,
            RecordPayment(received.invoice_id, received.reference, Method.ONLINE, received.amount, received.currency, delivery.received_at),
            actor,
        )
    except ConcurrentUpdateError:
        raise  # the invoice was busy: no receipt, so the gateway's retry is applied
    except DomainError as refusal:
        if isinstance(refusal, NotFoundError):
            refusal = UnknownInvoiceError(f"No invoice {received.invoice_id}.", field="body.data.invoice_id")
        _settle(svc, gateway, received, delivery, actor, ReceiptOutcome.REFUSED, refusal=refusal)
        raise _Refused(refusal) from None
    assert isinstance(paid, PaymentOutcome)
    outcome = ReceiptOutcome.PAYMENT_RECORDED if paid.created else ReceiptOutcome.PAYMENT_ALREADY_RECORDED
    settled = _settle(svc, gateway, received, delivery, actor, outcome, payment_id=paid.payment_id)
    position = max(p for p in (paid.position, settled.position, 0) if p is not None)
    return WebhookOutcome(settled.id, position, True, received.id, outcome.value, received.invoice_id, paid.payment_id, paid.balance)


def _settle(
    svc: Services,
    gateway: str,
    received: GatewayEvent,
    delivery: Delivery,
    actor: Actor,
    outcome: ReceiptOutcome,
    payment_id: str | None = None,
    refusal: DomainError | None = None,
) -> WebhookOutcome:
    """Saves the event's receipt (with the day log's entry of a failed payment or a refusal, in one transaction);
    a receipt saved meanwhile by another delivery of the event makes this one a replay."""
    day = svc.billing.local_date(delivery.received_at)

    def decide() -> WebhookOutcome:
        earlier = svc.store.find(WebhookReceipt, receipt_id(gateway, received.id))
        if earlier is not None:
            raise _replayed(earlier)
        receipt = WebhookReceipt.receive(
            gateway, received, delivery, outcome, actor.cause, payment_id=payment_id, refusal=refusal.code if refusal else None
        )
        log = None
        if outcome is ReceiptOutcome.PAYMENT_FAILED or refusal is not None:
            log = _day_log(svc, gateway, day)
            if refusal is not None:
                log.refuse(refusal.code, refusal.message, delivery, actor.cause, received.as_dict())
            else:
                log.payment_failed(received, delivery, actor.cause)
        position = svc.store.save(receipt, log)
        return WebhookOutcome(str(receipt.id), position, True, received.id, outcome.value, received.invoice_id, payment_id)

    return retrying(svc.store, decide)


def webhook_log(svc: Services, gateway: str, day: date, actor: Actor) -> WebhookLog | None:
    """The gateway's day log: admins (the front desk sees failed payments) and auditors."""
    require(actor.is_(Role.ADMIN, Role.AUDITOR), "Only admins and auditors read the gateway's log.")
    return svc.store.find(WebhookLog, log_id(gateway, day))
