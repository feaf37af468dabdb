"""Online payment: a patient's checkout, the gateway's signed webhook, and the gateway's day log."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import CorrelationId, CurrentActor, MedledgerDep, outcome_body, with_position
from api.gateway_schemas import WEBHOOK_EVENT_SCHEMA, CheckoutPublic, WebhookAccepted, WebhookLogPublic
from api.responses import Refusal, errors
from commands import gateway as commands
from domain.webhooks import GatewayNotConfiguredError, log_id
from infrastructure.bootstrap import Medledger
from infrastructure.gateway import MAX_BODY_BYTES, SIGNATURE_HEADER, SignedWebhookGateway

# No StrictJSONRoute: the webhook's body is read as bytes and only parsed once its signature verifies.
router = APIRouter(tags=["billing"])

WEBHOOK_RULES = (
    Refusal("body", "a correctly signed body that is no payment event this service understands", "malformed_webhook"),
    Refusal("body", "the event names an invoice this clinic does not have", "unknown_invoice"),
    Refusal("currency", "the payment's currency is not the invoice's", "mixed_currencies"),
    Refusal("amount", "more decimals than the currency has", "invalid_input"),
    Refusal("reference", "a payment reference of blanks only", "invalid_input"),
)
WEBHOOK_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": WEBHOOK_EVENT_SCHEMA}}},
    "parameters": [
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": False,
            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of `t.raw body`>; a missing one is refused with 400.",
            "schema": {"type": "string"},
        }
    ],
}


def configured_gateway(m: Medledger) -> SignedWebhookGateway:
    secret = m.settings.gateway_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise GatewayNotConfiguredError("Online payment is not available: no gateway secret is configured.")
    return SignedWebhookGateway(secret.get_secret_value(), m.settings.gateway_tolerance_seconds)


async def _body_within_limit(request: Request) -> bytes:
    """The raw body, read no further than the chunk that passes the limit (the gateway then refuses it as too large)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            break
    return bytes(raw)


@router.post(
    "/billing/gateway/webhook",
    name="gateway_webhook",
    response_model=WebhookAccepted,
    responses=errors(400, 409, 503, refusals=WEBHOOK_RULES),
    openapi_extra=WEBHOOK_OPENAPI,
)
async def webhook(request: Request, m: MedledgerDep, correlation: CorrelationId) -> Any:
    """The gateway reports a payment (no bearer token: the signature is its authentication). 200 once per event;
    400 unsigned, wrongly signed, stale or future; 409 replayed or refused by the invoice (overpaid, void, a
    reference on another invoice); 422 a signed body that is no payment event or names no invoice of ours.
    Every refusal is recorded on the gateway's day log."""
    gateway = configured_gateway(m)
    raw_body = await _body_within_limit(request)
    remote = request.client.host if request.client else None
    actor = commands.gateway_actor(correlation)
    outcome = await run_in_threadpool(commands.receive_webhook, m.services, gateway, raw_body, request.headers, remote, actor)
    return outcome_body(with_position(m, outcome))


@router.post(
    "/invoices/{invoice_id}/checkout", response_model=CheckoutPublic, responses=errors(401, 403, 404, 409, 429, 503)
)
def checkout(invoice_id: str, actor: CurrentActor, m: MedledgerDep, request: Request) -> Any:
    """What the gateway needs to take the payment of one of the patient's own issued invoices: the amount due, its
    currency and where to report it. 404 for anyone else's invoice and for drafts; 409 when nothing is owed."""
    payable = commands.payable(m.services, invoice_id, actor)
    gateway = configured_gateway(m)
    return asdict(gateway.checkout(payable, str(request.url_for("gateway_webhook"))))


@router.get("/billing/gateway/log", response_model=WebhookLogPublic, responses=errors(401, 403, 503))
def gateway_log(
    actor: CurrentActor,
    m: MedledgerDep,
    day: Annotated[date, Query(description="The day, in the clinic's time zone.")],
) -> Any:
    """The gateway's refused deliveries and failed payments of one day, in order: admins (the front desk) and auditors."""
    found = commands.webhook_log(m.services, SignedWebhookGateway.name, day, actor)
    record_id = log_id(SignedWebhookGateway.name, day)
    entries = found.entries if found is not None else []
    return {"gateway": SignedWebhookGateway.name, "day": day.isoformat(), "record_id": str(record_id), "entries": entries}
