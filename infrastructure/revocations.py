"""Revoked sessions and disabled accounts, checked on every request: Redis when configured, else the event store."""

from __future__ import annotations

from datetime import timedelta

import redis
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from domain.accounts import Account
from domain.sessions import Session
from infrastructure.eventstore import EventStore
from infrastructure.security import AccessClaims


class StoreRevocations:
    """Reads the Session and Account streams themselves (never a cached copy), so there is nothing extra to write."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def revoke_session(self, session_id: str) -> None:
        """The Session's Revoked event is the record; nothing else to write."""

    def disable_account(self, account_id: str) -> None:
        """The Account's Disabled event is the record; nothing else to write."""

    def enable_account(self, account_id: str) -> None:
        """The Account's Enabled event is the record; nothing else to write."""

    def change_role(self, account_id: str, role: str) -> None:
        """The Account's RoleChanged event is the record; nothing else to write."""

    def is_active(self, claims: AccessClaims) -> bool:
        session = self.store.find(Session, claims.session_id)
        account = self.store.find(Account, claims.account_id)
        return bool(
            session and not session.revoked and account and not account.disabled and account.role == claims.role
        )

    async def check(self, claims: AccessClaims) -> bool:
        return await run_in_threadpool(self.is_active, claims)


class RedisRevocations:
    """Keys in Redis: a revoked session lives as long as the access tokens it may have issued."""

    def __init__(self, client: redis.Redis, async_client: aioredis.Redis, prefix: str, access_lifetime: timedelta) -> None:
        self.client = client
        self.async_client = async_client
        self.prefix = prefix
        self.ttl = int(access_lifetime.total_seconds()) + 60

    def _session_key(self, session_id: str) -> str:
        return f"{self.prefix}:revoked-session:{session_id}"

    def _account_key(self, account_id: str) -> str:
        return f"{self.prefix}:disabled-account:{account_id}"

    def _role_key(self, account_id: str) -> str:
        return f"{self.prefix}:account-role:{account_id}"

    def revoke_session(self, session_id: str) -> None:
        self.client.set(self._session_key(session_id), 1, ex=self.ttl)

    def disable_account(self, account_id: str) -> None:
        self.client.set(self._account_key(account_id), 1)

    def enable_account(self, account_id: str) -> None:
        self.client.delete(self._account_key(account_id))

    def change_role(self, account_id: str, role: str) -> None:
        """Tokens carrying the old role stop working; they live no longer than the key."""
        self.client.set(self._role_key(account_id), role, ex=self.ttl)

    def _keys(self, claims: AccessClaims) -> tuple[str, str, str]:
        account_id = claims.account_id
        return self._session_key(claims.session_id), self._account_key(account_id), self._role_key(account_id)

    @staticmethod
    def _active(claims: AccessClaims, session: bytes | None, disabled: bytes | None, role: bytes | None) -> bool:
        return session is None and disabled is None and (role is None or role.decode() == claims.role.value)

    def is_active(self, claims: AccessClaims) -> bool:
        return self._active(claims, *self.client.mget(*self._keys(claims)))

    async def check(self, claims: AccessClaims) -> bool:
        return self._active(claims, *await self.async_client.mget(*self._keys(claims)))
