"""Invoice and credit note numbers: per clinic, series and year, the year and the issue date being the clinic's."""

from __future__ import annotations

from datetime import date, datetime, timezone

from commands import billing
from domain.invoice import Invoice
from domain.price_list import ServiceKind
from integration_helpers import ADMIN, open_patient, running


def test_the_clinics_new_year_starts_the_numbers_again_and_dates_the_issue(make_settings, clock) -> None:
    with running(make_settings("sqlite", clinic_timezone="Pacific/Auckland", clinic_code="harbour", payment_terms_days=14), clock) as m:
        svc = m.services
        billing.set_tax_category(svc, billing.SetTaxCategory("exempt", "0"), ADMIN)
        billing.price_service(svc, billing.PriceService("visit", "Consultation", ServiceKind.CONSULTATION, "80.00", "EUR", "exempt"), ADMIN)
        patient = open_patient(svc, "Aroha Ngata")

        def issue_at(moment: datetime) -> Invoice:
            clock.now = moment
            draft = billing.draft_invoice(svc, billing.DraftInvoice(patient.profile_id, (billing.LineSpec("visit"),)), ADMIN)
            billing.issue_invoice(svc, billing.IssueInvoice(draft.id), ADMIN)
            issued = m.store.find(Invoice, draft.id)
            assert issued is not None
            return issued

        late_2026 = issue_at(datetime(2026, 12, 31, 10, 0, tzinfo=timezone.utc))  # 23:00 in Auckland
        new_year = issue_at(datetime(2026, 12, 31, 11, 30, tzinfo=timezone.utc))  # 00:30 on 1 January there
        next_one = issue_at(datetime(2027, 1, 2, 9, 0, tzinfo=timezone.utc))
        note = billing.issue_credit_note(svc, billing.IssueCreditNote(new_year.id.hex, "not performed"), ADMIN)

        assert (late_2026.number, late_2026.issue_date, late_2026.due_date) == ("2026-000001", date(2026, 12, 31), date(2027, 1, 14))
        assert (new_year.number, new_year.issue_date) == ("2027-000001", date(2027, 1, 1))
        assert next_one.number == "2027-000002"
        assert note.number == "CN-2027-000001"
