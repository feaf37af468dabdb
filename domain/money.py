"""Money: exact decimal amounts in an ISO 4217 currency, and the one rounding rule every total follows.

The rounding rule (documented in the README, tested by properties):
- every amount is rounded ROUND_HALF_UP (half away from zero) to its currency's minor unit (2 digits for EUR,
  0 for JPY, 3 for KWD), at exactly these points and nowhere else:
  1. a line's gross: quantity x unit price;
  2. a line's discount, when it is a percent of the gross;
  3. the invoice's discount, when it is a percent of the lines' net; it is then shared out across the lines
     in proportion to their net, each share rounded down to the minor unit and the minor units left over given
     one each to the lines with the largest remainders (the earlier line on a tie), so the shares add up exactly;
  4. a line's tax: its taxable amount (net less its share of the invoice discount) x the tax rate;
  5. a partial credit of a line: its taxable amount and its tax, each x the credited quantity / the quantity;
     the last credit of a line takes exactly what is left of it.
- totals are plain sums of rounded amounts, so they add up to the minor unit by construction.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from domain.shared import InvalidInputError

# ISO 4217 active codes and their minor units (the digits after the decimal point).
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF "
        "CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF "
        "IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MKD MMK MNT MOP MRU MUR MVR MWK "
        "MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
        "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW "
        "ZWG".split(),
        2,
    ),
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}
MAX_AMOUNT = Decimal("1000000000")
HUNDRED = Decimal(100)


class CurrencyMismatchError(InvalidInputError):
    """Raised when amounts of two currencies would meet on one invoice."""

    code = "mixed_currencies"


def currency(code: str, field: str = "currency") -> str:
    """The code if it is an ISO 4217 currency this service knows; refuses anything else."""
    if code not in MINOR_UNITS:
        raise InvalidInputError(f"{code!r} is not an ISO 4217 currency code (three capital letters, e.g. EUR).", field=field)
    return code


def quantum(code: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS[code])


def round_money(amount: Decimal, code: str) -> Decimal:
    """The documented rule: half away from zero, to the currency's minor unit."""
    return amount.quantize(quantum(code), rounding=ROUND_HALF_UP)


def exact_amount(value: Any, code: str, field: str, allow_zero: bool = True) -> Decimal:
    """An amount a user gives: a decimal in the currency's minor unit, never rounded for them; refuses more digits."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInputError(f"{value!r} is not a decimal amount.", field=field) from None
    if not amount.is_finite():
        raise InvalidInputError("An amount must be a finite number.", field=field)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidInputError("An amount must be positive." if not allow_zero else "An amount cannot be negative.", field=field)
    if amount > MAX_AMOUNT:
        raise InvalidInputError(f"An amount is at most {MAX_AMOUNT}.", field=field)
    if amount != amount.quantize(quantum(code), rounding=ROUND_DOWN):
        raise InvalidInputError(f"{code} amounts have at most {MINOR_UNITS[code]} decimals.", field=field)
    return amount.quantize(quantum(code))


def share_out(total: Decimal, weights: list[Decimal], code: str) -> list[Decimal]:
    """Splits total across weights in proportion, to the minor unit, by the largest remainders; the shares sum to total."""
    whole = sum(weights, Decimal(0))
    if not weights:
        return []
    if whole == 0:
        return [total if i == 0 else Decimal(0).quantize(quantum(code)) for i in range(len(weights))]
    step = quantum(code)
    exact = [total * w / whole for w in weights]
    shares = [e.quantize(step, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(shares, Decimal(0))) / step)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[:left]:
        shares[i] += step
    return shares


def text(amount: Decimal) -> str:
    """An amount as it travels in events and JSON: a string, so no float ever touches it."""
    return format(amount, "f")
