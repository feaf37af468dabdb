"""The signed-webhook gateway: a signature over `t.raw body`, checked before the body is read, within a tolerance."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.webhooks import EventType, MalformedWebhookError, UnverifiedWebhookError
from infrastructure.gateway import SIGNATURE_HEADER, SignedWebhookGateway, sign, signature_header, simulated_event

SECRET = "whsec_unit"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())
GATEWAY = SignedWebhookGateway(SECRET, 300)
BODY = simulated_event(EventType.PAYMENT_SUCCEEDED, "inv-1", "pay_1", "12.50", "EUR", "evt_1")


def verify(body: bytes, header: str | None, now: datetime = NOW):
    return GATEWAY.verify(body, {} if header is None else {SIGNATURE_HEADER: header}, now)


def refusal(body: bytes, header: str | None, now: datetime = NOW) -> str:
    with pytest.raises(UnverifiedWebhookError) as refused:
        verify(body, header, now)
    return refused.value.code


def test_a_good_signature_yields_the_typed_event() -> None:
    received = verify(BODY, signature_header(SECRET, T, BODY))
    assert (received.id, received.type, received.invoice_id, received.reference) == ("evt_1", EventType.PAYMENT_SUCCEEDED, "inv-1", "pay_1")
    assert (received.amount, received.currency, received.failure) == (Decimal("12.50"), "EUR", None)


def test_the_signature_is_the_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    assert sign(SECRET, T, BODY) == hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()


def test_any_one_of_several_signatures_may_match_while_a_secret_is_rotated() -> None:
    assert verify(BODY, signature_header("old", T, BODY, SECRET)).id == "evt_1"
    assert verify(BODY, f"t={T},v1={sign(SECRET, T, BODY).upper()}").id == "evt_1"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        (f"v1={sign(SECRET, T, BODY)}", "malformed_signature"),
        (f"t={T}", "malformed_signature"),
        (f"t={T},t={T},v1={sign(SECRET, T, BODY)}", "malformed_signature"),
        (f"t=-{T},v1={sign(SECRET, T, BODY)}", "malformed_signature"),
        (f"t={T}" + f",v1={'0' * 64}" * 9, "malformed_signature"),
        (f"t={T},v1={sign('wrong', T, BODY)}", "bad_signature"),
        (f"t={T + 1},v1={sign(SECRET, T, BODY)}", "bad_signature"),
        (f"t={T},v1={sign(SECRET, T, BODY)[:-1]}", "bad_signature"),
    ],
)
def test_a_header_that_does_not_prove_the_body_is_refused(header: str | None, code: str) -> None:
    assert refusal(BODY, header) == code


def test_a_tampered_body_is_refused() -> None:
    assert refusal(BODY.replace(b"12.50", b"1.25"), signature_header(SECRET, T, BODY)) == "bad_signature"


def test_the_tolerance_holds_both_ways_and_its_edges_are_inside() -> None:
    header = signature_header(SECRET, T, BODY)
    assert verify(BODY, header, NOW + timedelta(seconds=300)).id == "evt_1"
    assert verify(BODY, header, NOW - timedelta(seconds=300)).id == "evt_1"
    assert refusal(BODY, header, NOW + timedelta(seconds=301)) == "stale_timestamp"
    assert refusal(BODY, header, NOW - timedelta(seconds=301)) == "future_timestamp"


def test_a_wrong_signature_is_refused_as_such_even_when_stale() -> None:
    assert refusal(BODY, signature_header("wrong", T - 10_000, BODY)) == "bad_signature"


def test_an_oversized_body_is_refused_before_anything_else() -> None:
    assert refusal(b"x" * (64 * 1024 + 1), None) == "body_too_large"


@pytest.mark.parametrize(
    "document",
    [
        {"id": "evt_2", "type": "payment.succeeded"},
        {"id": "evt_2", "type": "payment.refunded", "data": {"invoice_id": "i", "reference": "r", "amount": "1", "currency": "EUR"}},
        {"id": "evt_2", "type": "payment.succeeded", "data": {"invoice_id": "i", "reference": "r", "amount": "1e3", "currency": "EUR"}},
        {"id": "evt_2", "type": "payment.succeeded", "data": {"invoice_id": "i", "reference": "", "amount": "1", "currency": "EUR"}},
        {"id": 7, "type": "payment.succeeded", "data": {"invoice_id": "i", "reference": "r", "amount": "1", "currency": "EUR"}},
    ],
)
def test_a_signed_body_that_is_no_payment_event_is_malformed_and_names_its_event_when_it_can(document: dict) -> None:
    body = json.dumps(document).encode()
    with pytest.raises(MalformedWebhookError) as refused:
        verify(body, signature_header(SECRET, T, body))
    assert refused.value.event_id == (document["id"] if isinstance(document["id"], str) else None)


def test_a_failed_payment_carries_its_reason() -> None:
    body = simulated_event(EventType.PAYMENT_FAILED, "inv-1", "pay_1", "12.50", "EUR", "evt_3", "insufficient_funds")
    assert verify(body, signature_header(SECRET, T, body)).failure == "insufficient_funds"
