"""Failed logins in a sliding window per login identity and per client address: Redis when configured, else SQL."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import redis
from sqlalchemy import Column, Engine, Float, Index, Integer, MetaData, String, Table, delete, func, insert, select

from domain.accounts import LOCKOUTS_FORGOTTEN_AFTER, Lockout

metadata = MetaData()
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Index("login_failures_key_at", "key", "at"),
)
login_lockouts = Table(
    "login_lockouts",
    metadata,
    Column("identity", String(200), primary_key=True),
    Column("until", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("kept_until", Float, nullable=False),
)


def _identity_key(identity: str) -> str:
    return f"identity:{identity}"


def _address_key(address: str) -> str:
    return f"address:{address}"


def _kept_for(lockout: Lockout, now: datetime) -> float:
    """Seconds a lockout matters: while it lasts, and as the step of a progression for a day after."""
    assert lockout.until is not None
    return max((lockout.until - now + LOCKOUTS_FORGOTTEN_AFTER).total_seconds(), 1)


def _wait(failure_times: list[float], limit: int, window: float, now: float) -> float | None:
    """With failures in the window sorted oldest first: how long until fewer than `limit` remain."""
    if len(failure_times) < limit:
        return None
    return failure_times[len(failure_times) - limit] + window - now


class SqlLoginAttempts:
    """Rows in the read-model database; each API process counts against the same table."""

    PURGE_EVERY = 300.0

    def __init__(self, engine: Engine, window: timedelta, address_limit: int) -> None:
        self.engine = engine
        self.window = window.total_seconds()
        self.address_limit = address_limit
        self._purged_at = 0.0

    def address_retry_after(self, address: str) -> float | None:
        now = time.time()
        query = (
            select(login_failures.c.at)
            .where(login_failures.c.key == _address_key(address), login_failures.c.at > now - self.window)
            .order_by(login_failures.c.at)
        )
        with self.engine.connect() as conn:
            times = list(conn.execute(query).scalars())
        return _wait(times, self.address_limit, self.window, now)

    def failed(self, identity: str, address: str) -> int:
        now = time.time()
        keys = [_identity_key(identity), _address_key(address)]
        with self.engine.begin() as conn:
            if now - self._purged_at > self.PURGE_EVERY:
                self._purged_at = now
                conn.execute(delete(login_failures).where(login_failures.c.at <= now - self.window))
                conn.execute(delete(login_lockouts).where(login_lockouts.c.kept_until <= now))
            conn.execute(insert(login_failures), [{"key": key, "at": now} for key in keys])
            count = select(func.count()).where(login_failures.c.key == keys[0], login_failures.c.at > now - self.window)
            return conn.execute(count).scalar_one()

    def forget(self, identity: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.key == _identity_key(identity)))

    def lockout(self, identity: str) -> Lockout:
        query = select(login_lockouts).where(login_lockouts.c.identity == identity, login_lockouts.c.kept_until > time.time())
        with self.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return Lockout(datetime.fromtimestamp(row.until, timezone.utc), row.count) if row is not None else Lockout()

    def hold(self, identity: str, lockout: Lockout, now: datetime) -> None:
        assert lockout.until is not None
        kept_until = time.time() + _kept_for(lockout, now)
        with self.engine.begin() as conn:
            conn.execute(delete(login_lockouts).where(login_lockouts.c.identity == identity))
            conn.execute(
                insert(login_lockouts).values(
                    identity=identity, until=lockout.until.timestamp(), count=lockout.count, kept_until=kept_until
                )
            )


# Sorted sets scored by Redis's own clock, so every API process counts in one time line.
_FAILED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('EXPIRE', KEYS[i], math.ceil(window))
end
return redis.call('ZCARD', KEYS[1])
"""

_ADDRESS_WAIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then return false end
local freeing = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return tostring(tonumber(freeing[2]) + window - now)
"""


class RedisLoginAttempts:
    """Atomic sliding windows in Redis sorted sets; lockouts of unknown emails as keys that expire."""

    def __init__(self, client: redis.Redis, prefix: str, window: timedelta, address_limit: int) -> None:
        self.client = client
        self.prefix = prefix
        self.window = window.total_seconds()
        self.address_limit = address_limit
        self._failed = client.register_script(_FAILED)
        self._address_wait = client.register_script(_ADDRESS_WAIT)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:login-failures:{key}"

    def address_retry_after(self, address: str) -> float | None:
        wait = self._address_wait(keys=[self._key(_address_key(address))], args=[self.window, self.address_limit])
        return float(wait) if wait is not None else None

    def failed(self, identity: str, address: str) -> int:
        keys = [self._key(_identity_key(identity)), self._key(_address_key(address))]
        return int(self._failed(keys=keys, args=[self.window, uuid4().hex]))

    def forget(self, identity: str) -> None:
        self.client.delete(self._key(_identity_key(identity)))

    def _lockout_key(self, identity: str) -> str:
        return f"{self.prefix}:login-lockout:{identity}"

    def lockout(self, identity: str) -> Lockout:
        raw = self.client.get(self._lockout_key(identity))
        if raw is None:
            return Lockout()
        stored = json.loads(raw)
        return Lockout(datetime.fromisoformat(stored["until"]), stored["count"])

    def hold(self, identity: str, lockout: Lockout, now: datetime) -> None:
        assert lockout.until is not None
        value = json.dumps({"until": lockout.until.isoformat(), "count": lockout.count})
        self.client.set(self._lockout_key(identity), value, ex=int(_kept_for(lockout, now)) + 1)
