"""Request and response bodies of online payment: checkout, the gateway's webhook and its day log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import CommandResult
from domain.webhooks import EventType

WEBHOOK_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A gateway event, signed in the Medledger-Signature header: t=<unix seconds>,v1=<hex HMAC-SHA256 "
    "of `t.raw body` under the shared secret> (several v1 while the secret is rotated).",
    "required": ["id", "type", "data"],
    "properties": {
        "id": {"type": "string", "description": "The gateway's event id: each is applied once."},
        "type": {"type": "string", "enum": [t.value for t in EventType]},
        "data": {
            "type": "object",
            "required": ["invoice_id", "reference", "amount", "currency"],
            "properties": {
                "invoice_id": {"type": "string"},
                "reference": {"type": "string", "description": "The gateway's payment id: one payment however often sent."},
                "amount": {"type": "string", "description": "A decimal amount, e.g. 120.00"},
                "currency": {"type": "string", "description": "ISO 4217, e.g. EUR"},
                "failure_message": {"type": "string", "description": "payment.failed: why."},
            },
        },
    },
}


class WebhookAccepted(CommandResult):
    """id: the event's receipt, a record of its own (its history at /audit/records/{id}/history)."""

    event_id: str
    outcome: Literal["payment_recorded", "payment_already_recorded", "payment_failed"] = Field(
        description="payment_already_recorded: the gateway's payment came before under another event id; it is one payment."
    )
    invoice_id: str
    payment_id: str | None = None
    balance: str | None = Field(default=None, description="What the invoice still owes after the payment.")


class CheckoutPublic(BaseModel):
    gateway: str = Field(description="The gateway that takes the payment.")
    invoice_id: str
    number: str = Field(description="The invoice's number.")
    amount_due: str = Field(description="What is owed now, a decimal string in the invoice's currency.")
    currency: str
    webhook_url: str = Field(description="Where the gateway reports the payment (payment.succeeded or payment.failed).")
    signature_header: str
    event_types: list[str]


class WebhookLogEntry(BaseModel):
    kind: Literal["rejected", "payment_failed"]
    reason: str = Field(description="rejected: the refusal's code; payment_failed: the gateway's reason.")
    message: str | None = Field(description="rejected: the sentence the gateway was answered.")
    event: dict[str, Any] | None = Field(description="What could be read of the event (nothing before its signature verified).")
    delivery: dict[str, Any] = Field(description="When, from which address, the body's size and SHA-256.")


class WebhookLogPublic(BaseModel):
    gateway: str
    day: str
    record_id: str = Field(description="The log's record: its full history at /audit/records/{record_id}/history.")
    entries: list[WebhookLogEntry]
