"""Vital signs: impossible values refused at their limits, implausible ones kept and flagged, blood pressure as a pair."""

import math

import pytest

from domain.shared import InvalidInputError
from domain.vitals import LIMITS, ImpossibleVitalSignError, checked

PAIR = {"systolic": 120, "diastolic": 80}


def reading(name: str, value: float) -> dict[str, float]:
    if name == "systolic":
        return {"systolic": value, "diastolic": min(value - 1, LIMITS["diastolic"].possible[1])}
    if name == "diastolic":
        return {"systolic": max(value + 1, LIMITS["systolic"].possible[0]), "diastolic": value}
    return {name: value}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_values_just_outside_the_possible_range_are_refused_naming_the_field(name):
    low, high = LIMITS[name].possible

    for value in (low - 0.1, high + 0.1):
        with pytest.raises(ImpossibleVitalSignError) as refused:
            checked(reading(name, value))
        assert refused.value.details["field"] == name


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_values_at_the_possible_limits_are_accepted_and_flagged_unless_plausible(name):
    low, high = LIMITS[name].plausible
    for value in LIMITS[name].possible:
        measures, flags = checked(reading(name, value))

        assert measures[name] == value
        assert flags.get(name) == (None if low <= value <= high else "implausible")


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_values_just_outside_the_plausible_range_are_flagged(name):
    low, high = LIMITS[name].plausible
    possible_low, possible_high = LIMITS[name].possible
    outside = [v for v in (low - 0.1, high + 0.1) if possible_low <= v <= possible_high]
    assert outside or name == "spo2"

    for value in outside:
        _, flags = checked(reading(name, value))

        assert flags[name] == "implausible"


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_values_at_the_plausible_limits_are_not_flagged(name):
    for value in LIMITS[name].plausible:
        _, flags = checked(reading(name, value))

        assert name not in flags


def test_a_plain_reading_keeps_every_measure_and_no_flags():
    measures, flags = checked({**PAIR, "pulse": 72, "temperature": 36.8, "spo2": 98})

    assert measures == {
        "systolic": 120.0,
        "diastolic": 80.0,
        "pulse": 72.0,
        "temperature": 36.8,
        "respiratory_rate": None,
        "spo2": 98.0,
        "weight": None,
        "height": None,
    }
    assert flags == {}


@pytest.mark.parametrize("diastolic", [120, 130])
def test_the_diastolic_pressure_is_below_the_systolic(diastolic):
    with pytest.raises(ImpossibleVitalSignError) as refused:
        checked({"systolic": 120, "diastolic": diastolic})
    assert refused.value.details["field"] == "diastolic"


@pytest.mark.parametrize(("given", "missing"), [({"systolic": 120}, "diastolic"), ({"diastolic": 80}, "systolic")])
def test_blood_pressure_is_a_pair(given, missing):
    with pytest.raises(InvalidInputError) as refused:
        checked(given)
    assert refused.value.details["field"] == missing


@pytest.mark.parametrize("value", [math.nan, math.inf, True, "72"])
def test_a_measure_is_a_finite_number(value):
    with pytest.raises(InvalidInputError) as refused:
        checked({"pulse": value})
    assert refused.value.details["field"] == "pulse"


def test_an_empty_reading_and_an_unknown_measure_are_refused():
    with pytest.raises(InvalidInputError):
        checked({})
    with pytest.raises(InvalidInputError) as refused:
        checked({"glucose": 5.5})
    assert refused.value.details["field"] == "glucose"
