"""Exact-match response cache for deterministic requests.

Only non-streaming requests with ``temperature: 0`` or a ``seed`` are cacheable, and only
when the request opts in (header ``x-switchyard-cache: on``) or the key enables it. Entries
live in memory (one gateway) or Redis (shared), with a TTL.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

CACHE_HEADER = "x-switchyard-cache"
# Fields that change nothing about the answer and so are left out of the cache key.
_IGNORED = ("user", "stream", "stream_options")


def is_deterministic(body: dict[str, Any]) -> bool:
    return body.get("temperature") == 0 or isinstance(body.get("seed"), int)


def cache_key(tenant: str, path: str, body: dict[str, Any]) -> str:
    relevant = {k: v for k, v in body.items() if k not in _IGNORED}
    digest = hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"switchyard:gateway:cache:{tenant}:{path}:{digest}"


class ResponseCache(ABC):
    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes) -> None: ...


class MemoryCache(ResponseCache):
    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < self.clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes) -> None:
        self._items[key] = (self.clock() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


class RedisCache(ResponseCache):
    def __init__(self, redis: Any, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl

    async def get(self, key: str) -> bytes | None:
        value = await self.redis.get(key)
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes) -> None:
        await self.redis.set(key, value, ex=self.ttl)
