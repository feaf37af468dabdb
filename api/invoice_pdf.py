"""Invoice and credit note documents as PDF, drawn from an invoice's own view (every amount as the invoice worked it out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from domain.money import round_money, text


@dataclass(frozen=True)
class Issuer:
    name: str
    address: str
    tax_id: str


STYLES = getSampleStyleSheet()
GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)
SUMS = TableStyle([("FONT", (0, 0), (-1, -1), "Helvetica", 9), ("ALIGN", (1, 0), (1, -1), "RIGHT"), ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 9)])


def money(amount: str, currency: str) -> str:
    """An amount to its currency's minor unit, as every amount on a document is shown."""
    return text(round_money(Decimal(amount), currency))


def _day(moment: str | None) -> str:
    return datetime.fromisoformat(moment).date().isoformat() if moment else "-"


def _text(value: str) -> Paragraph:
    return Paragraph(escape(value), STYLES["BodyText"])


def _heading(title: str, issuer: Issuer, facts: list[tuple[str, str]]) -> list[Any]:
    address = "<br/>".join(escape(part.strip()) for part in issuer.address.split(","))
    return [
        Paragraph(escape(issuer.name), STYLES["Title"]),
        Paragraph(f"{address}<br/>Tax id: {escape(issuer.tax_id)}", STYLES["Normal"]),
        Spacer(1, 6 * mm),
        Paragraph(escape(title), STYLES["Heading1"]),
        Table([[label, value] for label, value in facts], style=SUMS, hAlign="LEFT"),
        Spacer(1, 6 * mm),
    ]


def _grid(header: list[str], rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    return Table([header, *rows], colWidths=widths, style=GRID, hAlign="LEFT", repeatRows=1)


def _taxes(taxes: list[dict[str, str]]) -> list[Any]:
    return [
        Paragraph("Tax by rate", STYLES["Heading3"]),
        _grid(["Rate %", "Taxable", "Tax"], [[t["rate"], t["taxable"], t["tax"]] for t in taxes]),
    ]


def _render(story: list[Any], title: str) -> bytes:
    out = BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=title, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=15 * mm).build(story)
    return out.getvalue()


def invoice_pdf(invoice: dict[str, Any], issuer: Issuer) -> bytes:
    """An issued invoice: who issues it, its number and dates, the patient, every line with its discount and tax, tax
    by rate, the totals, what was paid, refunded and credited, and the balance."""
    currency = invoice["currency"]
    story = _heading(
        f"Invoice {invoice['number']}",
        issuer,
        [
            ("Invoice number", invoice["number"]),
            ("Issue date", _day(invoice["issued_at"])),
            ("Due date", invoice["due_date"] or "-"),
            ("Patient", invoice["patient_id"]),
            ("Doctor", invoice["doctor_id"] or "-"),
            ("Status", invoice["status"]),
            ("Currency", currency),
        ],
    )
    lines = [
        [
            _text(line["description"]),
            line["quantity"],
            line["unit_price"],
            f"-{line['discount_amount']}" if Decimal(line["discount_amount"]) else "",
            f"-{line['invoice_discount_share']}" if Decimal(line["invoice_discount_share"]) else "",
            line["tax_rate"],
            line["taxable"],
            line["tax"],
            line["total"],
        ]
        for line in invoice["lines"]
    ]
    header = ["Description", "Qty", "Unit price", "Discount", "Inv. disc.", "Tax %", "Net", "Tax", "Total"]
    story += [_grid(header, lines, [52 * mm] + [15.5 * mm] * 8), *_taxes(invoice["taxes"]), Spacer(1, 4 * mm)]
    sums = [
        (label, money(invoice[key], currency))
        for label, key in [
            ("Subtotal", "subtotal"),
            ("Line discounts", "line_discounts"),
            ("Invoice discount", "invoice_discount"),
            ("Net", "net"),
            ("Tax", "tax"),
            (f"Total {currency}", "total"),
            ("Paid", "paid"),
            ("Refunded", "refunded"),
            ("Credited", "credited"),
            ("Written off", "written_off"),
            (f"Balance {currency}", "balance"),
        ]
    ]
    story.append(Table([list(row) for row in sums], style=SUMS, hAlign="RIGHT"))
    if invoice["payments"]:
        rows = [[_day(p["received_at"]), p["method"], p["reference"], p["amount"]] for p in invoice["payments"]]
        story += [Paragraph("Payments", STYLES["Heading3"]), _grid(["Date", "Method", "Reference", "Amount"], rows)]
    if invoice["refunds"]:
        rows = [[_day(r["refunded_at"]), r["method"], _text(r["reason"]), r["amount"]] for r in invoice["refunds"]]
        story += [Paragraph("Refunds", STYLES["Heading3"]), _grid(["Date", "Method", "Reason", "Amount"], rows)]
    if invoice["credit_notes"]:
        rows = [[n["number"], _day(n["issued_at"]), n["total"]] for n in invoice["credit_notes"]]
        story += [Paragraph("Credit notes", STYLES["Heading3"]), _grid(["Number", "Date", "Total"], rows)]
    return _render(story, f"Invoice {invoice['number']}")


def credit_note_pdf(invoice: dict[str, Any], note: dict[str, Any], issuer: Issuer) -> bytes:
    """A credit note: its number and date, the invoice it credits (by number), and what of each line it credits."""
    currency = invoice["currency"]
    story = _heading(
        f"Credit note {note['number']}",
        issuer,
        [
            ("Credit note number", note["number"]),
            ("Date", _day(note["issued_at"])),
            ("Credits invoice", f"{invoice['number']} of {_day(invoice['issued_at'])}"),
            ("Patient", invoice["patient_id"]),
            ("Reason", note["reason"]),
            ("Currency", currency),
        ],
    )
    described = {line["line_id"]: line for line in invoice["lines"]}
    by_rate: dict[Decimal, list[Decimal]] = {}
    rows = []
    for credited in note["lines"]:
        line = described[credited["line_id"]]
        taxable, tax = Decimal(credited["taxable"]), Decimal(credited["tax"])
        sums = by_rate.setdefault(Decimal(line["tax_rate"]), [Decimal(0), Decimal(0)])
        sums[0] += taxable
        sums[1] += tax
        rows.append([_text(line["description"]), credited["quantity"], line["tax_rate"], credited["taxable"], credited["tax"], str(taxable + tax)])
    story += [
        _grid(["Description", "Qty", "Tax %", "Net", "Tax", "Total"], rows, [70 * mm] + [20 * mm] * 5),
        *_taxes([{"rate": str(rate), "taxable": str(s[0]), "tax": str(s[1])} for rate, s in sorted(by_rate.items())]),
        Spacer(1, 4 * mm),
        Table([[f"Total credited {currency}", note["total"]]], style=SUMS, hAlign="RIGHT"),
    ]
    return _render(story, f"Credit note {note['number']}")
