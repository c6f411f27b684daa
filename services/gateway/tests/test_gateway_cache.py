"""The response cache: what is cacheable, its key, and the in-memory store's TTL and bound."""

from __future__ import annotations

from switchyard_gateway.cache import MemoryCache, cache_key, is_deterministic

from .clock import ManualClock


async def test_memory_cache_ttl_and_bound() -> None:
    clock = ManualClock(100.0)
    cache = MemoryCache(ttl=0.1, max_entries=2, clock=clock)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    await cache.set("c", b"3")
    assert await cache.get("a") is None
    assert await cache.get("c") == b"3"
    clock.advance(0.05)
    assert await cache.get("c") == b"3"
    clock.advance(0.06)
    assert await cache.get("c") is None


def test_cache_key_ignores_user_and_stream_and_separates_tenants() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    k = cache_key("t1", "/v1/chat/completions", body)
    assert k == cache_key("t1", "/v1/chat/completions", {**body, "user": "u"})
    assert k != cache_key("t2", "/v1/chat/completions", body)
    assert k != cache_key("t1", "/v1/chat/completions", {**body, "temperature": 0.5})
    assert is_deterministic(body)
    assert is_deterministic({"seed": 3})
    assert not is_deterministic({"temperature": 0.7})
