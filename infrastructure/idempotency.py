"""Idempotency keys: the first answer to a keyed command, replayed for the same key and body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import redis
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.shared import ConflictError, InvalidInputError

metadata = MetaData()
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer),
    Column("body", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class IdempotencyKeyReusedError(InvalidInputError):
    """Raised when an idempotency key is sent again with a different request."""

    code = "idempotency_key_reused"


class IdempotencyKeyInFlightError(ConflictError):
    """Raised when a request with the same idempotency key is still being processed."""

    code = "idempotency_key_in_flight"


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: str


def _check(fingerprint: str, stored_fingerprint: str, status_code: int | None, body: str | None) -> StoredAnswer:
    if stored_fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was already used for a different request.", field="Idempotency-Key"
        )
    if status_code is None or body is None:
        raise IdempotencyKeyInFlightError("A request with this Idempotency-Key is still being processed.")
    return StoredAnswer(status_code, body)


class SqlIdempotency:
    PURGE_EVERY = timedelta(minutes=5)

    def __init__(self, engine: Engine, ttl: timedelta) -> None:
        self.engine = engine
        self.ttl = ttl
        self._purged_at = datetime.min.replace(tzinfo=timezone.utc)

    def claim(self, scope: str, fingerprint: str) -> StoredAnswer | None:
        """Reserves the key (answers None), or answers what the first request answered."""
        now = datetime.now(timezone.utc)
        if now - self._purged_at > self.PURGE_EVERY:
            self._purged_at = now
            with self.engine.begin() as conn:
                conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now - self.ttl))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(idempotency_keys).values(scope=scope, fingerprint=fingerprint, created_at=now))
            return None
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(select(idempotency_keys).where(idempotency_keys.c.scope == scope)).one_or_none()
        if row is None:
            return self.claim(scope, fingerprint)
        return _check(fingerprint, row.fingerprint, row.status_code, row.body)

    def record(self, scope: str, status_code: int, body: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.scope == scope)
                .values(status_code=status_code, body=body)
            )

    def release(self, scope: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(idempotency_keys).where(idempotency_keys.c.scope == scope))


    def forget_mentioning(self, text: str) -> int:
        """Deletes the kept answers whose key or body mentions the text (an erased patient's id)."""
        pattern = f"%{text}%"
        with self.engine.begin() as conn:
            return conn.execute(
                delete(idempotency_keys).where(idempotency_keys.c.body.like(pattern) | idempotency_keys.c.scope.like(pattern))
            ).rowcount


class RedisIdempotency:
    def __init__(self, client: redis.Redis, prefix: str, ttl: timedelta) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = int(ttl.total_seconds())

    def _key(self, scope: str) -> str:
        return f"{self.prefix}:idempotency:{scope}"

    def claim(self, scope: str, fingerprint: str) -> StoredAnswer | None:
        if self.client.set(self._key(scope), json.dumps({"fingerprint": fingerprint}), nx=True, ex=self.ttl):
            return None
        raw = self.client.get(self._key(scope))
        if raw is None:
            return self.claim(scope, fingerprint)
        stored = json.loads(raw)
        return _check(fingerprint, stored["fingerprint"], stored.get("status_code"), stored.get("body"))

    def record(self, scope: str, status_code: int, body: str) -> None:
        raw = self.client.get(self._key(scope))
        if raw is None:
            return  # released or expired meanwhile: leave the key free, as the SQL store does
        stored = json.loads(raw)
        stored.update(status_code=status_code, body=body)
        self.client.set(self._key(scope), json.dumps(stored), ex=self.ttl, xx=True)

    def release(self, scope: str) -> None:
        self.client.delete(self._key(scope))

    def forget_mentioning(self, text: str) -> int:
        """Deletes the kept answers whose key or body mentions the text (an erased patient's id)."""
        forgotten = 0
        for key in self.client.scan_iter(match=self._key("*"), count=500):
            raw = self.client.get(key)
            name = key if isinstance(key, bytes) else str(key).encode()
            if raw is not None and (text.encode() in raw or text.encode() in name):
                forgotten += self.client.delete(key)
        return forgotten
