"""Writes per user: a moving window (the `limits` library) in Redis when configured, else in this process."""

from __future__ import annotations

import time

from limits import parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter


class WriteLimits:
    """Answers how long a user must wait before another write, or None if they may write now (and counts it)."""

    def __init__(self, rate: str, redis_url: str | None, prefix: str) -> None:
        self.items = parse_many(rate)
        storage = (
            RedisStorage(f"async+{redis_url}", key_prefix=f"{prefix}:writes", implementation="redispy")
            if redis_url
            else MemoryStorage()
        )
        self.limiter = MovingWindowRateLimiter(storage)

    async def take(self, account_id: str) -> float | None:
        for item in self.items:
            if not await self.limiter.hit(item, account_id):
                stats = await self.limiter.get_window_stats(item, account_id)
                return stats.reset_time - time.time()
        return None
