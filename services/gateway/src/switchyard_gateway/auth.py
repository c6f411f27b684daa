"""API keys: ``Authorization: Bearer <key>``, stored and compared only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from switchyard_common.errors import AuthenticationError

log = logging.getLogger(__name__)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_key_file(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [ln.strip().lower() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


class KeyStore:
    def __init__(self, digests: Iterable[str]) -> None:
        self._digests = frozenset(d.lower() for d in digests)
        if not self._digests:
            log.warning("no API keys are configured: every API request will be refused")

    def __len__(self) -> int:
        return len(self._digests)

    def authenticate(self, authorization: str | None) -> str:
        """Return the key's digest, or raise a 401 in OpenAI's format."""
        if not authorization:
            raise AuthenticationError(
                "You didn't provide an API key. Provide it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthenticationError("The Authorization header must be 'Bearer YOUR_KEY'.")
        digest = hash_key(key)
        # Digests of secrets are compared, so a set lookup leaks nothing useful by timing.
        if digest not in self._digests:
            raise AuthenticationError("Incorrect API key provided.")
        return digest
