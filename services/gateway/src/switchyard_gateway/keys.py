"""API keys: ``Authorization: Bearer <key>``, stored only as SHA-256 digests, scoped to a tenant.

Keys live in a repository chosen by config: a JSON file (the embedded default, written
atomically) or Redis (shared by gateway replicas). Each gateway keeps a local copy and
refreshes it every few seconds, so a revoked key stops working everywhere within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from switchyard_common.errors import AuthenticationError, NotFoundError, PermissionDeniedError

log = logging.getLogger(__name__)

KEY_PREFIX = "sk-sy-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(BaseModel):
    id: str
    name: str = ""
    tenant: str = "default"
    digest: str = Field(repr=False)
    created: int = Field(default_factory=lambda: int(time.time()))
    revoked: bool = False
    admin: bool = False
    # Per-key limits override the gateway defaults; None means "use the default".
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    # Cache deterministic responses for this key without a per-request opt-in.
    cache: bool = False

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"digest"})


class KeyRepository(ABC):
    @abstractmethod
    async def load(self) -> list[ApiKey]: ...

    @abstractmethod
    async def save(self, key: ApiKey) -> None: ...


class FileKeyRepository(KeyRepository):
    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> list[ApiKey]:
        return await asyncio.to_thread(self._load)

    def _load(self) -> list[ApiKey]:
        if not self.path.exists():
            return []
        data = orjson.loads(self.path.read_bytes() or b"{}")
        return [ApiKey.model_validate(k) for k in data.get("keys", [])]

    async def save(self, key: ApiKey) -> None:
        await asyncio.to_thread(self._save, key)

    def _save(self, key: ApiKey) -> None:
        keys = {k.id: k for k in self._load()}
        keys[key.id] = key
        payload = orjson.dumps(
            {"keys": [k.model_dump() for k in keys.values()]}, option=orjson.OPT_INDENT_2
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class RedisKeyRepository(KeyRepository):
    HASH = "switchyard:gateway:keys"

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def load(self) -> list[ApiKey]:
        raw = await self.redis.hgetall(self.HASH)
        return [ApiKey.model_validate_json(v) for v in raw.values()]

    async def save(self, key: ApiKey) -> None:
        await self.redis.hset(self.HASH, key.id, key.model_dump_json())


class KeyStore:
    """Authenticates requests against fixed digests plus the repository's keys."""

    def __init__(
        self,
        repository: KeyRepository | None,
        *,
        fixed_digests: Sequence[str] = (),
        admin_digests: Sequence[str] = (),
        refresh_seconds: float = 2.0,
    ) -> None:
        self.repository = repository
        self.refresh_seconds = refresh_seconds
        self._fixed: dict[str, ApiKey] = {}
        for i, digest in enumerate(fixed_digests):
            self._fixed[digest.lower()] = ApiKey(id=f"static-{i}", name="static", digest=digest)
        for i, digest in enumerate(admin_digests):
            self._fixed[digest.lower()] = ApiKey(
                id=f"admin-{i}", name="admin", digest=digest, admin=True
            )
        self._by_digest: dict[str, ApiKey] = dict(self._fixed)
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        if self.repository is None:
            return
        async with self._lock:
            try:
                stored = await self.repository.load()
            except Exception as exc:  # keep the last good view
                log.warning("could not refresh API keys: %r", exc)
                return
            self._by_digest = {**self._fixed, **{k.digest: k for k in stored}}
            self._loaded_at = time.monotonic()

    async def authenticate(self, authorization: str | None) -> ApiKey:
        """Return the caller's key, or raise a 401 in OpenAI's format."""
        if not authorization:
            raise AuthenticationError(
                "You didn't provide an API key. Provide it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("The Authorization header must be 'Bearer YOUR_KEY'.")
        if time.monotonic() - self._loaded_at > self.refresh_seconds:
            await self.refresh()
        # Digests of secrets are compared, so a dict lookup leaks nothing useful by timing.
        key = self._by_digest.get(hash_key(token))
        if key is None or key.revoked:
            raise AuthenticationError("Incorrect API key provided.")
        return key

    @staticmethod
    def require_admin(key: ApiKey) -> None:
        if not key.admin:
            raise PermissionDeniedError("This key may not manage API keys.")

    def _repo(self) -> KeyRepository:
        if self.repository is None:
            raise NotFoundError("No key store is configured on this gateway.")
        return self.repository

    async def create(
        self,
        *,
        name: str,
        tenant: str,
        rpm: int | None = None,
        tpm: int | None = None,
        cache: bool = False,
        admin: bool = False,
    ) -> tuple[ApiKey, str]:
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            tenant=tenant,
            digest=hash_key(token),
            rpm=rpm,
            tpm=tpm,
            cache=cache,
            admin=admin,
        )
        await self._repo().save(key)
        await self.refresh()
        return key, token

    async def list(self) -> list[ApiKey]:
        return await self._repo().load()

    async def revoke(self, key_id: str) -> ApiKey:
        for key in await self._repo().load():
            if key.id == key_id:
                revoked = key.model_copy(update={"revoked": True})
                await self._repo().save(revoked)
                await self.refresh()
                return revoked
        raise NotFoundError(f"No API key with id '{key_id}'.", param="id")
