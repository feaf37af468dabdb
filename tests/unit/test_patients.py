"""Patient rules: profile changes emit only what changed."""

from domain.patients import Patient
from domain_helpers import CAUSE, CAUSE_DICT, emitted, given, replayed, state

PROFILE = {"name": "Grace Hopper", "blood_group": "O+", "allergies": ["penicillin"]}


def patient() -> Patient:
    return Patient("account-2", PROFILE, CAUSE.as_dict())


def test_registering_a_patient_emits_registered_with_the_profile():
    p = patient()

    [event] = p.collect_events()
    assert type(event).__name__ == "Registered"
    assert (event.account_id, event.profile, event.cause) == ("account-2", PROFILE, CAUSE_DICT)


def test_updating_the_profile_emits_only_the_changed_fields():
    p = given(patient())

    p.update_profile({"blood_group": "O+", "allergies": ["penicillin", "latex"]}, CAUSE)

    [event] = p.collect_events()
    assert type(event).__name__ == "ProfileUpdated"
    assert event.changes == {"allergies": ["penicillin", "latex"]}
    assert p.profile["allergies"] == ["penicillin", "latex"]


def test_updating_the_profile_with_its_current_values_emits_nothing():
    p = given(patient())

    p.update_profile({"name": "Grace Hopper", "allergies": ["penicillin"]}, CAUSE)

    assert emitted(p) == []


def test_a_patient_replays_from_its_events():
    p = patient()
    p.update_profile({"insurance": {"provider": "CPAM", "number": "1 85 12"}}, CAUSE)

    copy = replayed(p)

    assert state(copy) == state(p)
    assert copy.profile["insurance"] == {"provider": "CPAM", "number": "1 85 12"}
