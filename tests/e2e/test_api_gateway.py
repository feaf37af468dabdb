"""Online payment over HTTP: the gateway's signed webhook applied once per event, every refusal answered 4xx and
recorded on the gateway's day log, the patient's checkout, and the simulator against a real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from e2e_helpers import OPERATOR, PASSWORD, expect, patient_profile, running_server, unique_email
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from commands import billing
from commands import gateway as gateway_commands
from commands.accounts import CreateAccount, create_account
from domain.accounts import Account
from domain.invoice import Invoice
from domain.price_list import ServiceKind
from domain.shared import DomainError, Role
from domain.webhooks import EventType, WebhookReceipt, receipt_id
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.cli import cli
from infrastructure.gateway import SIGNATURE_HEADER, SignedWebhookGateway, signature_header, simulated_event
from infrastructure.settings import Settings
from tests.conftest import POSTGRES_URL, TEST_LOG_KEY, TEST_MASTER_KEY, TEST_SECRET, drop_schema, need_postgres

SECRET = "whsec_test_0123456789abcdef"
OLD_SECRET = "whsec_old_fedcba9876543210"
TOLERANCE = 300
WEBHOOK = "/billing/gateway/webhook"
GATEWAY = SignedWebhookGateway.name


def gateway_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "jwt_secret": TEST_SECRET,
        "log_signing_key": TEST_LOG_KEY,
        "master_key": TEST_MASTER_KEY,
        "password_hashing": "fast",
        "write_rate_limit": "1000000/minute",
        "gateway_webhook_secret": SECRET,
        "gateway_tolerance_seconds": TOLERANCE,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def system(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Medledger]:
    """One system per backend for the module (tests make their own invoices, so they never collide)."""
    overrides: dict[str, object] = {}
    schema = f"test_{uuid4().hex[:16]}"
    if request.param == "postgres":
        need_postgres()
        overrides = {"database_url": POSTGRES_URL, "database_schema": schema, "pool_size": 2}
    medledger = bootstrap(gateway_settings(tmp_path_factory.mktemp("data"), **overrides))
    medledger.start_projector()
    billing.set_tax_category(medledger.services, billing.SetTaxCategory("standard", Decimal("0")), OPERATOR)
    billing.price_service(
        medledger.services, billing.PriceService("visit", "Visit", ServiceKind.CONSULTATION, Decimal("120.00"), "EUR", "standard"), OPERATOR
    )
    yield medledger
    medledger.close()
    if request.param == "postgres":
        drop_schema(schema)


@pytest.fixture(scope="module")
def http(system: Medledger) -> Iterator[TestClient]:
    with TestClient(create_app(system)) as client:
        yield client


@dataclass
class Patient:
    profile_id: str
    headers: dict[str, str]


def new_patient(system: Medledger, http: TestClient) -> Patient:
    email = unique_email("patient")
    create_account(system.services, CreateAccount(email, PASSWORD, Role.PATIENT, patient_profile()), OPERATOR)
    account = system.store.find(Account, Account.create_id(email))
    assert account is not None and account.profile_id
    token = expect(http.post("/auth/login", json={"email": email, "password": PASSWORD}), 200)["access_token"]
    return Patient(account.profile_id, {"Authorization": f"Bearer {token}"})


def issued_invoice(system: Medledger, patient_id: str, quantity: str = "1") -> str:
    svc = system.services
    line = billing.LineSpec("visit", Decimal(quantity))
    drafted = billing.draft_invoice(svc, billing.DraftInvoice(patient_id, (line,)), OPERATOR)
    billing.issue_invoice(svc, billing.IssueInvoice(drafted.id), OPERATOR)
    return drafted.id


def now() -> int:
    return int(datetime.now(timezone.utc).timestamp())


def event(invoice_id: str, amount: str = "120.00", reference: str | None = None, event_id: str | None = None, **extra: Any) -> bytes:
    return simulated_event(
        extra.pop("type", EventType.PAYMENT_SUCCEEDED),
        invoice_id,
        reference or f"pay_{uuid4().hex}",
        amount,
        extra.pop("currency", "EUR"),
        event_id or f"evt_{uuid4().hex}",
    )


def deliver(http: TestClient, raw: bytes, header: str | None = "sign", secret: str = SECRET, at: int | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers[SIGNATURE_HEADER] = signature_header(secret, at if at is not None else now(), raw)
    elif header is not None:
        headers[SIGNATURE_HEADER] = header
    return http.post(WEBHOOK, content=raw, headers=headers)


def admin_headers(system: Medledger, http: TestClient) -> dict[str, str]:
    email = unique_email("admin")
    create_account(system.services, CreateAccount(email, PASSWORD, Role.ADMIN), OPERATOR)
    return {"Authorization": f"Bearer {expect(http.post('/auth/login', json={'email': email, 'password': PASSWORD}), 200)['access_token']}"}


def auditor_headers(system: Medledger, http: TestClient) -> dict[str, str]:
    email = unique_email("auditor")
    create_account(system.services, CreateAccount(email, PASSWORD, Role.AUDITOR), OPERATOR)
    return {"Authorization": f"Bearer {expect(http.post('/auth/login', json={'email': email, 'password': PASSWORD}), 200)['access_token']}"}


def rejections(system: Medledger, http: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    day = datetime.now(timezone.utc).date().isoformat()
    return expect(http.get("/billing/gateway/log", params={"day": day}, headers=headers), 200)["entries"]


def recorded_for(entries: list[dict[str, Any]], body_sha256: str) -> list[str]:
    return [e["reason"] for e in entries if e["delivery"]["body_sha256"] == body_sha256]


def sha256(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()


def invoice_of(system: Medledger, invoice_id: str) -> Invoice:
    found = system.store.find(Invoice, invoice_id)
    assert found is not None
    return found


def test_a_signed_payment_is_recorded_once_and_its_replay_is_refused_and_recorded(system: Medledger, http: TestClient) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    raw = event(invoice_id, "100.00")

    accepted = expect(deliver(http, raw), 200)
    assert accepted["outcome"] == "payment_recorded" and accepted["balance"] == "20.00" and accepted["position"] > 0
    replayed = expect(deliver(http, raw), 409, "webhook_replayed")
    assert replayed["current"]["payment_id"] == accepted["payment_id"]

    invoice = invoice_of(system, invoice_id)
    assert [(p.method.value, p.amount) for p in invoice.payments.values()] == [("online", Decimal("100.00"))]
    assert invoice.balance == Decimal("20.00")
    receipt = system.store.find(WebhookReceipt, receipt_id(GATEWAY, json.loads(raw)["id"]))
    assert receipt is not None and receipt.payment_id == accepted["payment_id"] and str(receipt.id) == accepted["id"]
    assert recorded_for(rejections(system, http, admin_headers(system, http)), sha256(raw)) == ["webhook_replayed"]
    history = expect(http.get(f"/audit/records/{accepted['id']}/history", headers=auditor_headers(system, http)), 200)
    assert [(row["event_type"], row["actor_user_id"]) for row in history["items"]] == [("WebhookReceipt.Received", "gateway")]


def test_the_same_gateway_payment_under_a_new_event_id_is_still_one_payment(system: Medledger, http: TestClient) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    first = expect(deliver(http, event(invoice_id, reference="pay_resent_" + invoice_id)), 200)
    again = expect(deliver(http, event(invoice_id, reference="pay_resent_" + invoice_id)), 200)
    assert (first["outcome"], again["outcome"]) == ("payment_recorded", "payment_already_recorded")
    assert first["payment_id"] == again["payment_id"]
    invoice = invoice_of(system, invoice_id)
    assert len(invoice.payments) == 1 and invoice.status.value == "paid"


@pytest.mark.parametrize(
    ("refusal", "code"),
    [
        ("wrong_secret", "bad_signature"),
        ("tampered_body", "bad_signature"),
        ("stale", "stale_timestamp"),
        ("future", "future_timestamp"),
        ("missing_header", "missing_signature"),
        ("garbled_header", "malformed_signature"),
        ("no_v1", "malformed_signature"),
        ("signature_not_hex", "bad_signature"),
    ],
)
def test_an_unverified_delivery_is_refused_with_400_recorded_and_changes_no_invoice(
    system: Medledger, http: TestClient, refusal: str, code: str
) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    raw = event(invoice_id)
    sent = raw
    if refusal == "wrong_secret":
        answer = deliver(http, raw, secret="not-the-secret")
    elif refusal == "tampered_body":
        sent = raw.replace(b"120.00", b"1.00")
        answer = deliver(http, sent, header=signature_header(SECRET, now(), raw))
    elif refusal in ("stale", "future"):
        answer = deliver(http, raw, at=now() + (TOLERANCE + 60) * (-1 if refusal == "stale" else 1))
    elif refusal == "missing_header":
        answer = deliver(http, raw, header=None)
    elif refusal == "garbled_header":
        answer = deliver(http, raw, header="t=yesterday,v1=" + "0" * 64)
    elif refusal == "no_v1":
        answer = deliver(http, raw, header=f"t={now()},v0=abc")
    else:
        answer = deliver(http, raw, header=f"t={now()},v1=zz{'0' * 62}")
    expect(answer, 400, code)

    assert invoice_of(system, invoice_id).payments == {}
    entries = rejections(system, http, auditor_headers(system, http))
    assert recorded_for(entries, sha256(sent)) == [code]
    assert all(e["event"] is None for e in entries if e["delivery"]["body_sha256"] == sha256(sent))  # the body was never read
    assert SECRET not in json.dumps(entries)


def test_a_signature_under_a_rotated_secret_among_several_is_accepted(system: Medledger, http: TestClient) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    raw = event(invoice_id)
    header = signature_header(OLD_SECRET, now(), raw, SECRET)
    expect(deliver(http, raw, header=header), 200)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_webhook"),
        (b'{"id": "evt_1", "id": "evt_2", "type": "payment.succeeded", "data": {}}', "malformed_webhook"),
        (b'{"id": "evt_x", "type": "charge.refunded", "data": {"invoice_id": "x", "reference": "r", "amount": "1", "currency": "EUR"}}', "malformed_webhook"),
        (b'{"id": "evt_y", "type": "payment.succeeded", "data": {"invoice_id": "x", "reference": "r", "amount": 1.5, "currency": "EUR"}}', "malformed_webhook"),
        (b"[]", "malformed_webhook"),
    ],
)
def test_a_signed_body_that_is_no_payment_event_is_refused_with_422_and_recorded(
    system: Medledger, http: TestClient, body: bytes, code: str
) -> None:
    body = body.replace(b"evt_", f"evt_{uuid4().hex}_".encode())
    expect(deliver(http, body), 422, code, "body")
    assert recorded_for(rejections(system, http, admin_headers(system, http)), sha256(body)) == [code]


def test_payments_the_invoice_refuses_are_recorded_and_not_applied_on_redelivery(system: Medledger, http: TestClient) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    too_much = event(invoice_id, "500.00")
    expect(deliver(http, too_much), 409, "overpayment")
    expect(deliver(http, too_much), 409, "webhook_replayed")
    expect(deliver(http, event(invoice_id, currency="USD")), 422, "mixed_currencies")
    expect(deliver(http, event(str(uuid4()))), 422, "unknown_invoice")
    assert invoice_of(system, invoice_id).payments == {}
    reasons = [e["reason"] for e in rejections(system, http, admin_headers(system, http)) if (e["event"] or {}).get("invoice_id") == invoice_id]
    assert reasons == ["overpayment", "webhook_replayed", "mixed_currencies"]
    billing.void_invoice(system.services, billing.VoidInvoice(invoice_id, "Billed twice"), OPERATOR)
    expect(deliver(http, event(invoice_id)), 409, "invalid_transition")


def test_a_failed_payment_is_on_the_day_log_for_the_front_desk_and_the_log_in_the_audit_history(system: Medledger, http: TestClient) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    failed = event(invoice_id, type=EventType.PAYMENT_FAILED)
    assert expect(deliver(http, failed), 200)["outcome"] == "payment_failed"
    admin = admin_headers(system, http)
    day = datetime.now(timezone.utc).date().isoformat()
    log = expect(http.get("/billing/gateway/log", params={"day": day}, headers=admin), 200)
    mine = [e for e in log["entries"] if (e["event"] or {}).get("invoice_id") == invoice_id]
    assert [(e["kind"], e["reason"]) for e in mine] == [("payment_failed", "card_declined")]
    history = expect(http.get(f"/audit/records/{log['record_id']}/history", headers=auditor_headers(system, http), params={"page_size": 100}), 200)
    assert {row["event_type"] for row in history["items"]} >= {"WebhookLog.Opened", "WebhookLog.PaymentFailed"}
    expect(http.get("/billing/gateway/log", params={"day": day}, headers=patient.headers), 403)


def test_a_patient_checks_out_their_own_issued_invoice_only(system: Medledger, http: TestClient) -> None:
    patient, other = new_patient(system, http), new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    answer = expect(http.post(f"/invoices/{invoice_id}/checkout", headers=patient.headers), 200)
    assert (answer["invoice_id"], answer["amount_due"], answer["currency"]) == (invoice_id, "120.00", "EUR")
    assert answer["webhook_url"].endswith(WEBHOOK)
    expect(http.post(f"/invoices/{invoice_id}/checkout", headers=other.headers), 404)
    drafted = billing.draft_invoice(system.services, billing.DraftInvoice(patient.profile_id, (billing.LineSpec("visit"),)), OPERATOR)
    expect(http.post(f"/invoices/{drafted.id}/checkout", headers=patient.headers), 404)
    expect(http.post("/invoices/not-an-id/checkout", headers=patient.headers), 404)
    expect(http.post(f"/invoices/{invoice_id}/checkout", headers=admin_headers(system, http)), 403)
    expect(deliver(http, event(invoice_id)), 200)
    expect(http.post(f"/invoices/{invoice_id}/checkout", headers=patient.headers), 409)


def test_without_a_secret_online_payment_answers_503(system: Medledger, http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    monkeypatch.setattr(system, "settings", system.settings.model_copy(update={"gateway_webhook_secret": None}))
    expect(deliver(http, event(invoice_id)), 503, "gateway_not_configured")
    expect(http.post(f"/invoices/{invoice_id}/checkout", headers=patient.headers), 503, "gateway_not_configured")


def test_the_simulator_pays_an_invoice_on_a_real_server_and_shows_the_refusals(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "data")
    clinic = bootstrap(settings)
    try:
        billing.set_tax_category(clinic.services, billing.SetTaxCategory("standard", Decimal("0")), OPERATOR)
        visit = billing.PriceService("visit", "Visit", ServiceKind.CONSULTATION, Decimal("120.00"), "EUR", "standard")
        billing.price_service(clinic.services, visit, OPERATOR)
        email = unique_email("patient")
        create_account(clinic.services, CreateAccount(email, PASSWORD, Role.PATIENT, patient_profile()), OPERATOR)
        account = clinic.store.find(Account, Account.create_id(email))
        assert account is not None and account.profile_id
        invoice_id = issued_invoice(clinic, account.profile_id)
    finally:
        clinic.close()
    runner = CliRunner()
    environment = {"MEDLEDGER_GATEWAY_WEBHOOK_SECRET": SECRET}
    with running_server(settings, 1, tmp_path / "uvicorn.log", MEDLEDGER_GATEWAY_WEBHOOK_SECRET=SECRET) as base_url:

        def simulate(*options: str) -> list[str]:
            args = ["gateway-simulate", invoice_id, "--amount", "120.00", "--url", base_url + WEBHOOK, *options]
            result = runner.invoke(cli, args, env=environment)
            assert result.exit_code == 0, result.output
            return [line.split(" ", 2)[1] for line in result.output.splitlines() if line.startswith("HTTP ")]

        assert simulate("--spoil", "stale") == ["400"]
        assert simulate("--spoil", "wrong-secret") == ["400"]
        assert simulate("--times", "2") == ["200", "409"]
        assert simulate("--failed") == ["200"]


def test_deliveries_of_one_event_at_once_record_one_payment_and_one_receipt(system: Medledger, http: TestClient) -> None:
    patient = new_patient(system, http)
    invoice_id = issued_invoice(system, patient.profile_id)
    raw = event(invoice_id, "60.00")
    headers = {SIGNATURE_HEADER: signature_header(SECRET, now(), raw)}
    start = threading.Barrier(4)

    def deliver_now(_: int) -> str:
        start.wait()
        try:
            received = gateway_commands.receive_webhook(
                system.services, SignedWebhookGateway(SECRET, TOLERANCE), raw, headers, "127.0.0.1", gateway_commands.gateway_actor("race")
            )
        except DomainError as refused:
            return refused.code
        return received.outcome

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(deliver_now, range(4)))
    assert outcomes == ["payment_recorded", "webhook_replayed", "webhook_replayed", "webhook_replayed"]
    assert [p.amount for p in invoice_of(system, invoice_id).payments.values()] == [Decimal("60.00")]


def test_an_oversized_body_is_refused_unread_and_recorded(system: Medledger, http: TestClient) -> None:
    raw = b'{"id": "evt_big", "pad": "' + b"x" * (70 * 1024) + b'"}'
    expect(deliver(http, raw), 400, "body_too_large")
    reasons = [e["reason"] for e in rejections(system, http, admin_headers(system, http)) if e["delivery"]["body_bytes"] > 64 * 1024]
    assert "body_too_large" in reasons
