"""Vital signs: fixed units, values no living patient can have (refused) and values worth a second look (flagged).

Limits, inclusive. "possible" bounds what a living patient has ever been measured with (with a margin:
the lowest survived core temperature was 13.7 °C, the heaviest recorded person weighed 635 kg); anything
outside is a typing or device error and is refused. "plausible" bounds what a clinic sees day to day;
a value outside it is kept, and flagged "implausible" so that a reader checks it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from domain.shared import InvalidInputError

IMPLAUSIBLE = "implausible"


@dataclass(frozen=True)
class Limits:
    unit: str
    possible: tuple[float, float]
    plausible: tuple[float, float]


LIMITS: dict[str, Limits] = {
    "systolic": Limits("mmHg", (20, 350), (70, 250)),
    "diastolic": Limits("mmHg", (10, 250), (40, 150)),
    "pulse": Limits("bpm", (10, 350), (30, 220)),
    "temperature": Limits("°C", (10, 47), (34, 42)),
    "respiratory_rate": Limits("/min", (1, 120), (6, 60)),
    "spo2": Limits("%", (20, 100), (70, 100)),
    "weight": Limits("kg", (0.2, 700), (2, 300)),
    "height": Limits("cm", (20, 280), (45, 230)),
}
MEASURES = tuple(LIMITS)
UNITS = {name: limits.unit for name, limits in LIMITS.items()}
TREND_POINTS = 10


class ImpossibleVitalSignError(InvalidInputError):
    """Raised when a vital sign lies outside what a living patient can have."""

    code = "impossible_vital_sign"


def checked(values: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """All measures (None where not taken) and the implausible ones' flags; refuses impossible values.

    Blood pressure is taken as a pair, and the diastolic pressure is below the systolic.
    """
    unknown = sorted(set(values) - set(LIMITS))
    if unknown:
        raise InvalidInputError(f"Unknown vital sign {unknown[0]}; known: {', '.join(MEASURES)}.", field=unknown[0])
    measures: dict[str, float | None] = {name: _number(name, values.get(name)) for name in MEASURES}
    if all(value is None for value in measures.values()):
        raise InvalidInputError("Record at least one vital sign.", field="vital_signs")
    systolic, diastolic = measures["systolic"], measures["diastolic"]
    if (systolic is None) != (diastolic is None):
        missing = "diastolic" if diastolic is None else "systolic"
        raise InvalidInputError("Blood pressure is recorded as systolic and diastolic together.", field=missing)
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise ImpossibleVitalSignError("The diastolic pressure must be below the systolic pressure.", field="diastolic")
    return measures, _flags(measures)


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number in {LIMITS[name].unit}.", field=name)
    low, high = LIMITS[name].possible
    if not low <= value <= high:
        raise ImpossibleVitalSignError(
            f"{name} {value:g} {LIMITS[name].unit} is physiologically impossible (possible: {low:g} to {high:g}).",
            field=name,
        )
    return float(value)


def _flags(measures: dict[str, float | None]) -> dict[str, str]:
    flags = {}
    for name, value in measures.items():
        low, high = LIMITS[name].plausible
        if value is not None and not low <= value <= high:
            flags[name] = IMPLAUSIBLE
    return flags


def trend(measure: str, readings: list[dict[str, Any]]) -> dict[str, Any]:
    """A measure as the chart shows it, from its readings newest first: the latest, its change from the one
    before (up, down or steady), and the last TREND_POINTS readings."""
    points = readings[:TREND_POINTS]
    change = points[0]["value"] - points[1]["value"] if len(points) > 1 else None
    return {
        "unit": UNITS[measure],
        "latest": points[0],
        "change": change,
        "trend": None if change is None else "up" if change > 0 else "down" if change < 0 else "steady",
        "readings": points,
    }
