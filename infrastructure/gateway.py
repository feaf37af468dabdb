"""The signed-webhook payment gateway (Stripe's scheme), and the local simulator's signing and sending.

A delivery carries `Medledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.raw body">` (several v1 values
while the gateway's secret is being rotated). The signature is checked over the raw bytes, in constant time, before
the body is parsed; a timestamp outside the tolerance, in the past or the future, is refused even when signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from commands.gateway import Checkout, Payable
from domain.webhooks import EventType, GatewayEvent, MalformedWebhookError, UnverifiedWebhookError

SIGNATURE_HEADER = "Medledger-Signature"
SCHEME = "v1"
MAX_SIGNATURES = 8
MAX_BODY_BYTES = 64 * 1024
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp.raw_body` under the shared secret."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw_body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, raw_body: bytes, *more_secrets: str) -> str:
    """The header's value: the timestamp and one v1 signature per secret (the current one first)."""
    return ",".join([f"t={timestamp}", *(f"{SCHEME}={sign(s, timestamp, raw_body)}" for s in (secret, *more_secrets))])


def _parsed_header(value: str | None) -> tuple[int, list[str]]:
    if value is None or not value.strip():
        raise UnverifiedWebhookError("missing_signature", f"The {SIGNATURE_HEADER} header is missing.")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        key, _, given = item.strip().partition("=")
        if key == "t":
            timestamps.append(given)
        elif key == SCHEME:
            signatures.append(given.lower())
    if len(timestamps) != 1 or not _TIMESTAMP.match(timestamps[0]) or not signatures or len(signatures) > MAX_SIGNATURES:
        raise UnverifiedWebhookError(
            "malformed_signature", f"The {SIGNATURE_HEADER} header is not t=<unix seconds>,v1=<hex signature>[,v1=...]."
        )
    return int(timestamps[0]), signatures


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _PaymentData(_Strict):
    invoice_id: str = Field(min_length=1, max_length=100)
    reference: str = Field(min_length=1, max_length=200, description="The gateway's payment id.")
    amount: str = Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,6})?$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    failure_message: str | None = Field(default=None, max_length=500)


class _Event(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    type: str
    data: _PaymentData


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a key is given more than once")
    return found


def parse_event(raw_body: bytes) -> GatewayEvent:
    """The event in a verified body; MalformedWebhookError (with the event id when it could be read) otherwise."""
    try:
        document = json.loads(raw_body, object_pairs_hook=_no_repeated_keys)
    except (ValueError, RecursionError):
        raise MalformedWebhookError("The body is not a JSON object with each key once.") from None
    event_id = document.get("id") if isinstance(document, dict) and isinstance(document.get("id"), str) else None
    event_id = event_id[:200] if event_id else None
    try:
        parsed = _Event.model_validate(document)
        event_type = EventType(parsed.type)
        amount = Decimal(parsed.data.amount)
    except ValidationError as invalid:
        where = ".".join(str(part) for part in invalid.errors()[0]["loc"])
        raise MalformedWebhookError(f"The event is not a payment event: {where or 'body'} is missing or invalid.", event_id) from None
    except (ValueError, InvalidOperation):
        known = ", ".join(t.value for t in EventType)
        raise MalformedWebhookError(f"The event type is not one of {known}.", event_id) from None
    data = parsed.data
    failure = (data.failure_message or "no reason given") if event_type is EventType.PAYMENT_FAILED else None
    return GatewayEvent(parsed.id, event_type, data.invoice_id, data.reference, amount, data.currency, failure)


class SignedWebhookGateway:
    """A gateway that signs its webhooks with a shared secret (Stripe's scheme)."""

    name = "signed-webhook"

    def __init__(self, secret: str, tolerance_seconds: int) -> None:
        self._secret = secret
        self.tolerance_seconds = tolerance_seconds

    def verify(self, raw_body: bytes, headers: Mapping[str, str], now: datetime) -> GatewayEvent:
        if len(raw_body) > MAX_BODY_BYTES:
            raise UnverifiedWebhookError("body_too_large", f"A webhook body is at most {MAX_BODY_BYTES} bytes.")
        timestamp, signatures = _parsed_header(headers.get(SIGNATURE_HEADER))
        expected = sign(self._secret, timestamp, raw_body)
        matched = False
        for given in signatures:
            matched |= _HEX_DIGEST.match(given) is not None and hmac.compare_digest(expected, given)
        if not matched:
            raise UnverifiedWebhookError("bad_signature", "No signature in the header matches the body under the shared secret.")
        age = now.timestamp() - timestamp
        if age > self.tolerance_seconds:
            raise UnverifiedWebhookError("stale_timestamp", f"The signature is more than {self.tolerance_seconds} s old.")
        if age < -self.tolerance_seconds:
            raise UnverifiedWebhookError("future_timestamp", f"The signature is dated more than {self.tolerance_seconds} s ahead.")
        return parse_event(raw_body)

    def checkout(self, payable: Payable, webhook_url: str) -> Checkout:
        return Checkout(
            gateway=self.name,
            invoice_id=payable.invoice_id,
            number=payable.number,
            amount_due=payable.amount_due,
            currency=payable.currency,
            webhook_url=webhook_url,
            signature_header=SIGNATURE_HEADER,
            event_types=tuple(t.value for t in EventType),
        )


# The simulator: what a gateway would send


def simulated_event(
    event_type: EventType, invoice_id: str, reference: str, amount: str, currency: str, event_id: str, failure: str | None = None
) -> bytes:
    data: dict[str, Any] = {"invoice_id": invoice_id, "reference": reference, "amount": amount, "currency": currency}
    if event_type is EventType.PAYMENT_FAILED:
        data["failure_message"] = failure or "card_declined"
    return json.dumps({"id": event_id, "type": event_type.value, "data": data}).encode()


def send(url: str, raw_body: bytes, header: str | None, timeout: float = 30) -> tuple[int, str]:
    """POSTs the body with the signature header (none when None); answers the status and the answer's text."""
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    request = urllib.request.Request(url, data=raw_body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - the operator names the URL
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode("utf-8", "replace")


def unix_now() -> int:
    return int(datetime.now(timezone.utc).timestamp())
