"""Session rules: refresh tokens rotate on use, reuse revokes the family, revoked or expired sessions stop."""

from datetime import datetime, timedelta, timezone

import pytest

from domain.sessions import Session, SessionExpiredError, SessionRevokedError
from domain_helpers import CAUSE, CAUSE_DICT, emitted, given, refused, replayed, state

NOW = datetime(2025, 6, 2, 8, 0, tzinfo=timezone.utc)
EXPIRES = NOW + timedelta(days=30)
LATER_EXPIRY = EXPIRES + timedelta(days=1)


def session() -> Session:
    return Session("account-1", "token-1", EXPIRES, CAUSE.as_dict())


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
    s = Session("account-1", "token-1", EXPIRES, CAUSE.as_dict())
    s.rotate("token-1", "token-2", paris_expiry, NOW, CAUSE)
    s.rotate("token-1", "token-3", paris_expiry, NOW, CAUSE)

    copy = replayed(s)

    assert state(copy) == state(s)
    assert copy.expires_at.utcoffset() == timedelta(hours=2)
    assert (copy.token_id, copy.revoked_reason) == ("token-2", "refresh token reused")
