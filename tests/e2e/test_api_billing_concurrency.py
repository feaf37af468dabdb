"""Money under concurrency, over real HTTP against uvicorn on PostgreSQL: one external reference sent 32 times at
once is one payment; 16 invoices issued at once take 16 distinct, consecutive numbers."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from commands import billing
from commands.base import Actor
from domain.invoice import DocumentNumbers, Invoice, Series
from domain.price_list import ServiceKind
from domain.shared import Role
from e2e_helpers import log_in, open_clinic, running_server
from infrastructure.bootstrap import bootstrap

CLIENTS = 32
ISSUES = 16


def drafts(settings: Any, patient_email: str, count: int) -> list[str]:
    """A price list and `count` drafts of one consultation (80.00) for the patient, written straight into the store."""
    from domain.accounts import Account

    system = bootstrap(settings)
    try:
        svc = system.services
        admin = Actor("billing-test", Role.ADMIN, None, "billing-test")
        billing.set_tax_category(svc, billing.SetTaxCategory("exempt", "0"), admin)
        billing.price_service(svc, billing.PriceService("visit", "Consultation", ServiceKind.CONSULTATION, "80.00", "EUR", "exempt"), admin)
        account = system.store.find(Account, Account.create_id(patient_email))
        assert account is not None and account.profile_id is not None
        line = (billing.LineSpec("visit"),)
        return [billing.draft_invoice(svc, billing.DraftInvoice(account.profile_id, line), admin).id for _ in range(count)]
    finally:
        system.close()


@pytest.mark.postgres
def test_one_reference_sent_at_once_is_one_payment_and_concurrent_issues_take_consecutive_numbers(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings("postgres")
    cast = open_clinic(settings, 1)
    paid, *to_issue = drafts(settings, cast.patient_emails[0], 1 + ISSUES)

    with running_server(settings, 2, tmp_path / "uvicorn.log", MEDLEDGER_WRITE_RATE_LIMIT="10000/minute") as base_url, ThreadPoolExecutor(CLIENTS) as pool:
        clients = list(pool.map(lambda _: log_in(base_url, cast.admin_email), range(CLIENTS)))
        assert clients[0].post(f"/invoices/{paid}/issue").status_code == 200

        barrier = threading.Barrier(CLIENTS)

        def pay(client: Any) -> Any:
            barrier.wait(timeout=30)
            return client.post(f"/invoices/{paid}/payments", json={"reference": "terminal-7/0042", "method": "card", "amount": "80.00", "currency": "EUR"})

        payments = list(pool.map(pay, clients))

        issuing = threading.Barrier(ISSUES)

        def issue(pair: tuple[Any, str]) -> Any:
            issuing.wait(timeout=30)
            return pair[0].post(f"/invoices/{pair[1]}/issue")

        issues = list(pool.map(issue, zip(clients, to_issue)))
        for client in clients:
            client.close()

    assert Counter(r.status_code for r in payments) == Counter({201: 1, 200: CLIENTS - 1}), [r.text for r in payments if r.status_code not in (200, 201)]
    assert len({r.json()["payment_id"] for r in payments}) == 1
    assert {r.json()["balance"] for r in payments} == {"0.00"}
    assert [r.status_code for r in issues] == [200] * ISSUES, [r.text for r in issues]
    numbers = sorted(r.json()["number"] for r in issues)

    system = bootstrap(settings)
    try:
        invoice = system.store.find(Invoice, paid)
        assert invoice is not None and len(invoice.payments) == 1 and invoice.status.value == "paid"
        year = int(invoice.number.split("-")[0])
        sequence = system.store.find(DocumentNumbers, billing.numbers_id("main", Series.INVOICE, year))
        assert sequence is not None and sequence.last == 1 + ISSUES
        assert numbers == [f"{year}-{n:06d}" for n in range(2, 2 + ISSUES)]
        stored_numbers = sorted(system.store.find(Invoice, invoice_id).number for invoice_id in to_issue)
        assert stored_numbers == numbers
    finally:
        system.close()
