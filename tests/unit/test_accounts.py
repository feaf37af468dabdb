"""Account rules: email identity, enable/disable, role changes, and the cause on every event."""

from datetime import datetime, timedelta, timezone

import pytest

from domain.accounts import Account, AccountDisabledError, Lockout, RoleChangeNotAllowedError, TooManyLoginAttemptsError
from domain.shared import Cause, Role
from domain_helpers import CAUSE, CAUSE_DICT, emitted, given, names, refused, replayed, state


def account(role: Role = Role.ADMIN, email: str = "ann@clinic.org") -> Account:
    return Account(email, "hash-1", role, None, CAUSE.as_dict())


def disabled_account() -> Account:
    a = account()
    a.disable("left the clinic", CAUSE)
    return a


def test_account_id_ignores_case_and_surrounding_spaces_of_the_email():
    assert Account.create_id("  Ann@Clinic.ORG ") == Account.create_id("ann@clinic.org")
    assert Account.create_id("ann@clinic.org") != Account.create_id("bob@clinic.org")


def test_registering_stores_the_normalised_email_under_the_email_id():
    a = account(email=" Ann@Clinic.org")

    assert emitted(a) == ["Registered"]
    assert a.email == "ann@clinic.org"
    assert a.id == Account.create_id("ann@clinic.org")
    assert a.disabled is False


def test_disabling_an_enabled_account_emits_disabled():
    a = given(account())

    a.disable("left the clinic", CAUSE)

    [event] = a.collect_events()
    assert names([event]) == ["Disabled"]
    assert event.reason == "left the clinic"
    assert a.disabled is True


def test_disabling_a_disabled_account_emits_nothing():
    a = given(disabled_account())

    a.disable("again", CAUSE)

    assert emitted(a) == []
    assert a.disabled is True


def test_enabling_a_disabled_account_emits_enabled():
    a = given(disabled_account())

    a.enable("came back", CAUSE)

    assert emitted(a) == ["Enabled"]
    assert a.disabled is False


def test_enabling_an_enabled_account_emits_nothing():
    a = given(account())

    a.enable("already", CAUSE)

    assert emitted(a) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [(Role.ADMIN, Role.AUDITOR), (Role.AUDITOR, Role.ANALYST), (Role.ANALYST, Role.ADMIN)],
)
def test_staff_roles_can_be_exchanged(before, after):
    a = given(account(before))

    a.change_role(after, "new duties", CAUSE)

    [event] = a.collect_events()
    assert names([event]) == ["RoleChanged"]
    assert (event.role, event.reason) == (after.value, "new duties")
    assert a.role == after


def test_changing_to_the_current_role_emits_nothing():
    a = given(account(Role.AUDITOR))

    a.change_role(Role.AUDITOR, "same", CAUSE)

    assert emitted(a) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Role.PATIENT, Role.ADMIN),
        (Role.DOCTOR, Role.ANALYST),
        (Role.PATIENT, Role.DOCTOR),
        (Role.ADMIN, Role.PATIENT),
        (Role.AUDITOR, Role.DOCTOR),
    ],
)
def test_a_role_change_to_or_from_patient_or_doctor_is_refused(before, after):
    a = given(account(before))

    with refused(RoleChangeNotAllowedError, a) as error:
        a.change_role(after, "promotion", CAUSE)

    assert error.value.details == {"current": {"role": before.value}}
    assert a.role == before


def test_a_disabled_account_fails_the_enabled_check():
    with pytest.raises(AccountDisabledError):
        disabled_account().check_enabled()


def test_an_enabled_account_passes_the_enabled_check():
    account().check_enabled()


def test_changing_the_password_emits_password_changed():
    a = given(account())

    a.change_password("hash-2", CAUSE)

    assert emitted(a) == ["PasswordChanged"]
    assert a.password_hash == "hash-2"


def test_every_account_event_carries_who_caused_it():
    other = Cause("user-2", Role.AUDITOR, "corr-2")
    a = account()
    a.disable("r", other)
    a.enable("r", other)
    a.change_role(Role.ANALYST, "r", other)
    a.change_password("hash-2", other)

    events = a.collect_events()

    assert events[0].cause == CAUSE_DICT
    assert [e.cause for e in events[1:]] == [{"user_id": "user-2", "role": "auditor", "correlation_id": "corr-2"}] * 4


def test_an_account_replays_from_its_events():
    a = Account(" Ann@Clinic.org", "hash-1", Role.AUDITOR, "profile-9", CAUSE.as_dict())
    a.disable("r", CAUSE)
    a.change_role(Role.ANALYST, "r", CAUSE)
    a.change_password("hash-2", CAUSE)

    copy = replayed(a)

    assert state(copy) == state(a) == {
        "email": "ann@clinic.org",
        "password_hash": "hash-2",
        "role": Role.ANALYST,
        "profile_id": "profile-9",
        "disabled": True,
        "session_epoch": 1,
        "lockout": Lockout(),
    }
    assert (copy.id, copy.version) == (a.id, a.version)


def test_each_disabling_opens_a_new_session_epoch_and_enabling_does_not_go_back():
    a = account()
    assert a.session_epoch == 0

    a.disable("left the clinic", CAUSE)
    a.enable("came back", CAUSE)
    a.disable("left again", CAUSE)

    assert a.session_epoch == 2
    assert replayed(a).session_epoch == 2


LOCKOUTS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(minutes=60))
T0 = datetime(2025, 6, 2, 8, 0, tzinfo=timezone.utc)


def test_locking_out_records_until_when_and_the_lockout_s_rank_and_refuses_logins_until_then():
    a = given(account())

    a.lock_out(T0, 5, "192.0.2.1", LOCKOUTS, CAUSE)

    [event] = a.collect_events()
    assert names([event]) == ["LockedOut"]
    assert (event.until, event.lockout, event.failures, event.address) == (T0 + timedelta(minutes=1), 1, 5, "192.0.2.1")
    with pytest.raises(TooManyLoginAttemptsError) as refusal:
        a.lockout.check(T0 + timedelta(seconds=30))
    assert refusal.value.retry_after == 30
    a.lockout.check(T0 + timedelta(minutes=1))


def test_lockouts_in_a_row_last_longer_up_to_the_last_duration():
    a, now, untils = account(), T0, []
    for _ in range(6):
        a.lock_out(now, 5, "192.0.2.1", LOCKOUTS, CAUSE)
        untils.append(a.lockout.until - now)
        now = a.lockout.until

    assert untils == [timedelta(minutes=m) for m in (1, 5, 15, 60, 60, 60)]
    assert replayed(a).lockout == a.lockout


def test_a_lock_in_force_is_not_locked_again_and_a_lockout_long_past_starts_the_progression_again():
    a = account()
    a.lock_out(T0, 5, "192.0.2.1", LOCKOUTS, CAUSE)
    given(a)

    a.lock_out(T0 + timedelta(seconds=10), 6, "192.0.2.1", LOCKOUTS, CAUSE)
    assert emitted(a) == []

    a.lock_out(T0 + timedelta(days=2), 5, "192.0.2.1", LOCKOUTS, CAUSE)
    assert a.lockout.count == 1


def test_unlocking_lifts_the_lock_and_its_progression_once():
    a = account()
    a.lock_out(T0, 5, "192.0.2.1", LOCKOUTS, CAUSE)
    given(a)

    a.unlock("called the desk", CAUSE)
    a.unlock("called again", CAUSE)

    assert emitted(a) == ["Unlocked"]
    assert a.lockout == Lockout()
    a.lockout.check(T0)
