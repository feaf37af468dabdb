"""Session rules: refresh tokens rotate on use, reuse revokes the family, revoked or expired sessions stop,
and a session lives only in the epoch of its account it was started in."""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from domain.accounts import Account
from domain.sessions import Session, SessionExpiredError, SessionRevokedError
from domain.shared import Role
from domain_helpers import CAUSE, CAUSE_DICT, emitted, given, refused, replayed, state
from infrastructure.eventstore import Clinic

NOW = datetime(2025, 6, 2, 8, 0, tzinfo=timezone.utc)
EXPIRES = NOW + timedelta(days=30)
LATER_EXPIRY = EXPIRES + timedelta(days=1)


def session() -> Session:
    return Session("account-1", 0, "token-1", EXPIRES, CAUSE.as_dict())


def rotated_session() -> Session:
    s = session()
    s.rotate("token-1", "token-2", LATER_EXPIRY, NOW, CAUSE)
    return s


def revoked_session() -> Session:
    s = session()
    s.revoke("logout", CAUSE)
    return s


def test_rotating_with_the_current_token_emits_rotated_and_answers_true():
    s = given(session())

    answer = s.rotate("token-1", "token-2", LATER_EXPIRY, NOW, CAUSE)

    [event] = s.collect_events()
    assert answer is True
    assert type(event).__name__ == "Rotated"
    assert (event.token_id, event.expires_at, event.cause) == ("token-2", LATER_EXPIRY, CAUSE_DICT)
    assert (s.token_id, s.expires_at, s.revoked) == ("token-2", LATER_EXPIRY, False)


def test_rotating_with_an_already_rotated_token_revokes_the_session_and_answers_false():
    s = given(rotated_session())

    answer = s.rotate("token-1", "token-3", LATER_EXPIRY, NOW, CAUSE)

    [event] = s.collect_events()
    assert answer is False
    assert type(event).__name__ == "Revoked"
    assert event.reason == "refresh token reused"
    assert (s.revoked, s.revoked_reason, s.token_id) == (True, "refresh token reused", "token-2")


def test_a_revoked_session_cannot_rotate():
    s = given(revoked_session())

    with refused(SessionRevokedError, s):
        s.rotate("token-1", "token-2", LATER_EXPIRY, NOW, CAUSE)

    assert s.token_id == "token-1"


def test_a_session_revoked_for_reuse_cannot_rotate_even_with_the_latest_token():
    s = rotated_session()
    s.rotate("token-1", "token-3", LATER_EXPIRY, NOW, CAUSE)
    given(s)

    with refused(SessionRevokedError, s):
        s.rotate("token-2", "token-3", LATER_EXPIRY, NOW, CAUSE)


@pytest.mark.parametrize("now", [EXPIRES, EXPIRES + timedelta(seconds=1)], ids=["at-expiry", "after-expiry"])
def test_an_expired_session_cannot_rotate(now):
    s = given(session())

    with refused(SessionExpiredError, s):
        s.rotate("token-1", "token-2", LATER_EXPIRY, now, CAUSE)

    assert s.revoked is False


def test_revoking_emits_revoked_with_the_reason():
    s = given(session())

    s.revoke("logout", CAUSE)

    assert emitted(s) == ["Revoked"]
    assert s.revoked_reason == "logout"


def test_revoking_a_revoked_session_emits_nothing_and_keeps_the_first_reason():
    s = given(revoked_session())

    s.revoke("logout again", CAUSE)

    assert emitted(s) == []
    assert s.revoked_reason == "logout"


def test_a_session_replays_from_its_events_with_its_expiry_offset():
    paris_expiry = datetime(2025, 7, 2, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    s = Session("account-1", 0, "token-1", EXPIRES, CAUSE.as_dict())
    s.rotate("token-1", "token-2", paris_expiry, NOW, CAUSE)
    s.rotate("token-1", "token-3", paris_expiry, NOW, CAUSE)

    copy = replayed(s)

    assert state(copy) == state(s)
    assert copy.expires_at.utcoffset() == timedelta(hours=2)
    assert (copy.token_id, copy.revoked_reason) == ("token-2", "refresh token reused")


def patient_account() -> Account:
    return Account("pat@clinic.org", "hash-1", Role.PATIENT, "profile-1", CAUSE.as_dict())


def started(account: Account) -> Session:
    return Session.start(account, "token-1", EXPIRES, CAUSE)


def test_a_session_starts_in_its_account_s_current_epoch():
    account = patient_account()

    s = started(account)

    assert (s.account_id, s.account_epoch) == (str(account.id), 0)
    s.check_live(account)
    s.check_grants(account, str(account.id), Role.PATIENT, "profile-1")


def test_disabling_ends_every_session_started_before_it_even_once_the_account_is_enabled():
    account = patient_account()
    before = started(account)
    account.disable("fraud", CAUSE)
    account.enable("cleared", CAUSE)
    after = started(account)

    with pytest.raises(SessionRevokedError):
        before.check_live(account)
    after.check_live(account)


@pytest.mark.parametrize(
    "account_id, role, profile_id",
    [("other-account", Role.PATIENT, "profile-1"), (None, Role.ADMIN, "profile-1"), (None, Role.PATIENT, "profile-2")],
    ids=["other-account", "other-role", "other-profile"],
)
def test_a_token_whose_identity_is_not_the_session_s_is_refused(account_id, role, profile_id):
    account = patient_account()
    s = started(account)

    with pytest.raises(SessionRevokedError):
        s.check_grants(account, account_id or str(account.id), role, profile_id)


def test_a_disabled_account_or_a_revoked_session_grants_nothing():
    account = patient_account()
    s = started(account)
    s.revoke("logout", CAUSE)

    with pytest.raises(SessionRevokedError):
        s.check_grants(account, str(account.id), Role.PATIENT, "profile-1")
    account.disable("fraud", CAUSE)
    with pytest.raises(SessionRevokedError):
        started(account).check_grants(account, str(account.id), Role.PATIENT, "profile-1")


def test_a_session_recorded_before_epochs_existed_belongs_to_its_account_s_first_epoch():
    clinic = Clinic(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    state_v1 = {
        "timestamp": NOW, "originator_topic": "medledger:Session", "account_id": "account-1", "token_id": "token-1",
        "expires_at": EXPIRES, "cause": CAUSE_DICT,
    }
    stored = StoredEvent(uuid4(), 1, "medledger:Session.Started.v1", clinic.mapper.transcoder.encode(state_v1))

    s = clinic.mapper.to_domain_event(stored).mutate(None)

    assert (s.account_id, s.account_epoch, s.token_id, s.revoked) == ("account-1", 0, "token-1", False)
